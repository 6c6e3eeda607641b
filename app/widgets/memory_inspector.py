"""MemoryInspector: both memory banks side by side, and how the current query meets its own bank."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from app.labels import when
from app.widgets.bank_view import BankView
from app.widgets.memory_vector_chart import MemoryVectorChart

if TYPE_CHECKING:
    from app.session import BankSnapshot
    from fmn_core.index.results import BankUpdate


class MemoryInspector(QWidget):
    """Video and speech banks (slot tables and similarity heatmaps) above the query's memory vector."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("No model loaded.")
        self.summary.setWordWrap(True)
        self.video = BankView("Video bank", self)
        self.speech = BankView("Speech bank", self)
        self.chart = MemoryVectorChart(self)
        self.chart.setToolTip("Cosine of the query with every slot of its own bank; the winning slot is orange")
        banks = QSplitter(Qt.Orientation.Horizontal, self)
        banks.addWidget(self.video)
        banks.addWidget(self.speech)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(banks, 1)
        layout.addWidget(self.chart)
        self._used: dict[str, np.ndarray] = {}

    def bank_view(self, bank: str) -> BankView:
        return self.video if bank == "video" else self.speech

    def set_banks(self, video: BankSnapshot, speech: BankSnapshot, last_updates: Sequence[BankUpdate] = ()) -> None:
        """Show both banks; the slots ``last_updates`` wrote are highlighted and described."""
        changed = {u.slot for u in last_updates}
        for view, snap in ((self.video, video), (self.speech, speech)):
            view.set_snapshot(snap, changed)
            self._used[snap.bank] = np.array([s.used for s in snap.slots], dtype=bool)
        if last_updates:
            u = last_updates[-1]
            what = {"append": "written into free slot", "average": "averaged into slot", "replace": "replaced slot"}
            m2 = "" if u.m2 is None else f", m2 {u.m2:.2f}"
            pair = " + ".join(Path(s).name for s in u.source_ids)  # a query file's id is its whole path
            self.summary.setText(
                f"Last change ({when(u.time)}): {pair} {what.get(u.kind, u.kind)} {u.slot}{m2}.  Undo with Ctrl+Z."
            )
        else:
            self.summary.setText("Confirm a match (Ctrl+Return on a result) to teach the memory a pair.")

    def set_query(self, bank: str, vector: np.ndarray, winner: int | None, caption: str) -> None:
        """Show the query's memory vector against its ``bank``; mark ``winner`` there and in the bank's view."""
        self.chart.set_vector(vector, self._used.get(bank), winner, caption)
        for name in ("video", "speech"):
            self.bank_view(name).set_winner(winner)

    def clear_query(self) -> None:
        self.chart.clear()
        for name in ("video", "speech"):
            self.bank_view(name).set_winner(None)
