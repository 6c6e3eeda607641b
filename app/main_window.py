"""MainWindow: query bar on top; library, ranked results and preview side by side; memory inspector below."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.labels import class_title
from app.push_to_talk import PushToTalk
from app.recorder import Recorder
from app.result_actions import ResultActions
from app.session import BankSnapshot, Ranking, SearchSession
from app.stall_meter import StallMeter
from app.widgets.library_view import LibraryView
from app.widgets.memory_inspector import MemoryInspector
from app.widgets.message_bar import MessageBar
from app.widgets.preview_player import SEEK_MS, PreviewPlayer
from app.widgets.query_panel import PUSH_TO_TALK_KEY, QueryPanel
from app.widgets.results_view import ResultsView
from app.workers import Worker, WorkerPool
from fmn_core.index.moments import span_text
from fmn_core.manifest import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS

if TYPE_CHECKING:
    from fmn_core.features.whisper import Transcript
    from fmn_core.index.indexer import IndexReport
    from fmn_core.index.retriever import BankUpdate, Hit, Item, Retriever, WindowScores

log = logging.getLogger(__name__)

INDEX_JOBS = max(1, (os.cpu_count() or 1) - 1)  # decoding processes while indexing: one core stays with the UI
MEDIA_FILTER = "Audio or video ({})".format(" ".join(f"*{e}" for e in AUDIO_EXTENSIONS + VIDEO_EXTENSIONS))
_OTHER = {"speech": "videos", "video": "speech clips"}


class MainWindow(QMainWindow):
    """FMN Studio's main window.

    Args:
        settings: where the last library and the window layout are kept.
        recorder: the microphone (default: a new :class:`Recorder`).
        session: the way to the core's Retriever (default: a new :class:`SearchSession`).
        device: where the model runs ('cpu', 'cuda', 'auto').
        stall_meter: measures event-loop stalls per job kind when given (benchmarks).
    """

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
        self.posters = WorkerPool(1, self)  # posters of previewed clips, a query's scores along a long video
        self.library_folder: Path | None = None
        self.model_path: Path | None = None
        self._reading: Path | None = None  # the query file being read, until it ranks or fails
        self._opening: tuple[Path, Path | None] | None = None  # (library, model) being opened
        self.setWindowTitle("FMN Studio")
        self.setAcceptDrops(True)
        self._build()
        self._make_actions()
        self._connect()
        self._tab_order()
        self.push_to_talk = PushToTalk(self, PUSH_TO_TALK_KEY, self.query.start_recording, self.query.stop_recording)
        self.resize(1440, 920)

    # -- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        self.messages = MessageBar(self)
        self.query = QueryPanel(self.recorder, self)
        self.library = LibraryView(self)
        self.results = ResultsView(self)
        self.preview = PreviewPlayer(self)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        for widget, stretch in ((self.library, 3), (self.results, 4), (self.preview, 3)):
            self.splitter.addWidget(widget)
            self.splitter.setStretchFactor(self.splitter.count() - 1, stretch)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addWidget(self.messages)
        layout.addWidget(self.query)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self.inspector = MemoryInspector(self)
        self.inspector_dock = QDockWidget("Memory inspector", self)
        self.inspector_dock.setObjectName("memory-inspector")
        self.inspector_dock.setWidget(self.inspector)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.inspector_dock)
        self.resizeDocks([self.inspector_dock], [330], Qt.Orientation.Vertical)

        bar = self.statusBar()
        self.progress = QProgressBar(self, maximumWidth=220, textVisible=True)
        self.cancel_button = QPushButton("Cancel", self, toolTip="Stop indexing; what is finished stays searchable")
        self.device_label = QLabel(self)
        self.model_label = QLabel(self)
        self.library_label = QLabel(self)
        self.timing_label = QLabel(self)
        for w in (self.device_label, self.model_label, self.library_label, self.timing_label):
            w.setStyleSheet("padding: 0 8px; border-left: 1px solid palette(mid);")
        for w in (self.progress, self.cancel_button, self.device_label, self.model_label, self.library_label):
            bar.addPermanentWidget(w)
        bar.addPermanentWidget(self.timing_label)
        self._show_progress(False)

    def _make_actions(self) -> None:
        def action(text: str, shortcut: QKeySequence | str | None, slot, tip: str = "") -> QAction:  # type: ignore[no-untyped-def]
            a = QAction(text, self)
            if shortcut is not None:
                a.setShortcut(QKeySequence(shortcut))
            a.setToolTip(tip or text.replace("&", "").replace("…", ""))
            a.triggered.connect(slot)
            self.addAction(a)  # window-wide, also while the menu bar is hidden
            return a

        self.open_query_action = action("&Open query file…", QKeySequence.StandardKey.Open, self.choose_query)
        self.open_library_action = action("Open &library…", "Ctrl+Shift+O", self.choose_library)
        self.quit_action = action("&Quit", QKeySequence.StandardKey.Quit, self.close)
        self.record_action = action("&Record / stop", "Ctrl+R", self.query.record_button.toggle)
        self.push_to_talk_hint = QAction("Push to talk: hold T", self, enabled=False)
        self.replay_action = action("Re&play query", "Ctrl+P", self.query.toggle_replay)
        self.use_as_query_action = action("&Use as query", "Ctrl+U", self.use_selected_as_query)
        # Space and Enter work where playing makes sense (lists, player) and leave focused buttons alone.
        self.play_action = QAction("&Play / pause", self, shortcut=QKeySequence("Space"))
        self.play_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.play_action.triggered.connect(self.preview.toggle)
        for widget in (self.library, self.results, self.preview):
            widget.addAction(self.play_action)
        self.play_selected_action = QAction("Play selected result", self, shortcut=QKeySequence("Return"))
        self.play_selected_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.play_selected_action.triggered.connect(self._play_current_result)
        self.back_action = action("Seek &back 1 s", "Ctrl+Left", lambda: self.preview.seek(-SEEK_MS))
        self.forward_action = action("Seek &forward 1 s", "Ctrl+Right", lambda: self.preview.seek(SEEK_MS))
        self.next_moment_action = action("&Next moment", "]", lambda: self.preview.next_moment(True))
        self.previous_moment_action = action("Pre&vious moment", "[", lambda: self.preview.next_moment(False))
        self.confirm_action = action("&Confirm match", "Ctrl+Return", self.confirm_current)
        self.confirm_action.setToolTip("This result is a correct match: teach the memory banks the pair")
        self.undo_action = action("&Undo memory update", QKeySequence.StandardKey.Undo, self.session.undo)
        self.undo_action.setEnabled(False)
        self.filter_action = action("&Filter library", QKeySequence.StandardKey.Find, self._focus_filter)
        self.focus_library_action = action("Go to &library", "Ctrl+1", self.library.table.setFocus)
        self.focus_results_action = action("Go to r&esults", "Ctrl+2", self.results.list.setFocus)
        self.focus_player_action = action("Go to &preview", "Ctrl+3", self.preview.slider.setFocus)
        self.inspector_action = self.inspector_dock.toggleViewAction()
        self.inspector_action.setText("&Memory inspector")
        self.inspector_action.setShortcut(QKeySequence("Ctrl+I"))
        self.addAction(self.inspector_action)
        self.dismiss_action = action("Dismiss message", "Esc", self.messages.dismiss)
        self.result_actions = ResultActions(self, self.results, self.session, self.settings, self._report)
        export, copy_path, show = (
            self.result_actions.export_action,
            self.result_actions.copy_path_action,
            self.result_actions.show_in_folder_action,
        )

        menus = (
            ("&File", (self.open_query_action, self.open_library_action, None, export, None, self.quit_action)),
            (
                "&Query",
                (self.record_action, self.push_to_talk_hint, self.replay_action, None, self.use_as_query_action),
            ),
            (
                "&Result",
                (
                    self.play_selected_action,
                    self.play_action,
                    self.back_action,
                    self.forward_action,
                    self.previous_moment_action,
                    self.next_moment_action,
                    None,
                    self.confirm_action,
                    self.undo_action,
                    None,
                    copy_path,
                    show,
                ),
            ),
            (
                "&View",
                (
                    self.filter_action,
                    self.focus_library_action,
                    self.focus_results_action,
                    self.focus_player_action,
                    None,
                    self.inspector_action,
                ),
            ),
        )
        for title, actions in menus:
            menu = self.menuBar().addMenu(title)
            for a in actions:
                menu.addSeparator() if a is None else menu.addAction(a)
        # context menus: the same actions, so their shortcuts show there too
        for a in (self.play_selected_action, self.confirm_action, self.use_as_query_action, copy_path, show, export):
            self.results.list.addAction(a)
        self.library.table.addAction(self.use_as_query_action)

    def _connect(self) -> None:
        s = self.session
        s.busy.connect(self._on_busy)
        s.idle.connect(self._on_idle)
        s.progress.connect(self._on_progress)
        s.opened.connect(self._on_opened)
        s.ranked.connect(self._on_ranked)
        s.banksChanged.connect(self._on_banks)
        s.failed.connect(self._on_failed)
        s.heard.connect(self._on_heard)
        s.libraryChanged.connect(self._on_library_changed)
        s.notHeard.connect(self.query.show_not_heard)
        self.cancel_button.clicked.connect(s.cancel)
        self.query.recorded.connect(self._on_recorded)
        self.query.openRequested.connect(self.choose_query)
        self.query.message.connect(self.show_error)
        self.results.currentHitChanged.connect(self._on_current_hit)
        self.results.playRequested.connect(self._play_hit)
        self.library.currentItemChanged.connect(self._preview_item)
        self.library.itemActivated.connect(self._play_item)

    def _tab_order(self) -> None:
        chain = [
            self.query.record_button,
            self.query.devices,
            self.query.replay_button,
            self.query.open_button,
            self.library.filter,
            self.library.table,
            self.results.list,
            self.preview.play_button,
            self.preview.slider,
        ]
        for first, second in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(first, second)

    # -- library ------------------------------------------------------------------------------

    def open_library(self, folder: Path, model: Path | None = None) -> bool:
        """Open a library with a model (None: the shipped one); scanning and indexing run in the background.

        Any folder opens: with a manifest, laid out as ``<label>/<files>``, or flat. Returns False,
        showing why, when ``folder`` is not a folder; a folder without media is refused when the
        scan finds none, and the current library stays open either way.
        """
        if not folder.is_dir():
            self.show_error(f"Cannot open library {folder}: no such folder")
            return False
        self._opening = (folder, model)
        self.library_label.setText(f"Looking for media in {folder.name}…")
        self.results.clear("Indexing the library…")
        self.result_actions.set_enabled(False)
        self.inspector.clear_query()
        self.query.clear_heard()
        self.undo_action.setEnabled(False)
        self.progress.setRange(0, 0)  # busy until the first progress report gives a total
        self._show_progress(True)
        self.session.open(folder, model, self.device, INDEX_JOBS)
        return True

    def choose_library(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open library", str(self.settings.value("library", "")))
        if folder:
            self.open_library(Path(folder), self.model_path)

    def _on_opened(self, retriever: Retriever) -> None:
        if self._opening is not None:
            self.library_folder, self.model_path = self._opening
            self._opening = None
        self.setWindowTitle(f"FMN Studio — {self.library_folder.name}" if self.library_folder else "FMN Studio")
        self.settings.setValue("library", str(self.library_folder))
        self._show_library(retriever)

    def _show_items(self, retriever: Retriever) -> int:
        """The library list and its counts; returns how many items are unusable."""
        items = retriever.items()
        self.library.set_items(items)
        ok = [it for it in items if it.status == "ok"]
        videos = sum(it.modality == "video" for it in ok)
        failed = len(items) - len(ok)
        self.library_label.setText(
            f"{videos} videos · {len(ok) - videos} speech clips" + (f" · {failed} unusable" if failed else "")
        )
        self.library_label.setToolTip("\n".join(f"{it.id}: {it.reason}" for it in items if it.status != "ok"))
        return failed

    def _on_library_changed(self, report: IndexReport) -> None:
        """Files came, changed or went while the library was open: the list follows, the status bar says what."""
        if self.session.retriever is not None:
            self._show_items(self.session.retriever)
        self.statusBar().showMessage(f"Library changed on disk: {report.summary()}", 10000)
        if report.failed:
            self.show_info(f"{len(report.failed)} new or changed files could not be used; hover the library count.")

    def _show_library(self, retriever: Retriever) -> None:
        failed = self._show_items(retriever)
        self.device_label.setText(f"Device: {_device_name(retriever)}")
        self.model_label.setText(f"Model: {retriever.model.name}")
        self.model_label.setToolTip(str(retriever.model.path or "built in memory"))
        report = retriever.report
        if report.cancelled:
            self.show_info(f"Indexing cancelled: {report.pending} items still to index. {report.summary()}")
        else:
            self.statusBar().showMessage(f"Library ready: {report.summary()}", 10000)
        speech_off = self.session.speech_off
        self.query.set_speech_off(speech_off)
        if speech_off:
            self.results.clear("Drop a video file, or use a video of the library as the query (Ctrl+U).")
            # An error, not a notice: it stays until dismissed (the query bar keeps saying it after that).
            self.show_error(f"Voice search is off: {speech_off}. Searching with a video still works.")
            return
        self.results.clear("Record a phrase, drop a file, or use a library item as the query (Ctrl+U).")
        if failed and not report.cancelled:
            self.show_info(f"{failed} items could not be used; hover the library count for why.")

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

    def _on_failed(self, message: str) -> None:
        if self._opening is not None:  # the folder was refused, or its index or model failed
            folder = self._opening[0]
            self._opening = None
            message = f"Cannot open library {folder}: {message}"
            if self.session.retriever is not None:  # refused before the open library was closed: it stays
                self._show_library(self.session.retriever)
        if self._reading is not None:  # the file being read is what failed: the query line must not say "reading"
            self.query.query_label.setText(f"Query: {self._reading.name} (could not be read)")
            self._reading = None
        self.show_error(message)

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
        noun = _OTHER[query.modality]
        self.results.set_hits(
            result.hits,
            ranking.previews,
            f"{len(result.hits)} {noun} ranked for {ranking.caption}, best first "
            f"(S: final score; S1: fusion; mem: memory agreement).",
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
        self._update_query_vector()
        self.undo_action.setEnabled(self.session.retriever is not None and self.session.retriever.can_undo)

    def _on_heard(self, transcript: Transcript) -> None:
        self.query.show_heard(transcript.text, transcript.lang, transcript.model, transcript.cut)

    def _show_query(self, ranking: Ranking) -> None:
        query = ranking.result.query
        if query.modality == "speech":
            self.query.show_speech_query(ranking.caption, ranking.query_preview, _replay_path(query.source))
        else:
            self.query.show_video_query(ranking.caption, ranking.query_preview)

    # -- results and preview ------------------------------------------------------------------

    def _on_current_hit(self, hit: Hit | None) -> None:
        if hit is not None:
            self._load_preview(hit.item, self.results.model.preview(hit.key), hit.span)
            last, retriever = self.session.last, self.session.retriever
            if hit.span is not None and last is not None and retriever is not None:
                # the query's score along the whole video, for the strip under the player
                worker = Worker(retriever.window_scores, last.query, hit.item.id)
                worker.signals.result.connect(lambda scores, item=hit.item: self._show_scores(item, scores))
                self.posters.start(worker)
        self._update_query_vector()

    def _show_scores(self, item: Item, scores: WindowScores) -> None:
        if Path(self.preview.player.source().toLocalFile()) == item.path:  # still the video shown
            self.preview.show_scores(item.duration, scores)

    def _update_query_vector(self) -> None:
        result = self.session.last
        if result is None:
            self.inspector.clear_query()
            return
        hit = self.results.current_hit()
        winner = hit.slot if hit is not None else None
        bank = result.query.modality
        caption = f"Query's memory vector against the {bank} bank" + (
            f" — slot {winner} gave {hit.item.id} most of its memory score" if hit is not None and winner >= 0 else ""
        )
        self.inspector.set_query(bank, result.memory_vector, winner, caption)

    def _play_hit(self, hit: Hit | None) -> None:
        if hit is not None:
            self._on_current_hit(hit)
            self.preview.play()

    def _play_current_result(self) -> None:
        self._play_hit(self.results.current_hit())

    def _preview_item(self, item: Item) -> None:
        retriever = self.session.retriever
        preview = None
        if retriever is not None:  # a small cached JPEG or peaks array: quick enough for the UI thread
            preview = retriever.thumbnail(item.id) if item.modality == "video" else retriever.waveform(item.id)
        self._load_preview(item, preview)

    def _play_item(self, item: Item | None) -> None:
        if item is not None:
            self._preview_item(item)
            self.preview.play()

    def _load_preview(self, item: Item, preview: object, span: tuple[float, float] | None = None) -> None:
        caption = item.text or class_title(item.label) or Path(item.path).name
        if item.modality == "video":
            self.preview.load("video", item.path, caption, poster=preview, span=span)  # type: ignore[arg-type]
            # The index's thumbnail is small; the clip's own frame (a moment's first), decoded off
            # the UI thread, replaces it when it arrives (if that clip is still the one shown).
            worker = Worker(_poster_frame, item.path, span[0] if span is not None else 0.0)
            worker.signals.result.connect(lambda frame, path=item.path: self.preview.set_poster(path, frame))
            self.posters.start(worker)
        else:
            self.preview.load("speech", item.path, caption, peaks=preview)  # type: ignore[arg-type]

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
        self._update_query_vector()
        retriever = self.session.retriever
        self.undo_action.setEnabled(retriever is not None and retriever.can_undo)
        if updates:
            u = updates[-1]
            self.statusBar().showMessage(f"Memory updated: slot {u.slot} ({u.kind}). Ctrl+Z undoes it.", 8000)

    # -- jobs, messages -----------------------------------------------------------------------

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
        self._show_progress(False)
        if not self.session.indexing and self.statusBar().currentMessage().endswith("…"):
            self.statusBar().clearMessage()  # the job's "working" line; a result's own message stays

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"indexing %v / {total}")

    def _show_progress(self, visible: bool) -> None:
        self.progress.setVisible(visible)
        self.cancel_button.setVisible(visible)

    def show_error(self, text: str) -> None:
        """Show an error in the window's message bar (the app carries on)."""
        log.info("shown to the user: %s", text)
        self.messages.show_error(text)

    def show_info(self, text: str) -> None:
        self.messages.show_info(text)

    def _report(self, kind: str, text: str) -> None:
        (self.show_error if kind == "error" else self.show_info)(text)

    def _focus_filter(self) -> None:
        self.library.filter.setFocus()
        self.library.filter.selectAll()

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
        self.posters.shutdown()
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


def _poster_frame(path: Path, at: float) -> np.ndarray | None:
    """A video's frame at ``at`` seconds as RGB, or None when it cannot be decoded (the thumbnail stays)."""
    from fmn_core.media.errors import MediaError
    from fmn_core.media.video_io import read_frame_at

    try:
        return np.ascontiguousarray(read_frame_at(path, at)[:, :, ::-1])
    except MediaError:
        return None


def _replay_path(source: str) -> Path | None:
    path = Path(source)
    return path if path.is_file() else None


def _device_name(retriever: Retriever) -> str:
    device = retriever.model.device
    if device.type == "cuda":
        import torch

        return f"CUDA ({torch.cuda.get_device_name(device)})"
    return "CPU"
