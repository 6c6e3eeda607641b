"""WindowLayout: the main window's widgets and where they sit, with its message bar and progress display.

What the widgets do lives in :class:`app.main_window.MainWindow`, which derives from this, and in
the flows it starts; those flows see the window through this class, so none of them imports the
main window.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.recorder import Recorder
from app.widgets.library_view import LibraryView
from app.widgets.memory_inspector import MemoryInspector
from app.widgets.message_bar import MessageBar
from app.widgets.preview_player import PreviewPlayer
from app.widgets.query_panel import QueryPanel
from app.widgets.results_view import ResultsView

log = logging.getLogger(__name__)


class WindowLayout(QMainWindow):
    """Query bar on top; library, ranked results and preview side by side; memory inspector below.

    Call :meth:`_build` once from the constructor (the recorder must exist first); it makes the
    attributes: ``messages``, ``query``, ``library``, ``results``, ``preview``, ``splitter``,
    ``inspector`` and ``inspector_dock``, and the status bar's ``progress``, ``cancel_button``,
    ``device_label``, ``model_label``, ``library_label`` and ``timing_label``.
    """

    def _build(self, recorder: Recorder) -> None:
        self.messages = MessageBar(self)
        self.query = QueryPanel(recorder, self)
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
        self._build_status_bar()

    def _build_status_bar(self) -> None:
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
        self.show_progress(False)

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

    def show_progress(self, visible: bool) -> None:
        """Show or hide the indexing progress bar and its Cancel button."""
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
