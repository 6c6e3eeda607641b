"""MainWindow: the library on the left, the preview on the right."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QSplitter, QWidget

from app.library import open_library
from app.widgets.library_view import LibraryView
from app.widgets.preview_player import PreviewPlayer
from fmn_core.errors import FmnError
from fmn_core.manifest import Manifest


class MainWindow(QMainWindow):
    """FMN Studio's main window."""

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.manifest: Manifest | None = None
        self.setWindowTitle("FMN Studio")
        self.library = LibraryView(self)
        self.preview = PreviewPlayer(self)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.library)
        splitter.addWidget(self.preview)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        self.setCentralWidget(splitter)
        self.library.itemActivated.connect(self._preview_item)
        self._make_actions()
        self.resize(1280, 760)

    def _make_actions(self) -> None:
        menu = self.menuBar().addMenu("&File")
        for text, shortcut, slot in (
            ("&Open library…", QKeySequence.StandardKey.Open, self.choose_library),
            ("&Quit", QKeySequence.StandardKey.Quit, self.close),
        ):
            action = QAction(text, self, shortcut=shortcut, triggered=slot)
            menu.addAction(action)
        for shortcut, slot in (("Ctrl+F", self.library.filter.setFocus), ("Space", self.preview.toggle)):
            action = QAction(self, shortcut=QKeySequence(shortcut), triggered=slot)
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(action)

    def load_library(self, folder: Path) -> bool:
        """Open a library folder; on failure show why and keep the current one."""
        try:
            manifest = open_library(folder)
        except FmnError as e:
            QMessageBox.warning(self, "Cannot open library", str(e))
            return False
        self.manifest = manifest
        self.library.set_manifest(manifest)
        self.settings.setValue("library", str(folder))
        videos, speech = len(manifest.of("video")), len(manifest.of("speech"))
        self.setWindowTitle(f"FMN Studio — {folder.name}")
        self.statusBar().showMessage(
            f"Library {folder}: {videos} videos, {speech} speech clips, {len(manifest.labels)} labels"
        )
        return True

    def choose_library(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open library", self.settings.value("library", ""))
        if folder:
            self.load_library(Path(folder))

    def _preview_item(self, modality: str, path: str) -> None:
        row = (
            next((r for r in self.manifest.rows if str(self.manifest.resolve(r)) == path), None)
            if self.manifest
            else None
        )
        self.preview.load(modality, path, caption=row.text if row else "")

    def closeEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        self.preview.player.stop()
        super().closeEvent(event)
