"""Bring a library's index up to date: find the media (``index.library``), decode what is new or
changed (``index.decoding``, in worker processes), encode, store.

Indexing is incremental: a file whose size and modification time are unchanged is skipped; a
changed file whose content hash is unchanged only has its times updated; anything else is
decoded and encoded again; items whose files are gone are dropped. A video longer than two
windows (``VideoFrontEndConfig.windowed``) is indexed as overlapping windows, searched as moments:
it is decoded a stretch of about a minute at a time and its windows are staged in the store as
they are encoded, so memory does not grow with its length; its item is written, and its windows
with it, when its last stretch is in. Decoding (video frames,
MFCCs) runs in worker processes; encoding runs in this process with the model, in batches; each
batch is committed on its own, so a run that is cancelled, crashes or is killed keeps every
finished item and leaves a consistent index. A file that cannot be used (corrupt, empty, silent)
is recorded as failed with the reason; it never stops the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fmn_core.index.decoding import (
    Decoded,
    DecodeJob,
    decode_item,
    decoded_for,
    init_worker,
)
from fmn_core.index.library import (
    LibraryEntry,
    file_hash,
    scan_library,
    stored_path,
)
from fmn_core.index.records import ItemRecord, StoredItem, WindowFeatures
from fmn_core.index.store import Store

if TYPE_CHECKING:
    from fmn_core.features.video import VideoFrontEndConfig
    from fmn_core.inference import FMNModel

log = logging.getLogger(__name__)

_POOL_MIN_JOBS = 4  # fewer files than this are decoded here: starting workers would cost more
WINDOW_CHUNK = 60  # windows of a long video decoded per job (~1 min of video at a 1 s hop; ~13 MB of frames)

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


@dataclass
class IndexReport:
    """What an indexing run did."""

    total: int = 0  # items in the library
    added: int = 0  # new items encoded
    updated: int = 0  # changed items encoded again (or features of another model)
    unchanged: int = 0  # items skipped
    removed: int = 0  # items dropped (file gone)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, reason) of items this run could not use
    gaps: list[tuple[str, str]] = field(default_factory=list)  # (id, what) of videos indexed around unreadable frames
    pending: int = 0  # items still waiting to be encoded (a cancelled run)
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def encoded(self) -> int:
        """Files decoded and encoded by this run (failed ones included)."""
        return self.added + self.updated

    def summary(self) -> str:
        """One line for a status bar or a terminal."""
        parts = [
            f"{self.total} items",
            f"{self.added} new",
            f"{self.updated} re-encoded",
            f"{self.unchanged} unchanged",
            f"{self.removed} removed",
            f"{len(self.failed)} failed",
        ]
        if self.gaps:
            parts.append(f"{len(self.gaps)} with unreadable stretches")
        if self.cancelled:
            parts.append(f"cancelled with {self.pending} to go")
        return ", ".join(parts) + f" ({self.seconds:.1f} s)"


# -- decoding (worker processes) ------------------------------------------------------------------


# -- the run ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Work:
    entry: LibraryEntry
    size: int
    mtime_ns: int
    is_new: bool


def _plan(
    library: Path,
    rows: dict[str, StoredItem],
    entries: Sequence[LibraryEntry],
    report: IndexReport,
    video_frontend: VideoFrontEndConfig,
) -> tuple[list[_Work], list[StoredItem], list[ItemRecord]]:
    """Compare the library with the index's ``rows``: what to encode, what only to update, what is missing."""
    work: list[_Work] = []
    touched: list[StoredItem] = []
    missing: list[ItemRecord] = []
    for e in entries:
        row = rows.get(e.id)
        path = stored_path(library, e.path)
        try:
            st = e.path.stat()
        except OSError as exc:
            reason = f"{e.path}: {'no such file' if isinstance(exc, FileNotFoundError) else exc.strerror or exc}"
            missing.append(ItemRecord(_failed_row(e, path, 0, 0, "", reason), None, None, None))
            continue
        size, mtime = st.st_size, st.st_mtime_ns
        # (a long video indexed as one clip, by a version without windows, is encoded again)
        fresh = (
            row is not None
            and row.status != "stale"
            and row.modality == e.modality
            and not (row.status == "ok" and row.windows == 0 and e.modality == "video"
                     and video_frontend.windowed(row.duration))
        )  # fmt: skip
        meta_same = row is not None and (row.path, row.label, row.text) == (path, e.label, e.text)
        if fresh and row is not None and row.size == size and row.mtime_ns == mtime:
            if not meta_same:
                touched.append(_with(row, path=path, label=e.label, text=e.text))
            report.unchanged += 1
            continue
        if fresh and row is not None and row.size == size and _same_hash(e.path, row.hash):
            touched.append(_with(row, path=path, mtime_ns=mtime, label=e.label, text=e.text))
            report.unchanged += 1
            continue
        work.append(_Work(e, size, mtime, is_new=row is None))
    return work, touched, missing


def _same_hash(path: Path, digest: str) -> bool:
    try:
        return file_hash(path) == digest
    except OSError:
        return False


def _with(row: StoredItem, **changes: Any) -> StoredItem:
    return StoredItem(**{**row.__dict__, **changes})


def _failed_row(e: LibraryEntry, path: str, size: int, mtime: int, digest: str, reason: str) -> StoredItem:
    return StoredItem(e.id, path, e.modality, size, mtime, digest, 0.0, e.label, e.text, "failed", reason)


def _map_large_buffers() -> None:
    """Keep buffers of 128 KiB and more out of the heap (glibc only; elsewhere nothing changes).

    Decoded stretches (~13 MB of frames each) arrive one after another. glibc raises its mmap
    threshold after the first such buffer is freed, so the next ones are carved from the heap,
    which they fragment: the indexer's peak grew with the video's length (+140 MiB from 2 to 13
    minutes, measured). Fixing the threshold keeps each buffer mapped and unmapped whole.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if os.name != "posix" or name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        m_mmap_threshold = -3  # malloc.h; setting it also turns off the dynamic threshold
        ctypes.CDLL(name).mallopt(m_mmap_threshold, 128 * 1024)


class Indexer:
    """Indexes a library into its store with a model.

    Args:
        store: the library's index.
        model: encodes the decoded files (its identity must already be attached to the store).
        jobs: decoding processes (default: all cores; 1 decodes in this process).
        batch_size: files encoded and committed together.
        decode: turns a file into encoder input (tests replace it; it must be a module-level
            function, as worker processes import it by name).
    """

    def __init__(
        self,
        store: Store,
        model: FMNModel,
        jobs: int | None = None,
        batch_size: int = 8,
        decode: Callable[[DecodeJob], Decoded] = decode_item,
    ) -> None:
        self.store = store
        self.model = model
        self.jobs = max(1, jobs if jobs is not None else os.cpu_count() or 1)
        self.batch_size = max(1, batch_size)
        self.decode = decode

    def run(
        self,
        entries: Sequence[LibraryEntry] | None = None,
        progress: Progress | None = None,
        cancel: Cancel | None = None,
    ) -> IndexReport:
        """Bring the index up to date with ``entries`` (default: :func:`scan_library`).

        Args:
            entries: the library's files.
            progress: called as ``progress(done, total)`` with the work encoded so far out of the
                work to do, first with ``done = 0``; a clip or a speech file is one unit, a long
                video one unit per stretch of windows.
            cancel: polled between files; True stops the run after committing what is finished.

        Returns:
            What was done; failed files are listed in it, never raised.
        """
        start = time.perf_counter()
        _map_large_buffers()
        library = self.store.library
        entries = scan_library(library) if entries is None else entries
        report = IndexReport(total=len(entries))
        rows = self.store.rows()
        work, touched, missing = _plan(library, rows, entries, report, self.model.video_frontend)
        gone = set(rows) - {e.id for e in entries}
        if touched or gone or missing:
            with self.store.transaction():
                self.store.update_files(touched)
                self.store.delete_items(gone)
                self.store.write_items(missing)
        report.removed = len(gone)
        report.failed.extend((r.row.id, r.row.reason or "") for r in missing)
        self.store.drop_staged(w.entry.id for w in work)  # windows a killed run staged for these videos
        jobs = self._jobs_for(work)
        if progress:
            progress(0, len(jobs))
        self._encode_all(work, jobs, report, progress, cancel)
        report.seconds = time.perf_counter() - start
        log.debug("indexed %s: %s", library, report.summary())
        return report

    def _jobs_for(self, work: Sequence[_Work]) -> list[DecodeJob]:
        """One job per file; a long video one per stretch of :data:`WINDOW_CHUNK` windows."""
        from fmn_core.index.moments import windows
        from fmn_core.media.errors import MediaError
        from fmn_core.media.video_io import probe_video

        m = self.model
        vfe = m.video_frontend
        jobs = []
        for w in work:
            base = DecodeJob(w.entry.id, str(w.entry.path), w.entry.modality, vfe, m.speech_frontend)
            duration = 0.0
            if w.entry.modality == "video":
                with contextlib.suppress(MediaError):  # else decoded as a clip: the decoder says what is wrong
                    duration = probe_video(w.entry.path).duration_s
            if not vfe.windowed(duration):
                jobs.append(base)
                continue
            spans = windows(duration, vfe.window, vfe.hop)
            stride = max(1, round(vfe.window / vfe.hop))  # about one thumbnail per window length
            parts = range(0, len(spans), WINDOW_CHUNK)
            for part, first in enumerate(parts):
                chunk = tuple(spans[first : first + WINDOW_CHUNK])
                thumbs = tuple(p for p in range(len(chunk)) if (first + p) % stride == 0)
                jobs.append(dataclasses.replace(
                    base, spans=chunk, first=first, part=part, parts=len(parts), total=len(spans), thumbs=thumbs,
                    duration=duration
                ))  # fmt: skip
        return jobs

    def _encode_all(
        self,
        work: list[_Work],
        jobs: list[DecodeJob],
        report: IndexReport,
        progress: Progress | None,
        cancel: Cancel | None,
    ) -> None:
        batch = _Batch(self, {w.entry.id: w for w in work}, report)
        done = units = 0
        for decoded in self._decoded(jobs, cancel):
            batch.add(decoded)
            units += 1
            if batch.full(self.batch_size):
                done += batch.flush()
                if progress:
                    progress(units, len(jobs))
            elif progress and decoded.parts > 1:
                progress(units, len(jobs))  # a stretch of a long video: encoded, committed with its last
        last = batch.flush()
        done += last
        batch.abandon()
        if progress and last:
            progress(units, len(jobs))
        report.pending = len(work) - done
        report.cancelled = report.pending > 0

    def _decoded(self, jobs: list[DecodeJob], cancel: Cancel | None) -> Iterator[Decoded]:
        """Decoded files (and stretches of long videos) in order; stops early when ``cancel()`` says so."""
        if self.jobs == 1 or len(jobs) < _POOL_MIN_JOBS:
            for job in jobs:
                if cancel and cancel():
                    return
                yield self.decode(job)
            return
        pending = deque(jobs)
        while pending:
            suspects = yield from self._decoded_in_pool(pending, cancel)
            if suspects is None:
                return
            # A decoder crashed (a native library on a malformed file) and took the pool down:
            # each file that was in flight is tried alone, so only the culprit is marked failed.
            for job in suspects:
                if cancel and cancel():
                    return
                yield self._decode_alone(job)

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        # forkserver: workers start from a clean process, never from a fork of this one (which
        # may hold torch's thread pool or, in the app, Qt's threads: neither survives fork()).
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["fmn_core.index.decoding", "fmn_core.features.video", "fmn_core.features.audio"])
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker, initargs=(os.getpid(),))

    def _decoded_in_pool(
        self, pending: deque[DecodeJob], cancel: Cancel | None
    ) -> Generator[Decoded, None, list[DecodeJob] | None]:
        """Decode ``pending`` (consumed) in a pool; returns the in-flight jobs if the pool broke, else None."""
        window = self.jobs * 4  # decoded clips waiting for the encoder are bounded by this
        inflight: deque[tuple[DecodeJob, Future[Decoded]]] = deque()
        with self._pool(self.jobs) as pool:
            try:
                while pending or inflight:
                    while pending and len(inflight) < window:
                        job = pending.popleft()
                        inflight.append((job, pool.submit(self.decode, job)))
                    if cancel and cancel():
                        pending.clear()
                        return None
                    try:
                        decoded = inflight[0][1].result()
                    except BrokenProcessPool:
                        return [job for job, _ in inflight]
                    inflight.popleft()
                    yield decoded
            finally:
                for _, f in inflight:
                    f.cancel()
        return None

    def _decode_alone(self, job: DecodeJob) -> Decoded:
        with self._pool(1) as pool:
            try:
                return pool.submit(self.decode, job).result()
            except BrokenProcessPool:
                return decoded_for(job, reason=f"{job.path}: the decoder crashed on this file (corrupt or unsupported)")


@dataclass
class _LongVideo:
    """What is kept of a long video between its stretches: sums and one thumbnail, never its
    windows (those are staged in the store as they come, so memory does not grow with length)."""

    hash: str = ""
    duration: float = 0.0
    windows: int = 0
    raw_sum: np.ndarray | None = None  # (Dv,) float64 sum of its windows' raw features
    preview: tuple[int, bytes] | None = None  # (position, JPEG): the thumbnail nearest the middle so far
    missing: int = 0
    reason: str | None = None  # set when a stretch failed: the video fails as a whole


class _Batch:
    """Decoded files waiting to be encoded, per modality; :meth:`flush` encodes and commits them.

    A long video's stretches are encoded as they arrive (their frames are the big part) and their
    windows staged in the store; its item row is written, and its windows with it, after the last
    stretch, so a search never sees half a video.
    """

    encode_windows = 32  # windows encoded together (normalised float clips are 4x the uint8 ones)

    def __init__(self, indexer: Indexer, work: dict[str, _Work], report: IndexReport) -> None:
        self.indexer = indexer
        self.work = work
        self.report = report
        self.items: dict[str, list[Decoded]] = {"video": [], "speech": []}
        self.failed: list[Decoded] = []
        self.long: dict[str, _LongVideo] = {}  # long videos started, not finished
        self.finished: list[ItemRecord] = []  # long videos complete, waiting for the commit

    def add(self, d: Decoded) -> None:
        if d.spans is not None:
            self._add_stretch(d)
        elif d.reason is not None:
            self.failed.append(d)
        else:
            self.items[self.work[d.id].entry.modality].append(d)

    def _add_stretch(self, d: Decoded) -> None:
        store = self.indexer.store
        video = self.long.setdefault(d.id, _LongVideo())
        if d.part == 0:
            video.hash, video.duration = d.hash, d.duration
        if d.reason is not None:
            video.reason = video.reason or d.reason
            store.drop_staged([d.id])
        elif video.reason is None and d.payload is not None and d.spans is not None:
            raw, vec, background = self._encode_windows(d.payload)
            spans = np.asarray(d.spans, dtype=np.float64)
            store.stage_windows(d.id, WindowFeatures(d.first, spans, raw, vec, d.previews, background))
            total = raw.sum(axis=0, dtype=np.float64)
            video.raw_sum = total if video.raw_sum is None else video.raw_sum + total
            video.windows += len(spans)
            video.missing += d.missing
            middle = d.total // 2
            for position, jpeg in d.previews.items():
                if video.preview is None or abs(position - middle) < abs(video.preview[0] - middle):
                    video.preview = (position, jpeg)
        if d.part == d.parts - 1:
            del self.long[d.id]
            self.finished.append(self._long_record(d.id, video))

    def abandon(self) -> None:
        """Drop the staged windows of long videos left unfinished (a cancelled run)."""
        self.indexer.store.drop_staged(list(self.long))
        self.long.clear()

    def _encode_windows(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Raw features, common-space vectors and P(background) (None: no such class) of windows."""
        import torch

        from fmn_core.features.video import normalize_clip

        model = self.indexer.model
        raws, vecs = [], []
        for i in range(0, len(clips), self.encode_windows):
            raw = model.video_raw_from_clips(normalize_clip(torch.from_numpy(clips[i : i + self.encode_windows])))
            raws.append(raw.numpy())
            vecs.append(model.embed_video(raw).numpy())
        raw_all = np.concatenate(raws)
        return raw_all, np.concatenate(vecs), model.background_probability(torch.from_numpy(raw_all))

    def _long_record(self, item_id: str, video: _LongVideo) -> ItemRecord:
        import torch

        if video.reason is not None or video.raw_sum is None:
            reason = video.reason or f"{self.work[item_id].entry.path}: no window could be decoded"
            return self._record(Decoded(item_id, video.hash, video.duration, reason=reason), "failed")
        # The video as one item (the mean of its windows): what a search *from* it starts with.
        whole = (video.raw_sum / video.windows).astype(np.float32)
        whole_vec = self.indexer.model.embed_video(torch.from_numpy(whole[None]))[0].numpy()
        if video.missing:
            gap = f"{video.missing} sampled frames could not be read (a broken stretch?); the last good frame stood in"
            log.warning("%s: %s", item_id, gap)
            self.report.gaps.append((item_id, gap))
        preview = None if video.preview is None else video.preview[1]
        decoded = Decoded(item_id, video.hash, video.duration, preview)
        return self._record(decoded, "ok", whole, whole_vec, video.windows)

    def full(self, size: int) -> bool:
        return any(len(v) >= size for v in self.items.values()) or len(self.failed) >= size or bool(self.finished)

    def flush(self) -> int:
        """Encode and commit everything waiting; returns how many files were committed."""
        records = [self._record(d, "failed") for d in self.failed] + self.finished
        for modality, decoded in self.items.items():
            if decoded:
                raw, vec = self._encode(modality, decoded)
                records += [self._record(d, "ok", raw[i], vec[i]) for i, d in enumerate(decoded)]
        if not records:
            return 0
        self.indexer.store.write_items(records)
        for r in records:
            w = self.work[r.row.id]
            if w.is_new:
                self.report.added += 1
            else:
                self.report.updated += 1
            if r.row.status == "failed":
                self.report.failed.append((r.row.id, r.row.reason or ""))
        self.items = {"video": [], "speech": []}
        self.failed = []
        self.finished = []
        return len(records)

    def _encode(self, modality: str, decoded: list[Decoded]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from fmn_core.features.video import normalize_clip

        model = self.indexer.model
        if modality == "video":
            clips = normalize_clip(torch.from_numpy(np.stack([d.payload for d in decoded])))  # type: ignore[misc]
            raw = model.video_raw_from_clips(clips)
            vec = model.embed_video(raw)
        else:
            raw = model.speech_raw_from_mfcc([torch.from_numpy(d.payload) for d in decoded])
            vec = model.embed_speech(raw)
        return raw.numpy(), vec.numpy()

    def _record(
        self,
        d: Decoded,
        status: str,
        raw: np.ndarray | None = None,
        vec: np.ndarray | None = None,
        windows: int = 0,
    ) -> ItemRecord:
        w = self.work[d.id]
        e = w.entry
        row = StoredItem(
            e.id,
            stored_path(self.indexer.store.library, e.path),
            e.modality,
            w.size,
            w.mtime_ns,
            d.hash,
            d.duration,
            e.label,
            e.text,
            status,
            d.reason,
            windows,
        )
        return ItemRecord(row, d.preview, raw, vec)


__all__ = ["WINDOW_CHUNK", "Cancel", "IndexReport", "Indexer", "Progress"]
