"""LevelMeter: the microphone's loudness as a bar in dBFS, with a falling peak marker."""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

FLOOR_DB = -60.0  # quieter than this shows as an empty bar
PEAK_FALL_DB = 1.5  # how far the peak marker falls per update: it lingers long enough to be read


def to_db(amplitude: float) -> float:
    """Full-scale amplitude -> dBFS, clipped to [FLOOR_DB, 0]."""
    if amplitude <= 0.0:
        return FLOOR_DB
    return max(FLOOR_DB, min(0.0, 20.0 * math.log10(amplitude)))


class LevelMeter(QWidget):
    """A horizontal meter: RMS level as the bar (green, yellow above -18 dB, red above -6 dB), peak as a line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rms_db = FLOOR_DB
        self.peak_db = FLOOR_DB
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Microphone level")
        self.setAccessibleName("Microphone level")

    def sizeHint(self) -> QSize:
        return QSize(160, 14)

    def set_level(self, rms: float, peak: float) -> None:
        """Show a new block's RMS and peak (full-scale amplitudes)."""
        self.rms_db = to_db(rms)
        self.peak_db = max(to_db(peak), self.peak_db - PEAK_FALL_DB)
        self.setToolTip(f"Microphone level: {self.rms_db:.0f} dBFS (peak {self.peak_db:.0f})")
        self.update()

    def reset(self) -> None:
        self.rms_db = self.peak_db = FLOOR_DB
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.fillRect(rect, self.palette().base())
        frac = (self.rms_db - FLOOR_DB) / -FLOOR_DB
        color = QColor("#2e9d4b") if self.rms_db < -18 else QColor("#d9a400") if self.rms_db < -6 else QColor("#d03b2f")
        p.fillRect(QRectF(rect.left(), rect.top(), rect.width() * frac, rect.height()), color)
        if self.peak_db > FLOOR_DB:
            x = rect.left() + rect.width() * (self.peak_db - FLOOR_DB) / -FLOOR_DB
            p.setPen(self.palette().text().color())
            p.drawLine(int(x), int(rect.top()), int(x), int(rect.bottom()))
        p.setPen(self.palette().mid().color())
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(rect)
