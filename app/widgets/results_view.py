"""ResultsView: the ranked items of the other modality, each with its picture or waveform and its scores."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QRectF,
    QSize,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from app.labels import class_title, rgb_pixmap
from app.widgets.waveform_view import paint_peaks
from fmn_core.eval.calibration import describe
from fmn_core.index.moments import clock, span_text

if TYPE_CHECKING:
    from fmn_core.index.results import Hit

HIT_ROLE = Qt.ItemDataRole.UserRole + 1
PREVIEW_ROLE = Qt.ItemDataRole.UserRole + 2

ROW_HEIGHT = 76
THUMB = QSize(96, 68)
SCORE_COLORS = {"S": QColor("#3a7bd5"), "S1": QColor("#6aa84f"), "mem": QColor("#e0662d")}
# How sure a hit is, in words and colour (fmn_core.eval.calibration.describe gives the word).
CONFIDENCE_COLORS = {
    "strong": QColor("#2e7d32"),
    "likely": QColor("#689f38"),
    "possible": QColor("#b26a00"),
    "weak": QColor("#c62828"),
}
NO_MATCH_TEXT = (
    "No good match in this library: even the best result is unlikely to be right. The ranking is still shown below."
)

_Index = QModelIndex | QPersistentModelIndex


class ResultsModel(QAbstractListModel):
    """A list of hits, best first, with a preview per item (thumbnail pixmap or waveform peaks)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.hits: list[Hit] = []
        self.threshold: float | None = None  # the model's "no good match" line, when it has a calibration
        self._previews: dict[str, QPixmap | np.ndarray] = {}

    def set_hits(
        self, hits: Sequence[Hit], previews: dict[str, np.ndarray] | None = None, threshold: float | None = None
    ) -> None:
        """Replace the list; ``previews`` maps hit keys (:attr:`Hit.key`: an item id, or an id and a
        moment) to an RGB thumbnail ``(H, W, 3)`` or peaks ``(N,)``."""
        self.beginResetModel()
        self.hits = list(hits)
        self.threshold = threshold
        for key, array in (previews or {}).items():
            if array is not None and key not in self._previews:
                self._previews[key] = rgb_pixmap(array) if array.ndim == 3 else array
        self.endResetModel()

    def preview(self, key: str) -> QPixmap | np.ndarray | None:
        """A hit's picture or peaks, by :attr:`Hit.key`."""
        return self._previews.get(key)

    # Dragging a hit out of the window gives its file to a file manager, a player or an editor.
    def flags(self, index: _Index) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        mime = QMimeData()
        rows = sorted({i.row() for i in indexes if i.isValid() and i.row() < len(self.hits)})
        mime.setUrls([QUrl.fromLocalFile(str(self.hits[r].item.path)) for r in rows])
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.hits)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.hits):
            return None
        hit = self.hits[index.row()]
        if role == HIT_ROLE:
            return hit
        if role == PREVIEW_ROLE:
            return self.preview(hit.key)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            sure = self.confidence_text(hit)
            at = f" at {span_text(hit.span)}" if hit.span is not None else ""
            return f"{hit.rank}. {_title(hit)}{at}: S {hit.s:.2f}" + (f", {sure}" if sure else "")
        if role == Qt.ItemDataRole.ToolTipRole:
            at = f", {span_text(hit.span)}" if hit.span is not None else ""
            tip = f"{hit.item.path}{at}\nS {hit.s:.3f} = combine(S1 {hit.s1:.3f}, memory {hit.memory:.3f})" + (
                f", memory slot {hit.slot}" if hit.slot >= 0 else ", memory empty"
            )
            if hit.confidence is not None:
                tip += f"\n{hit.confidence:.0%} likely to be right (calibrated on validation data)"
            return tip
        return None

    def confidence_text(self, hit: Hit) -> str:
        """'92 % strong match', or '' when the model has no calibration."""
        word = describe(hit.confidence, self.threshold)
        return f"{hit.confidence:.0%} {word} match" if word and hit.confidence is not None else ""


def _title(hit: Hit) -> str:
    return class_title(hit.item.label) or Path(hit.item.path).stem


def _subtitle(hit: Hit) -> str:
    item = hit.item
    if hit.span is not None:  # a moment: where it is first, then the file
        return f"{span_text(hit.span)} of {clock(item.duration)} · {Path(item.path).name}"
    if item.text:
        return item.text
    return f"{Path(item.path).name} · {item.duration:.1f} s"


class HitDelegate(QStyledItemDelegate):
    """Paints a hit: rank, thumbnail or waveform, label and transcript, and S, S1, memory as small bars."""

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        return QSize(0, ROW_HEIGHT)  # as wide as the list: the text is elided, never scrolled sideways

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        hit: Hit | None = index.data(HIT_ROLE)
        if hit is None:
            return
        painter.save()
        style = option.widget.style() if option.widget else None
        if style is not None:  # selection and focus backgrounds as the platform draws them
            style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, option.widget)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        text_color = option.palette.highlightedText().color() if selected else option.palette.text().color()
        r = option.rect.adjusted(6, 4, -6, -4)

        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(text_color)
        rank_rect = QRect(r.left(), r.top(), 30, r.height())
        painter.drawText(rank_rect, Qt.AlignmentFlag.AlignCenter, str(hit.rank))

        thumb = QRect(
            rank_rect.right() + 6, r.top() + (r.height() - THUMB.height()) // 2, THUMB.width(), THUMB.height()
        )
        self._paint_preview(painter, thumb, index.data(PREVIEW_ROLE), hit, option)

        text_left = thumb.right() + 10
        bars_width = min(230, max(150, r.width() // 3))
        text_rect = QRect(text_left, r.top(), max(40, r.right() - bars_width - 8 - text_left), r.height())
        word = describe(hit.confidence, index.model().threshold) if hit.confidence is not None else ""
        if word:  # a coloured chip at the title line's right end: how sure, in a word and a percentage
            painter.setFont(option.font)
            chip_text = f"{hit.confidence:.0%} {word}"
            width = painter.fontMetrics().horizontalAdvance(chip_text) + 12
            chip = QRect(text_rect.right() - width, text_rect.top() + 8, width, r.height() // 2 - 12)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setBrush(CONFIDENCE_COLORS[word])
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawRoundedRect(QRectF(chip), 6, 6)
            painter.setPen(QColor("white"))
            painter.drawText(chip, Qt.AlignmentFlag.AlignCenter, chip_text)
            painter.setPen(text_color)
            painter.setFont(bold)
            title_rect = text_rect.adjusted(0, 0, -width - 6, 0)
        else:
            title_rect = text_rect
        painter.drawText(
            title_rect.adjusted(0, 4, 0, -r.height() // 2),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            painter.fontMetrics().elidedText(_title(hit), Qt.TextElideMode.ElideRight, title_rect.width()),
        )
        painter.setFont(option.font)
        painter.drawText(
            text_rect.adjusted(0, r.height() // 2, 0, -4),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            painter.fontMetrics().elidedText(_subtitle(hit), Qt.TextElideMode.ElideRight, text_rect.width()),
        )

        bars = QRect(r.right() - bars_width, r.top() + 6, bars_width, r.height() - 12)
        self._paint_bars(painter, bars, hit, text_color, option)
        painter.restore()

    @staticmethod
    def _paint_preview(
        painter: QPainter, rect: QRect, preview: QPixmap | np.ndarray | None, hit: Hit, option: QStyleOptionViewItem
    ) -> None:
        painter.fillRect(rect, option.palette.base())
        if isinstance(preview, QPixmap):
            scaled = preview.scaled(
                rect.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            x = rect.left() + (rect.width() - scaled.width()) // 2
            y = rect.top() + (rect.height() - scaled.height()) // 2
            painter.drawPixmap(x, y, scaled)
        elif hit.item.modality == "speech":
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            paint_peaks(painter, QRectF(rect).adjusted(3, 6, -3, -6), preview, QColor("#3a7bd5"))
        else:
            painter.setPen(option.palette.placeholderText().color())
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "no picture")

    @staticmethod
    def _paint_bars(painter: QPainter, rect: QRect, hit: Hit, text_color: QColor, option: QStyleOptionViewItem) -> None:
        row_h = rect.height() / 3
        label_w, value_w = 38, 40
        for i, (name, value) in enumerate((("S", hit.s), ("S1", hit.s1), ("mem", hit.memory))):
            y = rect.top() + i * row_h
            painter.setPen(text_color)
            painter.drawText(
                QRectF(rect.left(), y, label_w, row_h), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name
            )
            track = QRectF(rect.left() + label_w, y + row_h * 0.25, rect.width() - label_w - value_w, row_h * 0.5)
            painter.fillRect(track, option.palette.alternateBase())
            painter.fillRect(
                QRectF(track.left(), track.top(), track.width() * float(np.clip(value, 0, 1)), track.height()),
                SCORE_COLORS[name],
            )
            painter.drawText(
                QRectF(track.right(), y, value_w, row_h),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{value:.2f}",
            )


class ResultsView(QWidget):
    """A heading and the ranked list; arrows move, Enter (or a double click) asks to play.

    Signals:
        currentHitChanged(object): the selected Hit, or None when the list is empty.
        playRequested(object): the Hit to play.
    """

    currentHitChanged = Signal(object)
    playRequested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.heading = QLabel("Record or drop a query to see what matches it.")
        self.heading.setWordWrap(True)
        self.no_match = QLabel(NO_MATCH_TEXT)  # shown when even the best hit is below the model's threshold
        self.no_match.setWordWrap(True)
        self.no_match.setObjectName("noMatch")
        self.no_match.setStyleSheet(
            "#noMatch { background: #fdecea; color: #8a1c12; border: 1px solid #f5c2bd; border-radius: 4px;"
            " padding: 6px; font-weight: bold; }"
        )
        self.no_match.hide()
        self.model = ResultsModel(self)
        self.list = QListView(self)
        self.list.setModel(self.model)
        self.list.setItemDelegate(HitDelegate(self.list))
        self.list.setUniformItemSizes(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setMinimumWidth(420)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setDragEnabled(True)
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)  # out of the window, never reordered
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.list.setAccessibleName("Results")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.heading)
        layout.addWidget(self.no_match)
        layout.addWidget(self.list, 1)
        self.list.selectionModel().currentRowChanged.connect(self._on_current)
        self.list.activated.connect(lambda index: self.playRequested.emit(index.data(HIT_ROLE)))

    def set_hits(
        self,
        hits: Sequence[Hit],
        previews: dict[str, np.ndarray] | None,
        heading: str,
        threshold: float | None = None,
        no_good_match: bool = False,
    ) -> None:
        """Show a new ranking and select its best item; ``no_good_match`` says so above the list."""
        self.heading.setText(heading)
        self.no_match.setVisible(no_good_match)
        self.model.set_hits(hits, previews, threshold)
        if hits:
            self.list.setCurrentIndex(self.model.index(0))
        else:
            self.currentHitChanged.emit(None)

    def clear(self, heading: str) -> None:
        self.set_hits([], None, heading)

    @property
    def hits(self) -> list[Hit]:
        return self.model.hits

    def current_hit(self) -> Hit | None:
        index = self.list.currentIndex()
        return index.data(HIT_ROLE) if index.isValid() else None

    def select_row(self, row: int) -> None:
        self.list.setCurrentIndex(self.model.index(row))

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.currentHitChanged.emit(current.data(HIT_ROLE) if current.isValid() else None)
