"""SearchSession: the window's one way into the core's Retriever, every call made on a worker thread.

The session opens (indexes) a library, turns files, recordings and library items into queries,
searches, confirms matches and undoes them. It computes nothing itself: it calls
:class:`fmn_core.index.retriever.Retriever` and hands the results back by signal. Calls go
through a pool of one thread, so they run one at a time and in the order they were asked for.

Once a speech query is ranked, a second pool transcribes it with Whisper (what the model heard),
so the transcript never delays a ranking; a newer query makes an older transcript moot.

While a library is open, a third pool looks at its folder every ``watch_interval_ms`` (a stat of
each file, never the Retriever); files added, changed or removed, once settled, are indexed by a
job in the main pool, after whatever query is running.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.labels import class_title, voice_note
from app.workers import Worker, WorkerPool
from fmn_core.errors import FmnError
from fmn_core.index.moments import span_text

if TYPE_CHECKING:
    from fmn_core.features.whisper import Transcript
    from fmn_core.index.plan import IndexReport
    from fmn_core.index.results import BankUpdate, Query, SearchResult, SlotInfo
    from fmn_core.index.retriever import Retriever
    from fmn_core.index.watch import LibraryWatcher

log = logging.getLogger(__name__)

BANKS = ("video", "speech")


@dataclass(frozen=True)
class BankSnapshot:
    """One memory bank as the inspector shows it."""

    bank: str  # 'video' or 'speech'
    slots: list[SlotInfo]
    similarity: np.ndarray  # (X, X) slot-by-slot cosine
    thumbnails: dict[str, np.ndarray]  # source id -> RGB thumbnail (video sources)
    texts: dict[str, str]  # source id -> transcript, class name or description
    note: str = ""  # what else the bank learned (the speech bank: the user's voice)


@dataclass(frozen=True)
class Ranking:
    """What a search hands back to the window."""

    result: SearchResult
    caption: str  # what the query was, in words
    previews: dict[str, np.ndarray]  # item id -> thumbnail (H, W, 3) or waveform peaks (N,)
    seconds: float = 0.0  # the whole job: decoding, encoding and ranking
    query_preview: np.ndarray | None = None  # the query's own thumbnail or waveform peaks, when new
    banks: tuple[BankSnapshot, BankSnapshot] | None = None  # set when the banks changed
    updates: list[BankUpdate] = field(default_factory=list)  # the change that was made, if any
    audio: Path | np.ndarray | None = None  # a new speech query's file or 16 kHz wave, to transcribe


class SearchSession(QObject):
    """Opens a library and runs queries against it, off the UI thread.

    Signals:
        busy(str): a job started: 'indexing', 'query', 'confirm' or 'undo'.
        idle(): the job finished (successfully or not).
        progress(int, int): indexing progress (done, total).
        opened(object): the Retriever, ready to search.
        ranked(object): a :class:`Ranking`.
        banksChanged(object, object, object): video and speech :class:`BankSnapshot` and the updates made.
        failed(str): a message for the user; the session keeps working.
        heard(object): the latest speech query's :class:`~fmn_core.features.whisper.Transcript`.
        notHeard(str): why the latest speech query has no transcript (the ranking stands).
        libraryChanged(object): files came, changed or went, and the index followed (an IndexReport).
    """

    watch_interval_ms = 2000  # how often the open library's folder is looked at

    busy = Signal(str)
    idle = Signal()
    progress = Signal(int, int)
    opened = Signal(object)
    ranked = Signal(object)
    banksChanged = Signal(object, object, object)
    failed = Signal(str)
    heard = Signal(object)
    notHeard = Signal(str)
    libraryChanged = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workers = WorkerPool(1, self)
        self.retriever: Retriever | None = None
        self.last: SearchResult | None = None
        self.last_caption = ""
        self._opening: Worker | None = None
        self.speech_off: str | None = None  # why this model cannot take speech queries here, if it cannot
        self.ears = WorkerPool(1, self)  # transcripts: beside the Retriever's pool, never ahead of it
        self._queries = 0  # new queries asked for so far: a result for an older one is stale
        self._hearing: Worker | None = None  # the transcript being made for the latest query
        self._watcher: LibraryWatcher | None = None
        self._looking = WorkerPool(1, self)  # the watcher's stat calls: never in the Retriever's queue
        self._watch_timer = QTimer(self)
        self._watch_timer.timeout.connect(self._look)
        self._updating = False  # a watch-triggered index update is queued or running
        self._jobs: int | None = None  # decoding processes the library was opened with

    # -- opening ------------------------------------------------------------------------------

    def open(self, library: Path, model: Path | None = None, device: str = "cpu", jobs: int | None = None) -> None:
        """Open (and index) a library with a model (None: the shipped one); emits opened or failed.

        A folder that is no library (no media, a bad manifest) is refused before the open
        library is closed: it stays open and searchable, and ``failed`` says why.
        """
        old, self.retriever, self.last, speech_off, self.speech_off = self.retriever, None, None, self.speech_off, None
        self._watch_timer.stop()
        old_watcher, self._watcher, self._jobs = self._watcher, None, jobs
        worker = Worker(_open, old, library, model, device, jobs, wants=("progress", "cancel"))
        worker.signals.progress.connect(self.progress)
        worker.signals.result.connect(self._on_opened)
        worker.signals.errored.connect(lambda _: self._keep_open(old, speech_off, old_watcher))
        self._opening = worker
        self._run(worker, "indexing")

    def _keep_open(self, old: Retriever | None, speech_off: str | None, watcher: LibraryWatcher | None) -> None:
        if old is not None and not old.closed:
            self.retriever, self.speech_off, self._watcher = old, speech_off, watcher
            self._watch_timer.start(self.watch_interval_ms)

    def cancel(self) -> None:
        """Stop indexing: the library opens with the items finished so far."""
        if self._opening is not None:
            self._opening.cancel()

    @property
    def indexing(self) -> bool:
        return self._opening is not None

    def _on_opened(self, opened: tuple[Retriever, str | None, LibraryWatcher]) -> None:
        retriever, self.speech_off, self._watcher = opened
        self.retriever = retriever
        self._watch_timer.start(self.watch_interval_ms)
        self.opened.emit(retriever)
        self._refresh_banks([])

    # -- watching the folder ------------------------------------------------------------------

    def _look(self) -> None:
        """Timer tick: one look at the folder at a time, and none while its index is being written."""
        if self._watcher is None or self._looking.busy or self._opening is not None or self._updating:
            return
        look = Worker(self._watcher.poll)
        look.signals.result.connect(self._on_looked)
        self._looking.start(look)

    def _on_looked(self, changed: bool) -> None:
        if changed and self.retriever is not None and self._opening is None:
            self._updating = True
            worker = Worker(_refresh, self.retriever, self._jobs)
            worker.signals.finished.connect(self._updated)
            self._run(worker, "updating", self.libraryChanged.emit)

    def _updated(self) -> None:
        self._updating = False

    # -- queries ------------------------------------------------------------------------------

    def search_file(self, path: Path) -> None:
        """Search with an audio or video file."""
        self._search(lambda r: r.query_from_file(path), path.name, lambda r, q: _file_preview(path, q.modality))

    def search_wave(self, wave: np.ndarray, sample_rate: int = 16000) -> None:
        """Search with a recording (float samples); the window already shows its wave."""
        self._search(lambda r: r.query_from_wave(wave, sample_rate), "recording", None, (wave, sample_rate))

    def search_item(self, item_id: str, caption: str = "", span: tuple[float, float] | None = None) -> None:
        """Search with an item of the library (``span``: a moment of a long video)."""
        caption = caption or f"library item {item_id}" + (f" at {span_text(span)}" if span else "")
        at = None if span is None else sum(span) / 2
        self._search(lambda r: r.query_from_item(item_id, span), caption, lambda r, q: _item_preview(r, item_id, at))

    def _search(
        self, make_query: Any, caption: str, preview: Any, recording: tuple[np.ndarray, int] | None = None
    ) -> None:
        retriever = self._ready()
        if retriever is None:
            return
        self._queries += 1
        number = self._queries
        self._stop_hearing()
        worker = Worker(_search, retriever, make_query, caption, preview, recording)
        self._run(worker, "query", lambda ranking: self._on_searched(ranking, number))

    def _on_searched(self, ranking: Ranking, number: int) -> None:
        if ranking.audio is not None and number == self._queries:  # a newer query needs no transcript of this one
            self._hear(ranking.audio, ranking.caption, number)
        self._on_ranked(ranking)

    def _on_ranked(self, ranking: Ranking) -> None:
        self.last, self.last_caption = ranking.result, ranking.caption
        if ranking.banks is not None:
            self.banksChanged.emit(*ranking.banks, ranking.updates)
        self.ranked.emit(ranking)

    # -- what the model heard ----------------------------------------------------------------

    @property
    def hearing(self) -> bool:
        """A transcript of the latest query is on its way (heard or notHeard will follow)."""
        return self._hearing is not None

    def _hear(self, audio: Path | np.ndarray, caption: str, number: int) -> None:
        worker = Worker(_transcribe, audio, caption, wants=("cancel",))
        worker.signals.result.connect(lambda transcript: self._on_heard(transcript, number))
        worker.signals.errored.connect(lambda error: self._on_not_heard(error, number))
        worker.signals.finished.connect(lambda: self._heard_done(worker))
        self._hearing = worker
        self.ears.start(worker)

    def _stop_hearing(self) -> None:
        if self._hearing is not None:
            self._hearing.cancel()  # not started yet: it returns at once; started: its result is dropped
            self._hearing = None

    def _on_heard(self, transcript: Transcript | None, number: int) -> None:
        if transcript is not None and number == self._queries:
            self.heard.emit(transcript)

    def _on_not_heard(self, error: BaseException, number: int) -> None:
        if number == self._queries:
            self.notHeard.emit(str(error) if isinstance(error, FmnError) else f"unexpected error: {error!r}")

    def _heard_done(self, worker: Worker) -> None:
        if worker is self._hearing:
            self._hearing = None

    # -- the memory banks ---------------------------------------------------------------------

    def confirm(self, item_id: str, span: tuple[float, float] | None = None) -> None:
        """Tell the memory that ``item_id`` (the moment ``span`` of it) matches the last query; the
        results are ranked again."""
        retriever = self._ready()
        if retriever is None:
            return
        if self.last is None:
            self.failed.emit("Nothing to confirm: run a query first.")
            return
        worker = Worker(_confirm, retriever, self.last.query, item_id, self.last_caption, span)
        self._run(worker, "confirm", self._on_ranked)

    def undo(self) -> None:
        """Undo the last change to the banks (and rank the last query again)."""
        retriever = self._ready()
        if retriever is None:
            return
        query = self.last.query if self.last else None
        self._run(Worker(_undo, retriever, query, self.last_caption), "undo", self._on_undone)

    def _on_undone(self, outcome: tuple[bool, Ranking | None, tuple[BankSnapshot, BankSnapshot]]) -> None:
        undone, ranking, banks = outcome
        if not undone:
            self.failed.emit("Nothing to undo.")
            return
        self.banksChanged.emit(*banks, [])
        if ranking is not None:
            self._on_ranked(ranking)

    def _refresh_banks(self, updates: list[BankUpdate]) -> None:
        if self.retriever is not None:
            worker = Worker(_banks, self.retriever)
            worker.signals.result.connect(lambda banks: self.banksChanged.emit(*banks, updates))
            self._run(worker, "banks")

    # -- plumbing -----------------------------------------------------------------------------

    def _ready(self) -> Retriever | None:
        if self.retriever is None:
            self.failed.emit(
                "The library is still being indexed; try again when it is done."
                if self.indexing
                else "No library is open with a model: open one first (File ▸ Open library…)."
            )
        return self.retriever

    def _run(self, worker: Worker, kind: str, on_result: Any = None) -> None:
        if on_result is not None:
            worker.signals.result.connect(on_result)
        worker.signals.started.connect(lambda: self.busy.emit(kind))
        worker.signals.errored.connect(self._on_error)
        worker.signals.finished.connect(lambda: self._finished(worker))
        self.workers.start(worker)

    def _finished(self, worker: Worker) -> None:
        if worker is self._opening:
            self._opening = None
        self.idle.emit()

    def _on_error(self, error: BaseException) -> None:
        self.failed.emit(str(error) if isinstance(error, FmnError) else f"Unexpected error: {error!r} (see the log)")

    def shutdown(self) -> None:
        """Cancel what runs, wait for it, and close the library's index."""
        self._watch_timer.stop()
        self._looking.shutdown()
        self.cancel()
        self._stop_hearing()
        self.ears.shutdown()
        self.workers.shutdown()
        if self.retriever is not None:
            self.retriever.close()
            self.retriever = None


# -- the jobs (pool thread: no Qt widgets here) -------------------------------------------------


def _open(
    old: Retriever | None, library: Path, model: Path | None, device: str, jobs: int | None, progress: Any, cancel: Any
) -> tuple[Retriever, str | None, LibraryWatcher]:
    """The open library, why its model cannot take speech queries here (None: it can), and its watcher."""
    from fmn_core.index.library import scan_library
    from fmn_core.index.retriever import Retriever
    from fmn_core.index.watch import LibraryWatcher

    watcher = LibraryWatcher(library)  # before indexing: a file arriving meanwhile is indexed next

    entries = scan_library(library)  # may be slow on a huge folder, and may refuse it: `old` stays open until here
    if old is not None:
        old.close()
    retriever = Retriever.open(
        library, model, progress=progress, cancel=cancel, device=device, jobs=jobs, entries=entries
    )
    # Here, off the UI thread: Whisper's files may be assembled once, and the I3D is built now so
    # that the first video query does not wait 1.5 s for it.
    retriever.model.net.build_video_encoder()
    return retriever, retriever.model.speech_status(), watcher


def _refresh(retriever: Retriever, jobs: int | None) -> IndexReport:
    return retriever.refresh(jobs=jobs)


def _search(
    retriever: Retriever, make_query: Any, caption: str, preview: Any, recording: tuple[np.ndarray, int] | None
) -> Ranking:
    start = time.perf_counter()
    query: Query = make_query(retriever)
    result = retriever.search(query)
    seconds = time.perf_counter() - start
    query_preview = preview(retriever, query) if preview is not None else None
    audio = _query_audio(retriever, query, recording) if query.modality == "speech" else None
    return Ranking(result, caption, _previews(retriever, result), seconds, query_preview, audio=audio)


def _query_audio(
    retriever: Retriever, query: Query, recording: tuple[np.ndarray, int] | None
) -> Path | np.ndarray | None:
    """What to transcribe: the recording as 16 kHz mono, or the file the query (or its library item) came from."""
    if recording is not None:
        from fmn_core.media.audio_io import SAMPLE_RATE, resample

        wave, rate = recording
        wave = np.asarray(wave, dtype=np.float32)
        wave = wave.mean(axis=1) if wave.ndim == 2 else wave
        return wave if rate == SAMPLE_RATE else np.clip(resample(wave, rate, SAMPLE_RATE), -1.0, 1.0)
    if query.item_id is not None:
        return Path(retriever.item(query.item_id).path)
    path = Path(query.source)
    return path if path.is_file() else None


def _transcribe(audio: Path | np.ndarray, caption: str, cancel: Any) -> Transcript | None:
    """Whisper's transcript of a speech query, trimmed as the front end trims it; None when superseded."""
    import dataclasses

    from fmn_core.features.audio import SpeechFrontEndConfig, prepare_wave
    from fmn_core.features.whisper import transcribe
    from fmn_core.media.audio_io import SAMPLE_RATE, load_audio

    if cancel():
        return None
    cfg = SpeechFrontEndConfig()
    wave = load_audio(audio) if isinstance(audio, Path) else audio
    transcript = transcribe(prepare_wave(wave, cfg, caption))
    cut = len(wave) > cfg.max_seconds * SAMPLE_RATE  # prepare_wave cut it, so transcribe cannot tell
    return dataclasses.replace(transcript, cut=True) if cut else transcript


def _file_preview(path: Path, modality: str) -> np.ndarray | None:
    """A query file's waveform peaks (speech) or first frame as RGB (video); None when it cannot be read."""
    from app.widgets.waveform_view import wave_peaks
    from fmn_core.media.audio_io import load_audio
    from fmn_core.media.errors import MediaError
    from fmn_core.media.video_io import read_frames

    try:
        if modality == "speech":
            return wave_peaks(load_audio(path))
        return np.ascontiguousarray(read_frames(path, max_frames=1)[0][:, :, ::-1])
    except MediaError:
        return None  # the query worked, so this is cosmetic


def _item_preview(retriever: Retriever, item_id: str, at: float | None = None) -> np.ndarray | None:
    """A video's thumbnail (for a long one, the one nearest ``at`` seconds) or a speech item's peaks."""
    if retriever.item(item_id).modality == "video":
        return retriever.thumbnail(item_id, at)
    return retriever.waveform(item_id)


def _confirm(
    retriever: Retriever, query: Query, item_id: str, caption: str, span: tuple[float, float] | None = None
) -> Ranking:
    start = time.perf_counter()
    updates = retriever.confirm(query, item_id, span)
    result = retriever.search(query)
    seconds = time.perf_counter() - start
    return Ranking(result, caption, _previews(retriever, result), seconds, None, _banks(retriever), updates)


def _undo(
    retriever: Retriever, query: Query | None, caption: str
) -> tuple[bool, Ranking | None, tuple[BankSnapshot, BankSnapshot]]:
    if not retriever.undo():
        return False, None, _banks(retriever)
    ranking = None
    if query is not None:
        result = retriever.search(query)
        ranking = Ranking(result, caption, _previews(retriever, result), result.seconds)
    return True, ranking, _banks(retriever)


def _previews(retriever: Retriever, result: SearchResult) -> dict[str, np.ndarray]:
    """Each hit's picture or peaks, by :attr:`Hit.key`: a moment's thumbnail is taken near its middle."""
    previews = {}
    for hit in result.hits:
        array = _item_preview(retriever, hit.item.id, None if hit.span is None else sum(hit.span) / 2)
        if array is not None:
            previews[hit.key] = array
    return previews


def _banks(retriever: Retriever) -> tuple[BankSnapshot, BankSnapshot]:
    items = {it.id: it for it in retriever.items()}
    snaps = []
    for bank in BANKS:
        slots = retriever.bank_slots(bank)
        thumbnails: dict[str, np.ndarray] = {}
        texts: dict[str, str] = {}
        shown = []
        for info in slots:
            # A slot remembers a pair; each bank's table shows the half of it that bank holds.
            own = [sid for sid in info.source_ids if _source_modality(sid, items) == bank]
            shown.append(_with_sources(info, own))
            for sid in own:
                item = items.get(sid)
                texts[sid] = (item.text or class_title(item.label) or sid) if item else _describe_source(sid)
                if bank == "video" and item is not None and sid not in thumbnails:
                    thumb = retriever.thumbnail(sid)
                    if thumb is not None:
                        thumbnails[sid] = thumb
        note = voice_note(*retriever.voice()) if bank == "speech" else ""
        snaps.append(BankSnapshot(bank, shown, retriever.bank_similarity(bank), thumbnails, texts, note))
    return snaps[0], snaps[1]


def _with_sources(info: SlotInfo, source_ids: list[str]) -> SlotInfo:
    import dataclasses

    return dataclasses.replace(info, source_ids=source_ids)


def _source_modality(source_id: str, items: dict[str, Any]) -> str | None:
    """Which bank a source belongs to: a library item's modality, else what the query file was."""
    if source_id in items:
        return items[source_id].modality
    if source_id == "recording":
        return "speech"
    from fmn_core.index.library import modality_of

    return modality_of(source_id.removeprefix("item:"))


def _describe_source(source_id: str) -> str:
    return "a microphone recording" if source_id == "recording" else Path(source_id).name
