"""Bring a library's index up to date: find the media, decode what is new or changed, encode, store.

A library is a folder. With a ``manifest.csv`` its rows are the items (ids, labels and
transcripts from the manifest); without one every video (.mp4 .avi .mov .mkv .webm ...) and
audio file (.wav .flac .ogg .mp3 .m4a ...) under it is an item, its id the path relative to the
library, its label the name of the folder it sits in.

Indexing is incremental: a file whose size and modification time are unchanged is skipped; a
changed file whose content hash is unchanged only has its times updated; anything else is
decoded and encoded again; items whose files are gone are dropped. A video longer than two
windows (``VideoFrontEndConfig.windowed``) is indexed as overlapping windows, searched as moments:
it is decoded a stretch of about a minute at a time, so memory does not grow with its length,
and written with all its windows at once when its last stretch is encoded. Decoding (video frames,
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

import cv2
import numpy as np

from fmn_core.errors import FmnError
from fmn_core.index.store import INDEX_DIRNAME, ItemRecord, Store, StoredItem, WindowFeatures, file_hash
from fmn_core.manifest import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, read_manifest

if TYPE_CHECKING:
    from fmn_core.features.audio import SpeechFrontEndConfig
    from fmn_core.features.video import VideoFrontEndConfig
    from fmn_core.inference import FMNModel

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.csv"
THUMBNAIL_WIDTH = 160  # pixels; the thumbnail keeps the clip's aspect ratio
WAVEFORM_PEAKS = 200  # peak values summarising a speech item's waveform
_POOL_MIN_JOBS = 4  # fewer files than this are decoded here: starting workers would cost more
WINDOW_CHUNK = 60  # windows of a long video decoded per job (~1 min of video at a 1 s hop; ~13 MB of frames)

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


@dataclass(frozen=True)
class LibraryEntry:
    """One media file the library says it holds."""

    id: str
    path: Path  # absolute
    modality: str  # 'video' or 'speech'
    label: str | None
    text: str | None


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


def modality_of(path: str | os.PathLike[str]) -> str | None:
    """'video' or 'speech' from a file's extension, None for other files."""
    suffix = os.path.splitext(path)[1].lower()
    return "video" if suffix in VIDEO_EXTENSIONS else "speech" if suffix in AUDIO_EXTENSIONS else None


def scan_library(library: str | os.PathLike[str]) -> list[LibraryEntry]:
    """The media files of a library: its manifest's rows, else every media file under it.

    This is how the app and the command line both open a folder. Without a manifest the folder
    may be flat or nested; an item's label is the name of the folder it sits in (so a
    ``<label>/<files>`` layout gives labelled items and a flat folder unlabelled ones). Hidden
    files and folders and the index folder are skipped; symbolic links to folders are not
    followed, so a link loop cannot hang the scan; a folder that cannot be read is skipped with
    a warning.

    Raises:
        ManifestError: the library's manifest is invalid (an FmnError listing every bad row).
        FmnError: the library is not a folder, or holds no video or audio file.
    """
    library = Path(library).resolve()
    if not library.is_dir():
        raise FmnError(f"{library}: no such folder")
    manifest_path = library / MANIFEST_NAME
    if manifest_path.is_file():
        manifest = read_manifest(manifest_path)
        entries = [
            LibraryEntry(r.id, manifest.resolve(r), r.modality, r.label or None, r.text or None)
            for r in manifest.rows
            if r.segment is None
        ]
        # Rows that are segments (start/end) annotate a long file: the file is one item, indexed
        # once and searched as moments, its id its path (as a folder scan would name it).
        files = {e.path for e in entries}
        for r in manifest.rows:
            path = manifest.resolve(r)
            if r.segment is not None and path not in files:
                files.add(path)
                entries.append(LibraryEntry(stored_path(library, path), path, r.modality, None, None))
        return entries
    # Strings, not Path operations, per file: re-opening a 10k-item library spends its time here.
    root = str(library)
    entries = []
    for folder, dirs, files in os.walk(root, onerror=_unreadable_folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != INDEX_DIRNAME)
        label = os.path.basename(folder) if folder != root else None
        prefix = "" if folder == root else folder[len(root) + 1 :].replace(os.sep, "/") + "/"
        for name in sorted(files):
            modality = modality_of(name)
            if modality is None or name.startswith("."):
                continue
            entries.append(LibraryEntry(prefix + name, Path(folder, name), modality, label, None))
    if not entries:
        kinds = " ".join(VIDEO_EXTENSIONS + AUDIO_EXTENSIONS)
        raise FmnError(f"{library}: no video or audio files found in it or its folders (looked for {kinds})")
    return entries


def _unreadable_folder(error: OSError) -> None:
    log.warning("skipped %s: %s", error.filename, error.strerror)


def stored_path(library: Path, path: Path) -> str:
    """A file's path as the index keeps it: relative to the library when inside it (the library can move)."""
    root, full = str(library), str(path)
    if full.startswith(root + os.sep):
        return full[len(root) + 1 :].replace(os.sep, "/")
    return full


# -- decoding (worker processes) ------------------------------------------------------------------


@dataclass(frozen=True)
class _DecodeJob:
    id: str
    path: str
    modality: str
    video_frontend: VideoFrontEndConfig
    speech_frontend: SpeechFrontEndConfig
    # A long video is several jobs, one per stretch of windows:
    spans: tuple[tuple[float, float], ...] | None = None  # this stretch's windows (None: the file is one clip)
    first: int = 0  # position of its first window in the video
    part: int = 0  # which stretch, of `parts`
    parts: int = 1
    total: int = 0  # the video's windows, over all stretches
    thumbs: tuple[int, ...] = ()  # positions (within the stretch) of windows that keep a thumbnail
    duration: float = 0.0  # the video's, from the probe that planned the windows


@dataclass
class _Decoded:
    id: str
    hash: str = ""  # a long video: set by its first stretch only
    duration: float = 0.0
    preview: bytes | None = None
    payload: np.ndarray | None = None  # video: (3, T, S, S) uint8 RGB, (n, 3, T, S, S) for windows; speech: (L, F)
    reason: str | None = None  # set when the file cannot be used
    spans: tuple[tuple[float, float], ...] | None = None  # a stretch of a long video: its windows
    first: int = 0
    part: int = 0
    parts: int = 1
    total: int = 0
    previews: dict[int, bytes] = field(default_factory=dict)  # window position in the video -> JPEG
    missing: int = 0  # sampled frames that could not be read


def _decoded_for(job: _DecodeJob, **fields: Any) -> _Decoded:
    return _Decoded(job.id, spans=job.spans, first=job.first, part=job.part, parts=job.parts, total=job.total, **fields)


def _init_worker(parent_pid: int) -> None:
    import threading

    import torch

    # Each worker decodes one file at a time; more threads would only fight over the cores.
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    """End this worker once the indexing process is gone.

    A worker waits on its task queue, whose write end every worker holds too, so it would
    never see the end of a parent that was killed: it (and the forkserver waiting for it) would
    linger for ever.
    """
    while _alive(parent_pid):
        time.sleep(0.5)
    os._exit(0)


def _alive(pid: int) -> bool:
    """Whether a process runs; a zombie (dead, not yet reaped by its parent) does not."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):  # no /proc (not Linux): signal 0 tells whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


def decode_item(job: _DecodeJob) -> _Decoded:
    """Decode one file for the encoder, with its preview; failures are returned, never raised."""
    from fmn_core.errors import FmnError

    out = _decoded_for(job)
    try:
        if job.part == 0:
            out.hash = file_hash(job.path)
        if job.spans is not None:
            _decode_windows(job, out)
        elif job.modality == "video":
            _decode_video(job, out)
        else:
            _decode_speech(job, out)
    except FmnError as e:  # bad media, or a speech front end that is not installed: its message says why
        out.reason = str(e)
    except OSError as e:
        out.reason = f"{job.path}: cannot read ({e.strerror or e})"
    except Exception as e:  # a decoder's own failure on a malformed file: record it, keep going
        out.reason = f"{job.path}: cannot decode ({type(e).__name__}: {e})"
    if out.reason is not None:
        out.payload = None
    return out


def _decode_video(job: _DecodeJob, out: _Decoded) -> None:
    from fmn_core.features.video import _decode_sampled, frames_to_uint8
    from fmn_core.media.errors import MediaError
    from fmn_core.media.video_io import probe_video

    cfg = job.video_frontend
    # The sampled full-size frames give both the encoder input and the thumbnail, so the file
    # is decoded once (features.video.decode_clip would throw the full-size frames away).
    frames = _decode_sampled(Path(job.path), cfg.frames, cfg.max_decode_frames)
    out.payload = frames_to_uint8(frames, cfg).numpy()
    try:
        out.duration = probe_video(job.path).duration_s
    except MediaError:
        out.duration = 0.0
    out.preview = thumbnail_jpeg(frames[len(frames) // 2])


def _decode_windows(job: _DecodeJob, out: _Decoded) -> None:
    from fmn_core.features.video import window_clips

    assert job.spans is not None
    decoded = window_clips(job.path, job.spans, job.video_frontend, middles=job.thumbs)
    out.payload = decoded.clips
    out.missing = decoded.missing
    out.duration = job.duration
    out.previews = {job.first + p: thumbnail_jpeg(frame) for p, frame in decoded.middles.items()}


def _decode_speech(job: _DecodeJob, out: _Decoded) -> None:
    from fmn_core.features.audio import prepare_wave, wave_features
    from fmn_core.media.audio_io import SAMPLE_RATE, load_audio

    wave = load_audio(job.path)
    out.duration = len(wave) / SAMPLE_RATE
    out.preview = waveform_peaks(wave).tobytes()  # kept even when the speech is refused below
    fe = job.speech_frontend
    # Decoding workers run a Whisper front end on their own CPU core: they are many and short-lived.
    out.payload = wave_features(prepare_wave(wave, fe, name=job.path), fe, device="cpu").numpy()


def thumbnail_jpeg(frame_bgr: np.ndarray, width: int = THUMBNAIL_WIDTH) -> bytes:
    """A small JPEG of one BGR frame, ``width`` pixels wide."""
    h, w = frame_bgr.shape[:2]
    size = (width, max(1, round(h * width / w)))
    small = cv2.resize(frame_bgr, size, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def waveform_peaks(wave: np.ndarray, n: int = WAVEFORM_PEAKS) -> np.ndarray:
    """``(n,)`` float32 peak absolute values of ``n`` equal stretches of a wave (for drawing it)."""
    wave = np.abs(np.asarray(wave, dtype=np.float32))
    if len(wave) < n:  # fewer samples than stretches: one sample (or silence) per stretch
        wave = np.pad(wave, (0, n - len(wave)))
    starts = np.linspace(0, len(wave), n + 1).astype(np.int64)[:-1]
    return np.maximum.reduceat(wave, starts).astype(np.float32)


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
        decode: Callable[[_DecodeJob], _Decoded] = decode_item,
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

    def _jobs_for(self, work: Sequence[_Work]) -> list[_DecodeJob]:
        """One job per file; a long video one per stretch of :data:`WINDOW_CHUNK` windows."""
        from fmn_core.index.moments import windows
        from fmn_core.media.errors import MediaError
        from fmn_core.media.video_io import probe_video

        m = self.model
        vfe = m.video_frontend
        jobs = []
        for w in work:
            base = _DecodeJob(w.entry.id, str(w.entry.path), w.entry.modality, vfe, m.speech_frontend)
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
        jobs: list[_DecodeJob],
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

    def _decoded(self, jobs: list[_DecodeJob], cancel: Cancel | None) -> Iterator[_Decoded]:
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
        ctx.set_forkserver_preload(["fmn_core.index.indexer", "fmn_core.features.video", "fmn_core.features.audio"])
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),))

    def _decoded_in_pool(
        self, pending: deque[_DecodeJob], cancel: Cancel | None
    ) -> Generator[_Decoded, None, list[_DecodeJob] | None]:
        """Decode ``pending`` (consumed) in a pool; returns the in-flight jobs if the pool broke, else None."""
        window = self.jobs * 4  # decoded clips waiting for the encoder are bounded by this
        inflight: deque[tuple[_DecodeJob, Future[_Decoded]]] = deque()
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

    def _decode_alone(self, job: _DecodeJob) -> _Decoded:
        with self._pool(1) as pool:
            try:
                return pool.submit(self.decode, job).result()
            except BrokenProcessPool:
                return _decoded_for(
                    job, reason=f"{job.path}: the decoder crashed on this file (corrupt or unsupported)"
                )


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
        self.items: dict[str, list[_Decoded]] = {"video": [], "speech": []}
        self.failed: list[_Decoded] = []
        self.long: dict[str, _LongVideo] = {}  # long videos started, not finished
        self.finished: list[ItemRecord] = []  # long videos complete, waiting for the commit

    def add(self, d: _Decoded) -> None:
        if d.spans is not None:
            self._add_stretch(d)
        elif d.reason is not None:
            self.failed.append(d)
        else:
            self.items[self.work[d.id].entry.modality].append(d)

    def _add_stretch(self, d: _Decoded) -> None:
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
            return self._record(_Decoded(item_id, video.hash, video.duration, reason=reason), "failed")
        # The video as one item (the mean of its windows): what a search *from* it starts with.
        whole = (video.raw_sum / video.windows).astype(np.float32)
        whole_vec = self.indexer.model.embed_video(torch.from_numpy(whole[None]))[0].numpy()
        if video.missing:
            gap = f"{video.missing} sampled frames could not be read (a broken stretch?); the last good frame stood in"
            log.warning("%s: %s", item_id, gap)
            self.report.gaps.append((item_id, gap))
        preview = None if video.preview is None else video.preview[1]
        decoded = _Decoded(item_id, video.hash, video.duration, preview)
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

    def _encode(self, modality: str, decoded: list[_Decoded]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from fmn_core.features.video import normalize_clip

        model = self.indexer.model
        if modality == "video":
            clips = normalize_clip(torch.from_numpy(np.stack([d.payload for d in decoded])))  # type: ignore[misc]
            raw = model.video_raw_from_clips(clips)
            vec = model.embed_video(raw)
        else:
            raw = model.speech_raw_from_mfcc([torch.from_numpy(d.payload) for d in decoded])  # type: ignore[arg-type]
            vec = model.embed_speech(raw)
        return raw.numpy(), vec.numpy()

    def _record(
        self,
        d: _Decoded,
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


__all__ = [
    "IndexReport",
    "Indexer",
    "LibraryEntry",
    "decode_item",
    "modality_of",
    "scan_library",
    "thumbnail_jpeg",
    "waveform_peaks",
]
