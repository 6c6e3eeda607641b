"""MainWindow: what FMN Studio's window does: searching with a recording, a file or a library item,
confirming matches, and the jobs' progress.

Its widgets are laid out by :class:`~app.window_layout.WindowLayout`; opening a library is
:class:`~app.library_flow.LibraryFlow`'s, previewing the selection :class:`~app.preview_flow.PreviewFlow`'s,
and the actions and menus come from the tables in :mod:`app.actions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QWidget

from app.actions import add_actions, add_menus
from app.labels import class_title
from app.library_flow import LibraryFlow
from app.preview_flow import PreviewFlow
from app.push_to_talk import PushToTalk
from app.recorder import Recorder
from app.result_actions import ResultActions
from app.session import BankSnapshot, Ranking, SearchSession
from app.stall_meter import StallMeter
from app.widgets.query_panel import PUSH_TO_TALK_KEY
from app.window_layout import WindowLayout
from fmn_core.index.moments import span_text
from fmn_core.manifest import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS

if TYPE_CHECKING:
    from fmn_core.features.whisper import Transcript
    from fmn_core.index.results import BankUpdate, Item

MEDIA_FILTER = "Audio or video ({})".format(" ".join(f"*{e}" for e in AUDIO_EXTENSIONS + VIDEO_EXTENSIONS))
_OTHER = {"speech": "videos", "video": "speech clips"}


class MainWindow(WindowLayout):
    """FMN Studio's main window.

    Args:
        settings: where the last library and the window layout are kept.
        recorder: the microphone (default: a new :class:`Recorder`).
        session: the way to the core's Retriever (default: a new :class:`SearchSession`).
        device: where the model runs ('cpu', 'cuda', 'auto').
        stall_meter: measures event-loop stalls per job kind when given (benchmarks).

    Its actions (``undo_action``, ``confirm_action``…) are attributes made from :data:`app.actions.ACTIONS`.
    """

    undo_action: QAction  # the one its own code enables; add_actions makes it and the others

    def __init__(
        self,
        settings: QSettings,
        recorder: Recorder | None = None,
        session: SearchSession | None = None,
        device: str = "cpu",
        stall_meter: StallMeter | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.device = device
        self.recorder = recorder or Recorder(self)
        self.session = session or SearchSession(self)
        self.stall_meter = stall_meter
        self._reading: Path | None = None  # the query file being read, until it ranks or fails
        self.setWindowTitle("FMN Studio")
        self.setAcceptDrops(True)
        self._build(self.recorder)
        self.library_flow = LibraryFlow(self, self.session, self.settings, self.device, self._forget_query)
        self.preview_flow = PreviewFlow(self.session, self.library, self.results, self.preview, self.inspector, self)
        add_actions(self)
        self.result_actions = ResultActions(self, self.results, self.session, self.settings, self._report)
        add_menus(self)
        self._connect()
        self._tab_order()
        self.push_to_talk = PushToTalk(self, PUSH_TO_TALK_KEY, self.query.start_recording, self.query.stop_recording)
        self.resize(1440, 920)

    def _connect(self) -> None:
        s = self.session
        s.busy.connect(self._on_busy)
        s.idle.connect(self._on_idle)
        s.progress.connect(self._on_progress)
        s.ranked.connect(self._on_ranked)
        s.banksChanged.connect(self._on_banks)
        s.failed.connect(self._on_failed)
        s.heard.connect(self._on_heard)
        s.notHeard.connect(self.query.show_not_heard)
        self.cancel_button.clicked.connect(s.cancel)
        self.query.recorded.connect(self._on_recorded)
        self.query.openRequested.connect(self.choose_query)
        self.query.message.connect(self.show_error)

    # -- library ------------------------------------------------------------------------------

    def open_library(self, folder: Path, model: Path | None = None) -> bool:
        """Open a library with a model (None: the shipped one) in the background; see :meth:`LibraryFlow.open`."""
        return self.library_flow.open(folder, model)

    @property
    def library_folder(self) -> Path | None:
        """The open library's folder (None before one opened)."""
        return self.library_flow.folder

    @property
    def model_path(self) -> Path | None:
        """The model the library was opened with (None: the shipped one)."""
        return self.library_flow.model

    def _forget_query(self, heading: str) -> None:
        """Another library is opening: the last query's results, transcript and undo no longer apply."""
        self.results.clear(heading)
        self.result_actions.set_enabled(False)
        self.inspector.clear_query()
        self.query.clear_heard()
        self.undo_action.setEnabled(False)

    def _on_failed(self, message: str) -> None:
        message = self.library_flow.failed(message)
        if self._reading is not None:  # the file being read is what failed: the query line must not say "reading"
            self.query.query_label.setText(f"Query: {self._reading.name} (could not be read)")
            self._reading = None
        self.show_error(message)

    # -- queries ------------------------------------------------------------------------------

    def choose_query(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Query with an audio or video file", "", MEDIA_FILTER)
        if path:
            self.query_file(Path(path))

    def query_file(self, path: Path) -> None:
        """Search with an audio or video file."""
        self.messages.dismiss()
        self.query.query_label.setText(f"Query: {path.name} (reading…)")
        self._reading = path
        self.query.clear_heard()  # the last query's transcript is not this one's
        self.session.search_file(path)

    def query_item(self, item: Item, span: tuple[float, float] | None = None) -> None:
        """Search with a library item (``span``: a moment of a long video)."""
        self.messages.dismiss()
        self.query.clear_heard()
        at = f" at {span_text(span)}" if span is not None else ""
        caption = f"library item {item.id}{at}" + (f" ({class_title(item.label)})" if item.label else "")
        self.session.search_item(item.id, caption, span)

    def use_selected_as_query(self) -> None:
        """Ctrl+U: the selected result (a moment: that moment) when the results have focus, else the
        selected library item."""
        hit = self.results.current_hit()
        if hit is not None and self.results.list.hasFocus():
            self.query_item(hit.item, hit.span)
            return
        item = self.library.current_item() or (hit.item if hit is not None else None)
        if item is None:
            self.show_error("Select a library item or a result first.")
            return
        self.query_item(item)

    def _on_recorded(self, wave: np.ndarray) -> None:
        if wave.size == 0:
            self.show_error("Nothing was recorded.")
            return
        self.messages.dismiss()
        self.query.clear_heard()
        self.session.search_wave(wave)

    def _on_ranked(self, ranking: Ranking) -> None:
        self._reading = None
        result = ranking.result
        query = result.query
        ranked = f"{len(result.hits)} {_OTHER[query.modality]}"
        files = len({h.item.id for h in result.hits})
        if any(h.span is not None for h in result.hits):  # a long video gives several moments
            ranked = f"{len(result.hits)} moments of {files} {'video' if files == 1 else 'videos'}"
        self.results.set_hits(
            result.hits,
            ranking.previews,
            f"{ranked} ranked for {ranking.caption}, best first (S: final score; S1: fusion; mem: memory agreement).",
            result.threshold,
            result.no_good_match,
        )
        self.result_actions.set_enabled(bool(result.hits))
        if ranking.caption != "recording":
            self._show_query(ranking)
        if ranking.audio is not None and self.session.hearing:  # a new speech query (not a confirm's re-rank)
            self.query.show_hearing()
        if query.notes:
            self.show_info(" ".join(query.notes))
        self.timing_label.setText(f"Last query: {ranking.seconds:.2f} s")
        self.timing_label.setToolTip(f"decoding + encoding + ranking; ranking alone {result.seconds * 1000:.1f} ms")
        self.preview_flow.update_query_vector()
        self.undo_action.setEnabled(self.session.retriever is not None and self.session.retriever.can_undo)

    def _on_heard(self, transcript: Transcript) -> None:
        self.query.show_heard(transcript.text, transcript.lang, transcript.model, transcript.cut)

    def _show_query(self, ranking: Ranking) -> None:
        query = ranking.result.query
        if query.modality == "speech":
            self.query.show_speech_query(ranking.caption, ranking.query_preview, _replay_path(query.source))
        else:
            self.query.show_video_query(ranking.caption, ranking.query_preview)

    # -- memory banks -------------------------------------------------------------------------

    def confirm_current(self) -> None:
        """Ctrl+Return: the selected result matches the query; the banks learn the pair."""
        hit = self.results.current_hit()
        if hit is None:
            self.show_error("Select a result to confirm.")
            return
        self.session.confirm(hit.item.id, hit.span)

    def _on_banks(self, video: BankSnapshot, speech: BankSnapshot, updates: list[BankUpdate]) -> None:
        self.inspector.set_banks(video, speech, updates)
        self.preview_flow.update_query_vector()
        retriever = self.session.retriever
        self.undo_action.setEnabled(retriever is not None and retriever.can_undo)
        if updates:
            u = updates[-1]
            self.statusBar().showMessage(f"Memory updated: slot {u.slot} ({u.kind}). Ctrl+Z undoes it.", 8000)

    # -- jobs ---------------------------------------------------------------------------------

    def _on_busy(self, kind: str) -> None:
        if self.stall_meter is not None:
            self.stall_meter.begin(kind)
        text = {
            "indexing": "Indexing the library…",
            "updating": "Files changed in the library: indexing them…",
            "query": "Searching…",
            "confirm": "Updating the memory…",
        }
        self.statusBar().showMessage(text.get(kind, "Working…"))

    def _on_idle(self) -> None:
        if self.stall_meter is not None:
            self.stall_meter.end_later()
        self.show_progress(False)
        if not self.session.indexing and self.statusBar().currentMessage().endswith("…"):
            self.statusBar().clearMessage()  # the job's "working" line; a result's own message stays

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"indexing %v / {total}")

    # -- drag and drop ------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _dropped_file(event) is not None:
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        if _dropped_file(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = _dropped_file(event)
        if path is None:
            return
        event.acceptProposedAction()
        self.query_file(path)

    def showEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        super().showEvent(event)
        self.push_to_talk.attach()  # the QWindow exists from the first show on

    # -- shutdown -----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self.query.shutdown()
        self.preview.player.stop()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.preview_flow.shutdown()
        self.session.shutdown()
        super().closeEvent(event)

    def restore_layout(self) -> None:
        """Put the window and its dock back where the user left them."""
        geometry, state = self.settings.value("window/geometry"), self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)


def _dropped_file(event: QDropEvent | QDragEnterEvent) -> Path | None:
    """The first local file among dropped URLs."""
    mime = event.mimeData()
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile():
            return Path(url.toLocalFile())
    return None


def _replay_path(source: str) -> Path | None:
    path = Path(source)
    return path if path.is_file() else None
