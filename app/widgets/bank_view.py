"""BankView: one feature memory bank — its used slots as a table and its slot-by-slot similarity as a heatmap."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QTableView, QVBoxLayout, QWidget

from app.labels import rgb_pixmap, when
from app.widgets.heatmap import Heatmap

if TYPE_CHECKING:
    from app.session import BankSnapshot
    from fmn_core.index.results import SlotInfo

_COLUMNS = ("Slot", "Hits", "Last update", "Sources")
SLOT_ROLE = Qt.ItemDataRole.UserRole + 1
CHANGED = QColor(255, 214, 102, 120)  # slots the last update wrote: the bank learning, made visible


class BankView(QWidget):
    """Table of the used slots (hits, last update, the items they were learnt from) beside the heatmap.

    Selecting a row outlines that slot in the heatmap.
    """

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.heading = QLabel(f"<b>{title}</b>")
        self.model = QStandardItemModel(0, len(_COLUMNS), self)
        self.model.setHorizontalHeaderLabels(_COLUMNS)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setIconSize(QSize(48, 34))
        self.table.verticalHeader().setDefaultSectionSize(38)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.setAccessibleName(f"{title} slots")
        self.heatmap = Heatmap(self)
        self.heatmap.setToolTip(f"Cosine similarity between the slots of the {title.lower()}")
        body = QHBoxLayout()
        body.addWidget(self.table, 3)
        body.addWidget(self.heatmap, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.heading)
        layout.addLayout(body, 1)
        self.table.selectionModel().currentRowChanged.connect(self._on_row)
        self.winner: int | None = None
        self.snapshot: BankSnapshot | None = None

    def set_snapshot(self, snap: BankSnapshot, changed: Collection[int] = ()) -> None:
        """Show a bank's state; ``changed`` slots (written by the last update) are highlighted."""
        self.snapshot = snap
        used = [s for s in snap.slots if s.used]
        note = f" · {snap.note}" if snap.note else ""
        self.heading.setText(f"<b>{self.title}</b> — {len(used)} of {len(snap.slots)} slots used{note}")
        # No repaint per appended row: refilling both banks row by row held the loop ~100 ms.
        self.table.setUpdatesEnabled(False)
        self.model.removeRows(0, self.model.rowCount())
        for info in used:
            self.model.appendRow(self._row(info, snap, info.slot in changed))
        self.table.setUpdatesEnabled(True)
        mask = np.array([s.used for s in snap.slots], dtype=bool)
        self.heatmap.set_matrix(snap.similarity, mask)
        self.set_winner(self.winner)
        if changed:
            self.scroll_to(min(changed))

    def _row(self, info: SlotInfo, snap: BankSnapshot, changed: bool) -> list[QStandardItem]:
        sources = list(info.source_ids)
        first = sources[0] if sources else ""
        more = f"  (+{len(sources) - 1} more)" if len(sources) > 1 else ""
        describe = snap.texts.get(first) or first
        # Slots the model brought from training have no time and no item of this library.
        from_training = info.last_update is None and not sources
        cells = [
            QStandardItem(str(info.slot)),
            QStandardItem(str(info.hits)),
            QStandardItem("in training" if from_training else when(info.last_update)),
            QStandardItem("the model's training pairs" if from_training else f"{describe}{more}"),
        ]
        cells[0].setData(info.slot, SLOT_ROLE)
        cells[3].setToolTip("\n".join(f"{sid}: {snap.texts.get(sid, '')}" for sid in sources))
        thumb = snap.thumbnails.get(first)
        if thumb is not None:
            cells[3].setData(rgb_pixmap(thumb), Qt.ItemDataRole.DecorationRole)
        for cell in cells:
            cell.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
            if changed:
                cell.setBackground(QBrush(CHANGED))
        return cells

    def set_winner(self, slot: int | None) -> None:
        """Mark the slot that decided the current query's memory score (bold row, outlined in the heatmap)."""
        self.winner = slot
        for row in range(self.model.rowCount()):
            item = self.model.item(row, 0)
            font = QFont(self.table.font())
            font.setBold(item.data(SLOT_ROLE) == slot)
            for col in range(self.model.columnCount()):
                self.model.item(row, col).setFont(font)
        self.heatmap.set_highlight(slot)
        self.scroll_to(slot)

    def scroll_to(self, slot: int | None) -> None:
        """Bring a slot's row into view (no-op for None or a slot not shown)."""
        if slot in (shown := self.slots_shown()):
            self.table.scrollTo(self.model.index(shown.index(slot), 0))

    def slots_shown(self) -> list[int]:
        """Slot numbers of the table's rows, top to bottom."""
        return [self.model.item(r, 0).data(SLOT_ROLE) for r in range(self.model.rowCount())]

    def _on_row(self, current, _previous) -> None:  # type: ignore[no-untyped-def]
        if current.isValid():
            self.heatmap.set_highlight(self.model.item(current.row(), 0).data(SLOT_ROLE))
