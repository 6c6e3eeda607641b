"""Bring a library's index up to date: find the media (``index.library``), decode what is new or
changed (``index.decoding``, in worker processes), encode, store.

Indexing is incremental (``index.plan``). A video longer than two
windows (``VideoFrontEndConfig.windowed``) is indexed as overlapping windows, searched as moments:
it is decoded a stretch of about a minute at a time and its windows are staged in the store as
they are encoded, so memory does not grow with its length; its item is written, and its windows
with it, when its last stretch is in. Decoding (video frames,
MFCCs) runs in worker processes; encoding runs in this process with the model, in batches
(``index.batches``); each batch is committed on its own, so a run that is cancelled, crashes or is killed keeps every
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
from typing import TYPE_CHECKING

from fmn_core.index.batches import Batch, ItemSink
from fmn_core.index.decoding import (
    Decoded,
    DecodeJob,
    decode_item,
    decoded_for,
    init_worker,
)
from fmn_core.index.library import (
    LibraryEntry,
    scan_library,
)
from fmn_core.index.plan import IndexReport, Work, plan_run
from fmn_core.index.store import Store

if TYPE_CHECKING:
    from fmn_core.inference import FMNModel

log = logging.getLogger(__name__)

_POOL_MIN_JOBS = 4  # fewer files than this are decoded here: starting workers would cost more
WINDOW_CHUNK = 60  # windows of a long video decoded per job (~1 min of video at a 1 s hop; ~13 MB of frames)

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


# -- decoding (worker processes) ------------------------------------------------------------------


# -- the run ---------------------------------------------------------------------------------------


class Encoder:
    """Decodes and encodes files with a model, committing each batch to a sink: the library's
    store, or (on a Ray worker) the shards a Ray run merges into it.

    Args:
        model: encodes the decoded files.
        jobs: decoding processes (default: all cores; 1 decodes in this process).
        batch_size: files encoded and committed together.
        decode: turns a file into encoder input (tests replace it; it must be a module-level
            function, as worker processes import it by name).
    """

    def __init__(
        self,
        model: FMNModel,
        jobs: int | None = None,
        batch_size: int = 8,
        decode: Callable[[DecodeJob], Decoded] = decode_item,
    ) -> None:
        self.model = model
        self.jobs = max(1, jobs if jobs is not None else os.cpu_count() or 1)
        self.batch_size = max(1, batch_size)
        self.decode = decode

    def encode(
        self,
        sink: ItemSink,
        work: list[Work],
        report: IndexReport,
        progress: Progress | None = None,
        cancel: Cancel | None = None,
    ) -> None:
        """Decode, encode and commit ``work`` to ``sink``; what was done goes into ``report``.

        Args:
            sink: where each batch is committed, a long video's staged windows too.
            work: the files to encode (:func:`~fmn_core.index.plan.plan_run`).
            report: gets the files added, updated, failed and still pending.
            progress: ``progress(done, total)`` in units of work (a file, or a stretch of a long
                video), first with ``done = 0``.
            cancel: polled between files; True stops after committing what is finished.
        """
        jobs = self._jobs_for(work)
        if progress:
            progress(0, len(jobs))
        self._encode_all(sink, work, jobs, report, progress, cancel)

    def _jobs_for(self, work: Sequence[Work]) -> list[DecodeJob]:
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
        sink: ItemSink,
        work: list[Work],
        jobs: list[DecodeJob],
        report: IndexReport,
        progress: Progress | None,
        cancel: Cancel | None,
    ) -> None:
        batch = Batch(sink, self.model, {w.entry.id: w for w in work}, report)
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


class Indexer(Encoder):
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
        super().__init__(model, jobs, batch_size, decode)
        self.store = store

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
        library = self.store.library
        entries = scan_library(library) if entries is None else entries
        report = IndexReport(total=len(entries))
        rows = self.store.rows()
        work, touched, missing = plan_run(library, rows, entries, report, self.model.video_frontend)
        gone = set(rows) - {e.id for e in entries}
        if touched or gone or missing:
            with self.store.transaction():
                self.store.update_files(touched)
                self.store.delete_items(gone)
                self.store.write_items(missing)
        report.removed = len(gone)
        report.failed.extend((r.row.id, r.row.reason or "") for r in missing)
        self.store.drop_staged(w.entry.id for w in work)  # windows a killed run staged for these videos
        self._encode_work(work, report, progress, cancel)
        report.seconds = time.perf_counter() - start
        log.debug("indexed %s: %s", library, report.summary())
        return report

    def _encode_work(
        self, work: list[Work], report: IndexReport, progress: Progress | None, cancel: Cancel | None
    ) -> None:
        """Encode what the plan found to do, into the store (a Ray run does it on a cluster)."""
        self.encode(self.store, work, report, progress, cancel)


__all__ = ["WINDOW_CHUNK", "Cancel", "Encoder", "Indexer", "Progress"]
