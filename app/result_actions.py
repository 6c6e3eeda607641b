"""Taking results elsewhere: export the ranking (JSON, CSV, M3U playlist), copy a hit's path, show it in its folder.

Dragging a hit out of the list is the results model's job (it offers the file's URL); these are the
menu and keyboard ways to the same places.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSettings, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QFileDialog, QWidget

from fmn_core.errors import FmnError

if TYPE_CHECKING:
    from app.session import SearchSession
    from app.widgets.results_view import ResultsView

EXPORT_FILTER = "JSON (*.json);;CSV spreadsheet (*.csv);;M3U playlist (*.m3u)"


class ResultActions(QObject):
    """The actions, and what they do, for the current ranking and its selected hit.

    Attributes:
        export_action: File ▸ Export results… (Ctrl+E).
        copy_path_action: Result ▸ Copy path (Ctrl+Shift+C); every hit's path when the list has no selection.
        show_in_folder_action: Result ▸ Show in folder (Ctrl+Shift+F).
    """

    def __init__(
        self,
        window: QWidget,
        results: ResultsView,
        session: SearchSession,
        settings: QSettings,
        report: Callable[[str, str], None],
    ) -> None:
        super().__init__(window)
        self.window, self.results, self.session, self.settings = window, results, session, settings
        self._report = report  # report(kind, text): the window's message bar ("info" or "error")
        self.export_action = self._action("&Export results…", "Ctrl+E", self.choose_export)
        self.copy_path_action = self._action("&Copy path", "Ctrl+Shift+C", self.copy_path)
        self.show_in_folder_action = self._action("Show in &folder", "Ctrl+Shift+F", self.show_in_folder)
        self.set_enabled(False)

    def _action(self, text: str, shortcut: str, slot: Callable[[], None]) -> QAction:
        a = QAction(text, self.window)
        a.setShortcut(QKeySequence(shortcut))
        a.triggered.connect(slot)
        self.window.addAction(a)
        return a

    def set_enabled(self, has_results: bool) -> None:
        for a in (self.export_action, self.copy_path_action, self.show_in_folder_action):
            a.setEnabled(has_results)

    # -- export ---------------------------------------------------------------------------------

    def choose_export(self) -> None:
        if self.session.last is None:
            return
        start = str(Path(str(self.settings.value("export_folder", Path.home()))) / "fmn-results.json")
        path, _ = QFileDialog.getSaveFileName(self.window, "Export results", start, EXPORT_FILTER)
        if path:
            self.export(Path(path))

    def export(self, path: Path) -> Path | None:
        """Write the current ranking to ``path`` (its extension names the format); None when it could not."""
        from fmn_core.index.export import write_export

        result, retriever = self.session.last, self.session.retriever
        if result is None or retriever is None:
            self._report("error", "Nothing to export yet: run a query first.")
            return None
        library = retriever.store.library if retriever.store is not None else None
        try:
            written = write_export(result, path, library, retriever.model.name)
        except (ValueError, OSError, FmnError) as e:
            self._report("error", f"Cannot export to {path}: {e}")
            return None
        self.settings.setValue("export_folder", str(written.parent))
        self._report("info", f"Exported {len(result.hits)} results to {written}")
        return written

    # -- the selected hit -----------------------------------------------------------------------

    def copy_path(self) -> None:
        """The selected hit's path on the clipboard (every hit's, one per line, when none is selected)."""
        hit = self.results.current_hit()
        paths = [str(hit.item.path)] if hit is not None else [str(h.item.path) for h in self.results.hits]
        if paths:
            QGuiApplication.clipboard().setText("\n".join(paths))

    def show_in_folder(self) -> None:
        hit = self.results.current_hit()
        if hit is None:
            return
        folder = Path(hit.item.path).parent
        if not folder.is_dir() or not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self._report("error", f"Cannot show {folder}: no file manager answered (the path is copied instead)")
            QGuiApplication.clipboard().setText(str(hit.item.path))
