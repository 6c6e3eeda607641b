"""PreviewFlow: what the selected result or library item shows in the preview player and the inspector.

A video's own frame and a query's scores along a long video are computed on a one-thread pool and
land only if their clip is still the one shown; the index's small thumbnail and peaks are quick
enough to read on the UI thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject

from app.labels import class_title
from app.workers import Worker, WorkerPool

if TYPE_CHECKING:
    from app.session import SearchSession
    from app.widgets.library_view import LibraryView
    from app.widgets.memory_inspector import MemoryInspector
    from app.widgets.preview_player import PreviewPlayer
    from app.widgets.results_view import ResultsView
    from fmn_core.index.results import Hit, Item, WindowScores


class PreviewFlow(QObject):
    """Follows the selection in ``library`` and ``results``: loads it in ``preview``, plays it when activated,
    and shows the query's memory vector in ``inspector`` with the slot that favoured the selected result.

    Attributes:
        posters: the pool for posters of previewed clips and a query's scores along a long video.
    """

    def __init__(
        self,
        session: SearchSession,
        library: LibraryView,
        results: ResultsView,
        preview: PreviewPlayer,
        inspector: MemoryInspector,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.results, self.preview, self.inspector = session, results, preview, inspector
        self.posters = WorkerPool(1, self)
        results.currentHitChanged.connect(self.show_hit)
        results.playRequested.connect(self.play_hit)
        library.currentItemChanged.connect(self.show_item)
        library.itemActivated.connect(self.play_item)

    def show_hit(self, hit: Hit | None) -> None:
        if hit is not None:
            self._load(hit.item, self.results.model.preview(hit.key), hit.span)
            last, retriever = self.session.last, self.session.retriever
            if hit.span is not None and last is not None and retriever is not None:
                # the query's score along the whole video, for the strip under the player
                worker = Worker(retriever.window_scores, last.query, hit.item.id)
                worker.signals.result.connect(lambda scores, item=hit.item: self._show_scores(item, scores))
                self.posters.start(worker)
        self.update_query_vector()

    def _show_scores(self, item: Item, scores: WindowScores) -> None:
        if Path(self.preview.player.source().toLocalFile()) == item.path:  # still the video shown
            self.preview.show_scores(item.duration, scores)

    def update_query_vector(self) -> None:
        """The last query's memory vector in the inspector, with the selected result's winning slot."""
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

    def play_hit(self, hit: Hit | None) -> None:
        if hit is not None:
            self.show_hit(hit)
            self.preview.play()

    def play_current_result(self) -> None:
        self.play_hit(self.results.current_hit())

    def show_item(self, item: Item) -> None:
        retriever = self.session.retriever
        preview = None
        if retriever is not None:  # a small cached JPEG or peaks array: quick enough for the UI thread
            preview = retriever.thumbnail(item.id) if item.modality == "video" else retriever.waveform(item.id)
        self._load(item, preview)

    def play_item(self, item: Item | None) -> None:
        if item is not None:
            self.show_item(item)
            self.preview.play()

    def _load(self, item: Item, preview: object, span: tuple[float, float] | None = None) -> None:
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

    def shutdown(self) -> None:
        """Cancel the posters and scores still being computed and wait for them (the window is closing)."""
        self.posters.shutdown()


def _poster_frame(path: Path, at: float) -> np.ndarray | None:
    """A video's frame at ``at`` seconds as RGB, or None when it cannot be decoded (the thumbnail stays)."""
    from fmn_core.media.errors import MediaError
    from fmn_core.media.video_io import read_frame_at

    try:
        return np.ascontiguousarray(read_frame_at(path, at)[:, :, ::-1])
    except MediaError:
        return None
