"""WaveformView: a speech clip drawn as its envelope of peaks; also used by the results delegate."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget


def wave_peaks(wave: np.ndarray, bins: int = 400) -> np.ndarray:
    """Absolute peak of each of ``bins`` equal stretches of a wave, float32 in [0, 1]."""
    wave = np.abs(np.asarray(wave, dtype=np.float32))
    if wave.size == 0:
        return np.zeros(0, np.float32)
    bins = min(bins, wave.size)
    edges = np.linspace(0, wave.size, bins + 1).astype(int)
    return np.maximum.reduceat(wave, edges[:-1]).clip(0.0, 1.0).astype(np.float32)


def paint_peaks(painter: QPainter, rect: QRectF, peaks: np.ndarray | None, color: QColor) -> None:
    """Draw peaks as a filled envelope mirrored about the rectangle's middle line.

    Peaks are scaled so the loudest reaches the edge: a quiet recording stays readable.
    """
    painter.save()
    painter.setPen(color)
    mid = rect.center().y()
    if peaks is None or len(peaks) == 0 or rect.width() < 2:
        painter.drawLine(QPointF(rect.left(), mid), QPointF(rect.right(), mid))
        painter.restore()
        return
    columns = max(2, int(rect.width()))
    peaks = np.asarray(peaks, dtype=np.float32)
    n = len(peaks)
    if n >= columns:  # one pixel column shows the loudest of its stretch of peaks
        values = np.maximum.reduceat(peaks, (np.arange(columns) * n) // columns)
    else:
        values = np.interp(np.linspace(0, n - 1, columns), np.arange(n), peaks)
    values = values / max(float(values.max()), 1e-6)
    xs = rect.left() + np.arange(columns) * rect.width() / (columns - 1)
    half = rect.height() / 2
    top = [QPointF(x, mid - v * half) for x, v in zip(xs, values, strict=True)]
    bottom = [QPointF(x, mid + v * half) for x, v in zip(xs[::-1], values[::-1], strict=True)]
    painter.setBrush(color)
    painter.drawPolygon(QPolygonF(top + bottom))
    painter.restore()


class WaveformView(QWidget):
    """Shows one wave (or precomputed peaks); empty shows a flat line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.peaks: np.ndarray | None = None
        self.seconds = 0.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(36)
        self.setAccessibleName("Query waveform")

    def sizeHint(self) -> QSize:
        return QSize(320, 44)

    def set_wave(self, wave: np.ndarray, sample_rate: int = 16000) -> None:
        """Show a wave of float samples."""
        self.seconds = len(wave) / sample_rate
        self.set_peaks(wave_peaks(wave))
        self.setToolTip(f"{self.seconds:.1f} s")

    def set_peaks(self, peaks: np.ndarray | None) -> None:
        self.peaks = peaks
        self.update()

    def clear(self) -> None:
        self.seconds = 0.0
        self.set_peaks(None)
        self.setToolTip("")

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect())
        p.fillRect(rect, self.palette().base())
        paint_peaks(p, rect.adjusted(2, 3, -2, -3), self.peaks, self.palette().highlight().color())
