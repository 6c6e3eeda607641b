"""LibraryView: every item of the library in a filterable table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLineEdit, QTableView, QVBoxLayout, QWidget

from app.labels import class_title

if TYPE_CHECKING:
    from fmn_core.index.results import Item

_COLUMNS = ("Kind", "Label", "Class", "Transcript", "Length", "Status")
_WIDTHS = (56, 90, 220, 240, 56, 50)
ITEM_ROLE = Qt.ItemDataRole.UserRole + 1


class LibraryView(QWidget):
    """A table of the library's videos and speech with a filter box (label, class, transcript, file).

    Signals:
        currentItemChanged(object): the selected Item.
        itemActivated(object): Enter or a double click on an Item.
    """

    currentItemChanged = Signal(object)
    itemActivated = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.filter = QLineEdit(placeholderText="Filter by label, class, transcript or file  (Ctrl+F)")
        self.filter.setClearButtonEnabled(True)
        self.filter.setAcceptDrops(False)  # a file dropped here is a query, like anywhere on the window
        self.model = QStandardItemModel(0, len(_COLUMNS), self)
        self.model.setHorizontalHeaderLabels(_COLUMNS)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(-1)  # match any column
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.table.setAccessibleName("Library")
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        # Fixed starting widths: measuring every row's text (resizeColumnsToContents) costs the UI
        # thread tens of milliseconds on a library of a few hundred items.
        for col, width in enumerate(_WIDTHS):
            self.table.setColumnWidth(col, width)
        self.table.setColumnHidden(1, True)  # the class name says it; the hidden key still matches the filter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.filter)
        layout.addWidget(self.table)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.table.activated.connect(lambda index: self.itemActivated.emit(self._item_at(index)))

    def set_items(self, items: Sequence[Item]) -> None:
        """Show items, videos first; keeps the filter."""
        self.model.removeRows(0, self.model.rowCount())
        for item in sorted(items, key=lambda it: (it.modality != "video", it.label or "", it.id)):
            self.model.appendRow(self._cells(item))
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)

    def _cells(self, item: Item) -> list[QStandardItem]:
        status = "ok" if item.status == "ok" else item.status
        cells = (
            item.modality,
            item.label or "",
            class_title(item.label),
            item.text or Path(item.path).name,
            f"{item.duration:.1f} s" if item.duration else "",
            status,
        )
        row = [QStandardItem(text) for text in cells]
        row[0].setData(item, ITEM_ROLE)
        tip = f"{item.id}\n{item.path}" + (f"\n{item.reason}" if item.reason else "")
        for cell in row:
            cell.setToolTip(tip)
        if item.status != "ok":
            row[5].setForeground(QColor("#c0392b"))
        return row

    @property
    def rows(self) -> int:
        """Rows shown (after the filter)."""
        return self.proxy.rowCount()

    def _item_at(self, index: QModelIndex) -> Item | None:
        if not index.isValid():
            return None
        return self.proxy.index(index.row(), 0).data(ITEM_ROLE)

    def current_item(self) -> Item | None:
        return self._item_at(self.table.currentIndex())

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)

    def focus_filter(self) -> None:
        """Put the cursor in the filter box with its text selected, so typing replaces it."""
        self.filter.setFocus()
        self.filter.selectAll()

    def select_item(self, item_id: str) -> bool:
        """Select the row of an item (clearing the filter if it hides it)."""
        for attempt in range(2):
            for row in range(self.proxy.rowCount()):
                item = self.proxy.index(row, 0).data(ITEM_ROLE)
                if item is not None and item.id == item_id:
                    self.table.selectRow(row)
                    return True
            if attempt == 0 and self.filter.text():
                self.filter.clear()
        return False

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        item = self._item_at(current)
        if item is not None:
            self.currentItemChanged.emit(item)
