"""LibraryView: every item of the library in a filterable table."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLineEdit, QTableView, QVBoxLayout, QWidget

from fmn_core.corpus.vocabulary import VocabularyError, parse_class
from fmn_core.manifest import Manifest, ManifestRow

_COLUMNS = ("Kind", "Label", "Class", "Transcript", "Voice", "Split")
_PATH_ROLE = Qt.ItemDataRole.UserRole + 1


def _class_names(label: str) -> str:
    """'cut the onion · 切洋葱' for a vocabulary class; user labels are shown as they are."""
    try:
        cls = parse_class(label)
    except VocabularyError:
        return label
    return f"{cls.en} · {cls.zh}"


class LibraryView(QWidget):
    """A table of the library's videos and speech with a filter box.

    Signals:
        itemActivated(str, str): the selected item's modality and absolute path.
    """

    itemActivated = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.filter = QLineEdit(placeholderText="Filter by label, class, transcript or voice  (Ctrl+F)")
        self.filter.setClearButtonEnabled(True)
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
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.filter)
        layout.addWidget(self.table)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)

    def set_manifest(self, manifest: Manifest) -> None:
        """Show every row of a manifest, videos first."""
        self.model.removeRows(0, self.model.rowCount())
        for row in sorted(manifest.rows, key=lambda r: (r.modality != "video", r.label, r.id)):
            self.model.appendRow(self._items(row, manifest.resolve(row)))
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        if self.proxy.rowCount():
            self.table.selectRow(0)

    def _items(self, row: ManifestRow, path: Path) -> list[QStandardItem]:
        cells = (row.modality, row.label, _class_names(row.label), row.text, row.voice, row.split)
        items = [QStandardItem(text) for text in cells]
        items[0].setData(row.modality, Qt.ItemDataRole.UserRole)
        items[0].setData(str(path), _PATH_ROLE)
        items[0].setToolTip(str(path))
        return items

    def _on_current_changed(self, current, _previous) -> None:  # type: ignore[no-untyped-def]
        if not current.isValid():
            return
        first = self.proxy.index(current.row(), 0)
        self.itemActivated.emit(first.data(Qt.ItemDataRole.UserRole), first.data(_PATH_ROLE))
