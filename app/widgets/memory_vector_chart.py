"""MemoryVectorChart: the query's cosine with every slot of its bank, as bars, the winning slot marked."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

BAR = QColor("#5b8fd6")
WINNER = QColor("#e0662d")


class MemoryVectorChart(QWidget):
    """Bars of values in [-1, 1] around a zero line; unused slots are drawn as ticks only."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values = np.zeros(0, np.float32)
        self.used = np.zeros(0, bool)
        self.winner: int | None = None
        self.caption = "no query yet"
        self.setMouseTracking(True)
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:
        return QSize(400, 120)

    def set_vector(self, values: np.ndarray, used: np.ndarray | None, winner: int | None, caption: str) -> None:
        """Show a memory vector ``(X,)``; ``winner`` is the slot that decided the score (None: none)."""
        self.values = np.asarray(values, dtype=np.float32)
        self.used = np.ones(len(self.values), bool) if used is None else np.asarray(used, dtype=bool)
        self.winner = winner if winner is not None and 0 <= winner < len(self.values) else None
        self.caption = caption
        self.update()

    def clear(self) -> None:
        self.set_vector(np.zeros(0, np.float32), None, None, "no query yet")

    def _plot_area(self) -> QRectF:
        return QRectF(self.rect()).adjusted(32, 20, -6, -16)

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().base())
        text = self.palette().text().color()
        p.setPen(text)
        p.drawText(QRectF(6, 2, self.width() - 12, 16), Qt.AlignmentFlag.AlignLeft, self.caption)
        area = self._plot_area()
        zero = area.center().y()
        p.setPen(self.palette().mid().color())
        for y, label in ((area.top(), "+1"), (zero, "0"), (area.bottom(), "−1")):
            p.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
            p.drawText(QRectF(0, y - 8, 28, 16), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
        n = len(self.values)
        if not n:
            return
        width = area.width() / n
        half = area.height() / 2
        for i, v in enumerate(self.values):
            x = area.left() + i * width
            if not self.used[i]:
                p.fillRect(QRectF(x + width * 0.35, zero - 1, width * 0.3, 2), self.palette().mid())
                continue
            h = float(np.clip(v, -1, 1)) * half
            bar = QRectF(x + width * 0.15, zero - max(h, 0), width * 0.7, abs(h))
            p.fillRect(bar, WINNER if i == self.winner else BAR)
        if self.winner is not None:
            x = area.left() + (self.winner + 0.5) * width
            p.setPen(WINNER)
            label = f"slot {self.winner}"
            p.drawText(QRectF(x - 40, area.bottom(), 80, 16), Qt.AlignmentFlag.AlignHCenter, label)

    def slot_at(self, pos: QPointF) -> int | None:
        area = self._plot_area()
        n = len(self.values)
        if not n or not (area.left() <= pos.x() < area.right()):
            return None
        return int((pos.x() - area.left()) / (area.width() / n))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        i = self.slot_at(event.position())
        if i is None:
            QToolTip.hideText()
            return
        text = f"slot {i}: cosine {self.values[i]:+.3f}" if self.used[i] else f"slot {i}: unused"
        QToolTip.showText(event.globalPosition().toPoint(), text, self, QRect())
