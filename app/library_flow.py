"""LibraryFlow: opening a library in the background and showing it in the window once it is open.

The folder being opened is kept until the session answers, so that a refusal names it and the
library already open stays shown; the status bar's device, model and library labels are written here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSettings
from PySide6.QtWidgets import QFileDialog

if TYPE_CHECKING:
    from app.session import SearchSession
    from app.window_layout import WindowLayout
    from fmn_core.index.plan import IndexReport
    from fmn_core.index.retriever import Retriever

INDEX_JOBS = max(1, (os.cpu_count() or 1) - 1)  # decoding processes while indexing: one core stays with the UI


class LibraryFlow(QObject):
    """Opens libraries for ``window`` through ``session``, remembering the last one in ``settings``.

    Args:
        window: the window whose library list, status bar, messages and title it updates.
        session: the way to the core's Retriever.
        settings: where the last library is kept.
        device: where the model runs ('cpu', 'cuda', 'auto').
        forget_query: ``forget_query(heading)`` clears the last query's results (showing ``heading``),
            transcript and undo when another library starts opening.

    Attributes:
        folder: the open library's folder (None before one opened).
        model: the model it was opened with (None: the shipped one).
    """

    def __init__(
        self,
        window: WindowLayout,
        session: SearchSession,
        settings: QSettings,
        device: str,
        forget_query: Callable[[str], None],
    ) -> None:
        super().__init__(window)
        self.window, self.session, self.settings, self.device = window, session, settings, device
        self._forget_query = forget_query
        self.folder: Path | None = None
        self.model: Path | None = None
        self._opening: tuple[Path, Path | None] | None = None  # (library, model) being opened
        session.opened.connect(self._on_opened)
        session.libraryChanged.connect(self._on_library_changed)

    def open(self, folder: Path, model: Path | None = None) -> bool:
        """Open a library with a model (None: the shipped one); scanning and indexing run in the background.

        Any folder opens: with a manifest, laid out as ``<label>/<files>``, or flat. Returns False,
        showing why, when ``folder`` is not a folder; a folder without media is refused when the
        scan finds none, and the current library stays open either way.
        """
        w = self.window
        if not folder.is_dir():
            w.show_error(f"Cannot open library {folder}: no such folder")
            return False
        self._opening = (folder, model)
        w.library_label.setText(f"Looking for media in {folder.name}…")
        self._forget_query("Indexing the library…")
        w.progress.setRange(0, 0)  # busy until the first progress report gives a total
        w.show_progress(True)
        self.session.open(folder, model, self.device, INDEX_JOBS)
        return True

    def choose(self) -> None:
        """Ask for a library folder and open it with the current model."""
        folder = QFileDialog.getExistingDirectory(self.window, "Open library", str(self.settings.value("library", "")))
        if folder:
            self.open(Path(folder), self.model)

    def failed(self, message: str) -> str:
        """A job failed with ``message``: when it was the library being opened, the message names it and
        the library still open is shown again. Returns the message to show."""
        if self._opening is None:
            return message
        folder = self._opening[0]  # the folder was refused, or its index or model failed
        self._opening = None
        if self.session.retriever is not None:  # refused before the open library was closed: it stays
            self._show_library(self.session.retriever)
        return f"Cannot open library {folder}: {message}"

    def _on_opened(self, retriever: Retriever) -> None:
        if self._opening is not None:
            self.folder, self.model = self._opening
            self._opening = None
        self.window.setWindowTitle(f"FMN Studio — {self.folder.name}" if self.folder else "FMN Studio")
        self.settings.setValue("library", str(self.folder))
        self._show_library(retriever)

    def _show_items(self, retriever: Retriever) -> int:
        """The library list and its counts; returns how many items are unusable."""
        items = retriever.items()
        self.window.library.set_items(items)
        ok = [it for it in items if it.status == "ok"]
        videos = sum(it.modality == "video" for it in ok)
        failed = len(items) - len(ok)
        self.window.library_label.setText(
            f"{videos} videos · {len(ok) - videos} speech clips" + (f" · {failed} unusable" if failed else "")
        )
        self.window.library_label.setToolTip("\n".join(f"{it.id}: {it.reason}" for it in items if it.status != "ok"))
        return failed

    def _on_library_changed(self, report: IndexReport) -> None:
        """Files came, changed or went while the library was open: the list follows, the status bar says what."""
        if self.session.retriever is not None:
            self._show_items(self.session.retriever)
        self.window.statusBar().showMessage(f"Library changed on disk: {report.summary()}", 10000)
        if report.failed:
            self.window.show_info(
                f"{len(report.failed)} new or changed files could not be used; hover the library count."
            )

    def _show_library(self, retriever: Retriever) -> None:
        w = self.window
        failed = self._show_items(retriever)
        w.device_label.setText(f"Device: {_device_name(retriever)}")
        w.model_label.setText(f"Model: {retriever.model.name}")
        w.model_label.setToolTip(str(retriever.model.path or "built in memory"))
        report = retriever.report
        if report.cancelled:
            w.show_info(f"Indexing cancelled: {report.pending} items still to index. {report.summary()}")
        else:
            w.statusBar().showMessage(f"Library ready: {report.summary()}", 10000)
        speech_off = self.session.speech_off
        w.query.set_speech_off(speech_off)
        if speech_off:
            w.results.clear("Drop a video file, or use a video of the library as the query (Ctrl+U).")
            # An error, not a notice: it stays until dismissed (the query bar keeps saying it after that).
            w.show_error(f"Voice search is off: {speech_off}. Searching with a video still works.")
            return
        w.results.clear("Record a phrase, drop a file, or use a library item as the query (Ctrl+U).")
        if failed and not report.cancelled:
            w.show_info(f"{failed} items could not be used; hover the library count for why.")


def _device_name(retriever: Retriever) -> str:
    device = retriever.model.device
    if device.type == "cuda":
        import torch

        return f"CUDA ({torch.cuda.get_device_name(device)})"
    return "CPU"
