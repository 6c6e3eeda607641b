"""ScoreStrip: how well a spoken query matches every stretch of the selected long video.

Drawn under the player: the query's score over the video's whole length (one point per window,
at its middle), its best moments as bands, the moment being shown a darker band, and the
playhead. Clicking or dragging seeks there, so the other places the video matches are one click
away; the player's next/previous-moment keys walk the bands.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from fmn_core.index.moments import Moment, clock, span_text

MARKED = 5  # moments drawn as bands (and walked by the keys): the best few, as the results list shows them
LINE = QColor("#3a7bd5")
BAND = QColor(58, 123, 213, 50)
SHOWN = QColor(58, 123, 213, 120)
PLAYHEAD = QColor("#c62828")


class ScoreStrip(QWidget):
    """The score along one video; empty (and hidden by its owner) for clips.

    Signals:
        seekRequested(float): the user clicked or dragged to this time, in seconds.
    """

    seekRequested = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(48)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAccessibleName("Score along the video")
        self.setToolTip("How well the query matches each moment of this video; click to jump there")
        self.duration = 0.0
        self.middles = np.zeros(0)  # window middles, seconds
        self.scores = np.zeros(0)  # shown 0..1: calibrated confidence, else the ranking score rescaled
        self.calibrated = False
        self.marks: list[Moment] = []  # the best moments, in time order
        self.shown: tuple[float, float] | None = None
        self.position = 0.0

    def sizeHint(self) -> QSize:
        return QSize(400, 48)

    def set_scores(
        self,
        duration: float,
        spans: np.ndarray,
        scores: np.ndarray,
        moments: Sequence[Moment],
        confidence: np.ndarray | None = None,
    ) -> None:
        """Show a query's window scores over a video of ``duration`` seconds and its ``moments`` (best first)."""
        self.duration = max(float(duration), float(spans[:, 1].max()) if len(spans) else 0.0)
        self.middles = spans.mean(axis=1) if len(spans) else np.zeros(0)
        self.calibrated = confidence is not None
        if confidence is not None:
            self.scores = np.clip(confidence, 0.0, 1.0)
        else:  # no calibration: the ranking score's own range, so the shape is what matters
            lo, hi = (float(scores.min()), float(scores.max())) if len(scores) else (0.0, 1.0)
            self.scores = (scores - lo) / max(hi - lo, 1e-9)
        self.marks = sorted(moments[:MARKED], key=lambda m: m.start)
        self.update()

    def clear(self) -> None:
        self.duration, self.middles, self.scores, self.marks, self.shown = 0.0, np.zeros(0), np.zeros(0), [], None
        self.update()

    def set_shown(self, span: tuple[float, float] | None) -> None:
        """The moment the player is showing (drawn darker)."""
        self.shown = span
        self.update()

    def set_position(self, seconds: float) -> None:
        self.position = seconds
        self.update()

    def mark_after(self, seconds: float) -> Moment | None:
        """The first marked moment starting after ``seconds`` (None at the last)."""
        return next((m for m in self.marks if m.start > seconds + 0.25), None)

    def mark_before(self, seconds: float) -> Moment | None:
        """The last marked moment starting before ``seconds`` (less a grace, so a second press goes further back)."""
        earlier = [m for m in self.marks if m.start < seconds - 1.0]
        return earlier[-1] if earlier else None

    # -- drawing and the mouse ------------------------------------------------------------------

    def _plot(self) -> QRectF:
        return QRectF(self.rect()).adjusted(4, 4, -4, -14)

    def _x(self, seconds: float) -> float:
        plot = self._plot()
        return plot.left() + plot.width() * seconds / max(self.duration, 1e-9)

    def _time_at(self, x: float) -> float:
        plot = self._plot()
        return float(np.clip((x - plot.left()) / max(plot.width(), 1.0), 0.0, 1.0) * self.duration)

    def _band(self, span: tuple[float, float], plot: QRectF) -> QRectF:
        return QRectF(self._x(span[0]), plot.top(), self._x(span[1]) - self._x(span[0]), plot.height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        plot = self._plot()
        painter.fillRect(plot, self.palette().alternateBase())
        if self.duration <= 0 or not len(self.scores):
            painter.end()
            return
        for m in self.marks:
            painter.fillRect(self._band(m.span, plot), BAND)
        if self.shown is not None:  # the moment playing, darker (a marked one or another the list holds)
            painter.fillRect(self._band(self.shown, plot), SHOWN)
        path = QPainterPath()
        for i, (t, v) in enumerate(zip(self.middles, self.scores, strict=True)):
            point = QPointF(self._x(float(t)), plot.bottom() - plot.height() * float(v))
            path.moveTo(point) if i == 0 else path.lineTo(point)
        painter.setPen(QPen(LINE, 1.5))
        painter.drawPath(path)
        painter.setPen(QPen(PLAYHEAD, 2))
        x = self._x(self.position)
        painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        painter.setPen(self.palette().placeholderText().color())
        font = painter.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        text = QRectF(plot.left(), plot.bottom(), plot.width(), 14)
        painter.drawText(text, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "0:00")
        painter.drawText(text, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, clock(self.duration))
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.duration > 0:
            self.seekRequested.emit(self._time_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self.duration <= 0 or not len(self.scores):
            return
        t = self._time_at(event.position().x())
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.seekRequested.emit(t)
        i = int(np.argmin(np.abs(self.middles - t)))
        inside = next((m for m in self.marks if m.start <= t <= m.end), None)
        value = f"{self.scores[i]:.0%} likely" if self.calibrated else f"relative score {self.scores[i]:.2f}"
        tip = f"{clock(t)}: {value}" + (f" · moment {span_text(inside.span)}" if inside else "")
        QToolTip.showText(event.globalPosition().toPoint(), tip, self)
