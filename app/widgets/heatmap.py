"""Heatmap: a square matrix of cosines in [-1, 1] (slot-by-slot similarity of a memory bank)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

# Diverging colours: blue for -1, near-white for 0, red for +1 (so "unlike" and "alike" read apart).
_ANCHORS = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
_COLORS = np.array(
    [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]],
    dtype=np.float64,
)
UNUSED = (60, 60, 60)  # a slot without a memory


def cosine_colors(values: np.ndarray) -> np.ndarray:
    """RGB uint8 colours ``(..., 3)`` of cosines in [-1, 1]."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), -1.0, 1.0)
    rgb = np.stack([np.interp(v, _ANCHORS, _COLORS[:, c]) for c in range(3)], axis=-1)
    return rgb.round().astype(np.uint8)


def color_of(value: float) -> QColor:
    r, g, b = cosine_colors(np.array([value]))[0]
    return QColor(int(r), int(g), int(b))


class Heatmap(QWidget):
    """Draws ``matrix[i, j]`` as cell (row i, column j); unused slots are dark grey.

    Hovering shows the pair of slots and the value; ``highlight`` outlines one slot's row and column.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix = np.zeros((0, 0), np.float32)
        self.used = np.zeros(0, bool)
        self.highlight: int | None = None
        self._image = QImage()
        self.setMouseTracking(True)
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(220, 220)

    def set_matrix(self, matrix: np.ndarray, used: np.ndarray | None = None) -> None:
        """Show an ``(X, X)`` matrix; ``used (X,)`` marks slots holding a memory (default: all)."""
        self.matrix = np.asarray(matrix, dtype=np.float32)
        n = self.matrix.shape[0]
        self.used = np.ones(n, bool) if used is None else np.asarray(used, dtype=bool)
        rgb = cosine_colors(self.matrix) if n else np.zeros((0, 0, 3), np.uint8)
        if n:
            rgb[~self.used, :] = UNUSED
            rgb[:, ~self.used] = UNUSED
        rgb = np.ascontiguousarray(rgb)
        self._image = QImage(rgb.data, n, n, 3 * n, QImage.Format.Format_RGB888).copy() if n else QImage()
        self.update()

    def set_highlight(self, slot: int | None) -> None:
        self.highlight = slot if slot is not None and slot >= 0 else None
        self.update()

    def _square(self) -> QRectF:
        side = min(self.width(), self.height()) - 2
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().window())
        area = self._square()
        if self._image.isNull() or not self.used.any():
            p.setPen(self.palette().placeholderText().color())
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no memories yet")
            return
        # nearest-neighbour scaling keeps every slot a crisp square
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        p.drawImage(area, self._image)
        n = self.matrix.shape[0]
        if self.highlight is not None and self.highlight < n:
            cell = area.width() / n
            p.setPen(QPen(self.palette().text().color(), 1.5))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(area.left() + self.highlight * cell, area.top(), cell, area.height()))
            p.drawRect(QRectF(area.left(), area.top() + self.highlight * cell, area.width(), cell))

    def cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        """(row, column) under a widget position, or None outside the matrix."""
        n = self.matrix.shape[0]
        area = self._square()
        if not n or not area.contains(pos):
            return None
        cell = area.width() / n
        return min(n - 1, int((pos.y() - area.top()) / cell)), min(n - 1, int((pos.x() - area.left()) / cell))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        hit = self.cell_at(event.position())
        if hit is None:
            QToolTip.hideText()
            return
        i, j = hit
        text = (
            f"slots {i} and {j}: cosine {self.matrix[i, j]:+.3f}"
            if self.used[i] and self.used[j]
            else f"slots {i} and {j}: unused"
        )
        QToolTip.showText(event.globalPosition().toPoint(), text, self, QRect())
