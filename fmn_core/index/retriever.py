"""Search a library: the Retriever behind ``fmn search`` and the desktop app.

A query (a file, a recording, or an item of the library) is turned into raw features with the
library's model; the items of the *other* modality are ranked by the FMN's final score S (by its
logit where the combination has one, exactly as :meth:`FMNModel.ranking_scores` ranks).

Large libraries are ranked in two stages: the exact cosine between the query's and every item's
normalised common-space vectors (one matrix-vector product over the stored vectors) keeps the
best ``rerank`` items, and only those are scored with S (fusion head + memory banks). A library
of at most ``rerank`` items is scored entirely with S, so its ranking is the evaluation's. Above
``ann_threshold`` rows of a modality, the cosine stage is an approximate index search instead
(``index.ann``, kept beside the index); the rows it finds are still scored with S exactly.

A long video is searched as its windows (``index.indexer``): the windows are ranked like clips,
and the scored windows of one video become moments by temporal non-maximum suppression
(``moments.merge_windows``), so a hit is a file, or a stretch of a file with its start and end.

Each library has its own memory banks (DESIGN §2.6): they start as the model's and learn from
the user's confirmations (and, with ``auto_update``, from confident matches); every change is
logged, persisted in the index and can be undone exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import torch

from fmn_core.errors import FmnError
from fmn_core.eval import scoring
from fmn_core.index.ann import ANN_THRESHOLD, AnnIndex, row_keys
from fmn_core.index.identity import model_identity
from fmn_core.index.indexer import Cancel, Indexer, Progress
from fmn_core.index.library import LibraryEntry, detect_modality
from fmn_core.index.library_memory import LibraryMemory
from fmn_core.index.location import LibraryIndexError
from fmn_core.index.moments import moment_scores
from fmn_core.index.plan import IndexReport
from fmn_core.index.ranking import Collection, hits_in_order, nearest_rows
from fmn_core.index.records import StoredItem
from fmn_core.index.results import MODALITIES, BankUpdate, Hit, Item, Query, SearchResult, SlotInfo, WindowScores
from fmn_core.index.store import Store
from fmn_core.inference import FMNModel
from fmn_core.media.errors import MediaError

log = logging.getLogger(__name__)

RERANK = 200  # items scored with S after the cosine stage
MAX_QUERY_SECONDS = 30.0  # longer query videos are cut to their start (speech: the front end's max_seconds)


def _cut_note(path: Path, seconds: float, limit: float) -> str:
    return f"{path.name} is {seconds:.1f} s long; only its first {limit:.0f} s were used."


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads (None: unchanged)."""
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _other(modality: str) -> str:
    return "video" if modality == "speech" else "speech"


def _users_voice(query: Query) -> bool:
    """Whether a query is the user's own speech (a recording or a file), not a library's clip."""
    return query.modality == "speech" and query.item_id is None


class Retriever:
    """A library's index and its model, ready to search.

    Open one with :meth:`open`. Methods may be called from several threads (the app indexes and
    searches in workers); bank changes are serialised by a lock.

    Attributes:
        model: the model (its memory banks are the library's).
        store: the library's index; None for an in-memory retriever (benchmarks).
        report: what the last indexing run did.
        auto_update: when True, a search whose best hit has S1 > T1 writes that pair into the
            banks (DESIGN §2.6). Only the best hit: one query is one sample, and pairing it with
            every confident hit would fill the banks with copies of the query.
        rerank: items scored with S after the cosine stage.
        query_threads: torch threads while a query is encoded and ranked (None: torch's own
            setting). One query's operations are small: a second thread gains little when the
            machine is idle and costs much when it is busy, e.g. while indexing (measured in
            docs/benchmarks.md). With OpenMP the setting is per thread, so other threads keep theirs.
    """

    def __init__(self, model: FMNModel, store: Store | None = None, report: IndexReport | None = None) -> None:
        self.model = model
        self.store = store
        self.report = report or IndexReport()
        self.auto_update = False
        self.closed = False  # set by close(): its index may no longer be read
        self.rerank = RERANK
        self.ann_threshold = ANN_THRESHOLD  # rows of a modality above which the cosine stage is approximate
        self._ann: dict[str, AnnIndex] = {}
        self.query_threads: int | None = 1
        self._lock = threading.RLock()
        self._items: dict[str, Item] = {}
        self._collections: dict[str, Collection] = {
            m: Collection([], np.zeros((0, model.cfg.embed_dim), np.float32), np.zeros((0, 0), np.float32))
            for m in MODALITIES
        }
        self.memory = LibraryMemory(model, store, self._lock)

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        library: str | os.PathLike[str],
        model: str | os.PathLike[str] | FMNModel | None = None,
        progress: Progress | None = None,
        cancel: Cancel | None = None,
        device: str = "cpu",
        jobs: int | None = None,
        entries: Sequence[LibraryEntry] | None = None,
        indexer: Callable[[Store, FMNModel], Indexer] | None = None,
    ) -> Retriever:
        """Open a library's index and bring it up to date (indexing what is new or changed).

        Args:
            library: the library folder.
            model: a model folder or checkpoint (None: the shipped model), or a loaded model
                (whose memory banks then become the library's).
            progress: ``progress(done, total)`` while indexing.
            cancel: polled while indexing; True stops it, and the retriever opens with the
                items finished so far (``report.cancelled``).
            device: where the model runs ('cpu', 'cuda', 'auto').
            jobs: decoding processes for indexing (default: all cores).
            entries: the library's files when the caller has scanned it already (default:
                :func:`~fmn_core.index.library.scan_library`).
            indexer: makes the indexer that brings the index up to date (default: a local
                :class:`~fmn_core.index.indexer.Indexer` with ``jobs``; e.g. one that encodes on Ray).

        Raises:
            FmnError: no model there, a damaged index, an invalid manifest or no media.
        """
        # The I3D is built when a clip is first encoded: a speech search never waits for it.
        fmn = model if isinstance(model, FMNModel) else FMNModel.load(model, device, defer_video=True)
        store = Store(library)
        try:
            if not store.attach_model(model_identity(fmn, store), fmn.net.memory.snapshot()):
                banks = store.load_banks()
                if banks is not None:
                    try:
                        fmn.net.memory.restore(banks)
                    except ValueError as e:
                        raise LibraryIndexError(f"{store.path}: stored memory banks do not fit the model: {e}") from e
            if fmn.path is not None and store.get_meta("model_path") != str(fmn.path.resolve()):
                store.set_meta("model_path", str(fmn.path.resolve()))  # for `fmn search` without --model
            run = indexer(store, fmn) if indexer is not None else Indexer(store, fmn, jobs)
            report = run.run(entries, progress=progress, cancel=cancel)
        except BaseException:
            store.close()
            raise
        retriever = cls(fmn, store, report)
        retriever.reload()
        return retriever

    def refresh(
        self, progress: Progress | None = None, cancel: Cancel | None = None, jobs: int | None = None
    ) -> IndexReport:
        """Index what changed in the library since it was opened, then reload."""
        if self.store is None:
            raise FmnError("an in-memory retriever has no library to refresh")
        self.report = Indexer(self.store, self.model, jobs).run(progress=progress, cancel=cancel)
        self.reload()
        return self.report

    def reload(self) -> None:
        """Read the items and their features from the index."""
        if self.store is None:
            return
        root = str(self.store.library)
        # Big modalities' features come mapped from files (index.row_cache): with the approximate
        # index, vecs are read only to sync it and raw only at the rows scored. Below the threshold
        # the exact cosine stage reads every vector at each query, so they are held whole as before.
        rows, vectors = self.store.load(map_above=self.ann_threshold)
        items = {i: self._item(root, r) for i, r in rows.items() if r.status != "stale"}
        collections = {
            m: Collection([items[i] for i in v.ids], v.vec, v.raw, v.spans, v.background) for m, v in vectors.items()
        }
        for m, v in vectors.items():
            if len(v.ids) > self.ann_threshold:
                collections[m].ann = self._synced_ann(m, v.ids, v.vec, {i: r.hash for i, r in rows.items()})
        with self._lock:
            self._items = items  # in id order, as the query returned them
            self._collections = collections

    def _synced_ann(self, modality: str, ids: list[str], vecs: np.ndarray, hashes: dict[str, str]) -> AnnIndex:
        """The approximate search index of a big modality, brought up to date with its rows."""
        ann = self._ann.get(modality)
        if ann is None:
            identity = json.dumps(self.store.model_identity() if self.store else None, sort_keys=True)
            path = self.store.folder / f"ann-{modality}.faiss" if self.store else None
            ann = self._ann[modality] = AnnIndex(vecs.shape[1], identity, path)
        started = time.perf_counter()
        done = ann.sync(row_keys(ids, hashes), vecs)
        log.info(
            "%s approximate index: %d rows (+%d, -%d%s) in %.1f s", modality, len(ann), done.added, done.removed,
            f"; rebuilt: {done.rebuilt}" if done.rebuilt else "", time.perf_counter() - started,
        )  # fmt: skip
        return ann

    @staticmethod
    def _item(root: str, r: StoredItem) -> Item:
        path = Path(r.path if os.path.isabs(r.path) else os.path.join(root, r.path))  # one Path per item
        return Item(r.id, path, r.modality, r.label, r.text, r.duration, r.status, r.reason)

    def close(self) -> None:
        """Close the index."""
        if self.store is not None:
            self.store.close()
        self.closed = True

    # -- the library ---------------------------------------------------------------------------

    def items(self, modality: str | None = None) -> list[Item]:
        """Every item (ok and failed), by id; of one modality when given."""
        return [it for it in self._items.values() if modality is None or it.modality == modality]

    def item(self, item_id: str) -> Item:
        """One item.

        Raises:
            FmnError: no such item.
        """
        item = self._items.get(item_id)
        if item is not None:
            return item
        for col in self._collections.values():  # an in-memory retriever has collections only
            row = col.index.get(item_id)
            if row is not None:
                return col.items[row]
        raise FmnError(f"no item {item_id!r} in this library")

    def thumbnail(self, item_id: str, at: float | None = None) -> np.ndarray | None:
        """A video item's thumbnail as ``(H, W, 3)`` uint8 RGB; None for speech or when there is none.

        ``at`` (seconds): for a long video, the stored thumbnail nearest that time (a moment's middle).
        """
        if self.store is None or self._items.get(item_id, None) is None or self._items[item_id].modality != "video":
            return None
        data = None
        if at is not None and item_id in self._collections["video"].windows_of:
            data = self.store.window_preview(item_id, at)
        data = data or self.store.preview(item_id)
        if data is None:
            return None
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return None if bgr is None else np.ascontiguousarray(bgr[..., ::-1])

    def waveform(self, item_id: str) -> np.ndarray | None:
        """A speech item's waveform summary: float32 peaks in [0, 1]; None for video or when there is none."""
        if self.store is None or self._items.get(item_id, None) is None or self._items[item_id].modality != "speech":
            return None
        data = self.store.preview(item_id)
        return None if data is None else np.frombuffer(data, np.float32).copy()

    # -- queries -------------------------------------------------------------------------------

    def query_from_file(self, path: str | os.PathLike[str], modality: str | None = None) -> Query:
        """A query from a video or audio file (modality from the extension, else from the content).

        ``modality="speech"`` asks for the sound track of any file, a video's included.

        Speech longer than the front end's limit (30 s) and videos longer than 30 s are cut to
        their start; the query's ``notes`` say so.

        Raises:
            MediaError: missing, empty, corrupt or unrecognised file; silence or under 0.3 s of speech.
        """
        path = Path(path)
        modality = modality or detect_modality(path)
        if modality not in ("video", "speech"):
            raise ValueError(f"modality is 'video' or 'speech', got {modality!r}")
        with _torch_threads(self.query_threads):
            if modality == "speech":
                raw, notes = self._speech_query_raw(path)
            else:
                raw, notes = self._video_query_raw(path)
        return Query(modality, raw, str(path), notes=notes)

    def _speech_query_raw(self, path: Path) -> tuple[torch.Tensor, tuple[str, ...]]:
        from fmn_core.media.audio_io import SAMPLE_RATE, load_audio

        wave = load_audio(path)
        limit = self.model.speech_frontend.max_seconds
        seconds = len(wave) / SAMPLE_RATE
        notes = (_cut_note(path, seconds, limit),) if seconds > limit else ()
        return self.model.speech_raw_from_wave(wave, str(path)), notes

    def _video_query_raw(self, path: Path) -> tuple[torch.Tensor, tuple[str, ...]]:
        from fmn_core.features.video import load_clip
        from fmn_core.media.video_io import probe_video

        cfg = self.model.video_frontend
        try:
            info = probe_video(path)
        except MediaError:
            info = None  # load_clip says what is wrong, or decodes what the container hides
        notes: tuple[str, ...] = ()
        if info is not None and info.fps > 0 and info.duration_s > MAX_QUERY_SECONDS:
            log.warning("%s: %.1f s long; using the first %.0f s", path, info.duration_s, MAX_QUERY_SECONDS)
            notes = (_cut_note(path, info.duration_s, MAX_QUERY_SECONDS),)
            cfg = dataclasses.replace(cfg, max_decode_frames=max(1, int(MAX_QUERY_SECONDS * info.fps)))
        return self.model.video_raw_from_clips(load_clip(path, cfg)[None])[0], notes

    def query_from_wave(self, wave: np.ndarray, sample_rate: int = 16000) -> Query:
        """A query from a recording: float samples, mono ``(N,)`` or ``(N, channels)``.

        Raises:
            MediaError: silence or under 0.3 s of speech.
        """
        from fmn_core.media.audio_io import SAMPLE_RATE, resample

        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim == 2:
            wave = wave.mean(axis=1)
        if wave.ndim != 1:
            raise MediaError(f"the recording: expected (N,) or (N, channels) samples, got shape {wave.shape}")
        if sample_rate != SAMPLE_RATE:
            wave = np.clip(resample(wave, sample_rate, SAMPLE_RATE), -1.0, 1.0)
        with _torch_threads(self.query_threads):
            return Query("speech", self.model.speech_raw_from_wave(wave), "recording")

    def query_from_item(self, item_id: str, span: tuple[float, float] | None = None) -> Query:
        """A query from an item of the library (its stored features).

        ``span``: a moment of a long video (its windows' features, averaged); None: the whole item.

        Raises:
            FmnError: no such item, or the item could not be indexed.
        """
        item = self.item(item_id)
        raw = torch.from_numpy(self._item_raw(item, span, "searched with"))
        source = f"item:{item_id}" if span is None else f"item:{item_id}@{span[0]:g}-{span[1]:g}"
        return Query(item.modality, raw, source, item_id)

    def _item_raw(self, item: Item, span: tuple[float, float] | None, use: str) -> np.ndarray:
        """An item's raw features; a long video's: the mean of its windows (those whose middle is in ``span``)."""
        col = self._collections[item.modality]
        rows = col.windows_of.get(item.id)
        if rows is None:
            row = col.index.get(item.id)
            if row is None:
                raise FmnError(f"item {item.id!r} cannot be {use}: {item.reason or 'it is not indexed yet'}")
            return np.array(col.raw[row], dtype=np.float32)
        assert col.spans is not None
        chosen = np.arange(rows.start, rows.stop)
        if span is not None:
            middles = col.spans[chosen].mean(axis=1)
            inside = chosen[(middles >= span[0]) & (middles <= span[1])]
            chosen = inside if len(inside) else chosen[[int(np.argmin(np.abs(middles - sum(span) / 2)))]]
        mean: np.ndarray = np.asarray(col.raw[chosen], dtype=np.float32).mean(axis=0)
        return mean

    # -- search --------------------------------------------------------------------------------

    def search(self, query: Query, top: int | None = None) -> SearchResult:
        """Rank the other modality's ok items by S, best first.

        Args:
            query: what to search with.
            top: hits to return (None: every item scored with S, i.e. all of them in a library
                of at most ``rerank`` items).
        """
        self._check_query(query)
        calibration = self.model.calibration
        fit = calibration.fit_for(query.modality) if calibration is not None else None
        with self._lock, _torch_threads(self.query_threads):
            start = time.perf_counter()
            col = self._collections[_other(query.modality)]
            q_raw = self._query_raw(query)
            rows = self._candidates(col, query, q_raw, top)
            hits: list[Hit] = []
            if len(rows):
                c_raw = torch.from_numpy(np.ascontiguousarray(col.raw[rows], dtype=np.float32))
                speech_query = query.modality == "speech"
                v, a = (c_raw, q_raw) if speech_query else (q_raw, c_raw)
                out, ranking = self.model.score_and_rank(v, a)

                def flat(t: torch.Tensor | np.ndarray) -> np.ndarray:
                    return np.asarray(t[:, 0] if speech_query else t[0])

                # The evaluation's order (FMNModel.ranking_scores), not S itself: S saturates in float32.
                score = flat(ranking)
                order, spans = hits_in_order(col, rows, score, self.model)
                order, spans = order[:top], spans[:top]
                s, s1, mem, slot = flat(out.s), flat(out.s1), flat(out.memory), flat(out.slot)
                sure = fit.confidence(score[order]) if fit is not None else None
                hits = [
                    Hit(
                        col.items[rows[j]], rank + 1, float(s[j]), float(s1[j]), float(mem[j]), int(slot[j]),
                        None if sure is None else float(sure[rank]), *span,
                    )
                    for rank, (j, span) in enumerate(zip(order, spans, strict=True))
                ]  # fmt: skip
            memory_vector = (
                self.memory.own_bank(query.modality).memory_vector(q_raw.to(self.model.device))[0].cpu().numpy()
            )
            seconds = time.perf_counter() - start
            if self.auto_update and hits and hits[0].s1 > self.model.net.memory.t1:
                self._auto_update(query, hits[0])
        return SearchResult(query, hits, memory_vector, seconds, fit.threshold if fit is not None else None)

    def window_scores(self, query: Query, item_id: str) -> WindowScores:
        """How a speech query scores along a long video: every window of ``item_id``, in time order.

        Raises:
            FmnError: not a speech query, or not a long video of this library.
        """
        self._check_query(query)
        if query.modality != "speech":
            raise FmnError("a video is scored along its length by a spoken query")
        col = self._collections["video"]
        rows = col.windows_of.get(item_id)
        if rows is None or col.spans is None:
            raise FmnError(f"item {item_id!r} is not a long video indexed as windows")
        calibration = self.model.calibration
        fit = calibration.fit_for("speech") if calibration is not None else None
        with self._lock, _torch_threads(self.query_threads):
            c_raw = torch.from_numpy(np.array(col.raw[rows], dtype=np.float32))  # a slice is a read-only view
            _, ranking = self.model.score_and_rank(c_raw, self._query_raw(query))
            score = np.asarray(ranking[:, 0])
        sure = fit.confidence(score) if fit is not None else None
        background = col.background[rows] if col.background is not None else None
        log_s = scoring.log_s(score, self.model.net.combiner.mode)
        scores = moment_scores(log_s, background, self.model.moment_prior)
        return WindowScores(col.spans[rows].copy(), scores, sure, self.model.moment_centre)

    def _query_raw(self, query: Query) -> torch.Tensor:
        """``(1, D)`` the query's raw features as they are scored: a user's own speech with the
        voice the banks learned from its confirmations taken away (``PairedMemory.adjust_voice``)."""
        raw = query.raw.detach().float().reshape(1, -1).cpu()
        return self.model.net.memory.adjust_voice(raw) if _users_voice(query) else raw

    def _check_query(self, query: Query) -> None:
        if query.modality not in MODALITIES:
            raise FmnError(f"a query is 'speech' or 'video', got {query.modality!r}")
        want = self.model.cfg.speech.output_dim if query.modality == "speech" else self.model.cfg.video.feature_dim
        if query.raw.numel() != want:
            raise FmnError(f"a {query.modality} query of this model has {want} features, got {query.raw.numel()}")

    def _candidates(self, col: Collection, query: Query, q_raw: torch.Tensor, top: int | None) -> np.ndarray:
        """Rows to score with S: all of a small library, else the best by cosine in the common space."""
        keep = max(self.rerank, top or 0)
        if len(col) <= keep:
            return np.arange(len(col))
        embed = self.model.embed_speech if query.modality == "speech" else self.model.embed_video
        q_vec = embed(q_raw)[0].numpy()
        return col.ann.search(q_vec, keep) if col.ann is not None else nearest_rows(col, q_vec, keep)

    # -- memory banks --------------------------------------------------------------------------

    def confirm(self, query: Query, item_id: str, span: tuple[float, float] | None = None) -> list[BankUpdate]:
        """The user says ``item_id`` (the moment ``span`` of it, for a long video) matches
        ``query``: write the pair into the banks, log it, persist it.

        Raises:
            FmnError: the item is unknown, not searchable, or of the query's own modality.
        """
        self._check_query(query)
        item = self.item(item_id)
        if item.modality == query.modality:
            raise FmnError(f"item {item_id!r} is {item.modality}, like the query: a match pairs a video with speech")
        other = torch.from_numpy(self._item_raw(item, span, "matched"))
        with self._lock:
            v, a = (other, query.raw) if query.modality == "speech" else (query.raw, other)
            confirm = functools.partial(self.model.net.confirm_match, voice=_users_voice(query))
            return self.memory.change(query, item_id, confirm, v, a)

    def _auto_update(self, query: Query, hit: Hit) -> list[BankUpdate]:
        other = torch.from_numpy(self._item_raw(hit.item, hit.span, "matched"))
        raw = self._query_raw(query)[0]  # a user's voice is remembered as its queries are read
        v, a = (other, raw) if query.modality == "speech" else (raw, other)
        s1 = torch.tensor([hit.s1], device=self.model.device)
        return self.memory.change(query, hit.item.id, lambda vv, aa: self.model.net.update_memory(vv, aa, s1), v, a)

    def undo(self) -> bool:
        """Undo the last change to the banks exactly (bit for bit); False when there is none."""
        return self.memory.undo()

    @property
    def can_undo(self) -> bool:
        """Whether :meth:`undo` has something to undo (changes made since the library was opened)."""
        return self.memory.can_undo

    def bank_slots(self, bank: str) -> list[SlotInfo]:
        """Every slot of the 'video' or 'speech' bank, with where its contents came from."""
        return self.memory.bank_slots(bank)

    def bank_similarity(self, bank: str) -> np.ndarray:
        """``(X, X)`` cosine between the slots of a bank (as the bank compares features: centred); 0 for unused."""
        return self.memory.bank_similarity(bank)

    def update_log(self) -> list[BankUpdate]:
        """Every change made to this library's banks, oldest first."""
        return self.memory.update_log()

    def voice(self) -> tuple[int, float]:
        """The user's voice as the banks learned it: confirmed utterances, and how far it moves a query."""
        return self.memory.voice()


__all__ = ["MAX_QUERY_SECONDS", "RERANK", "Retriever"]
