"""Decode a manifest's media once, in parallel, into tensors that training reuses every epoch.

Unreadable rows never stop training: they are collected as :class:`Failure`s and reported at
the end of the run. Speech frames can be cached on disk (a Whisper encoder's frames of every
speed-perturbed copy take minutes to compute), keyed by the files, the front end and the speeds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from fmn_core.features.audio import SpeechFrontEndConfig, prepare_wave, speech_features, wave_features
from fmn_core.features.video import VideoFrontEndConfig, decode_clip
from fmn_core.manifest import Manifest, ManifestRow, Segment
from fmn_core.media.audio_io import SAMPLE_RATE, load_audio, resample
from fmn_core.media.errors import MediaError

Progress = Callable[[int, int], None]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """A manifest row that could not be used, and why."""

    id: str
    path: str
    reason: str


@dataclass
class Decoded:
    """Tensors for the rows that decoded, in manifest order, and the rows that did not."""

    rows: list[ManifestRow]
    # One tensor per row, or a list of tensors per row (one per speed) for speed-perturbed speech:
    # which one depends on the call, so the type cannot say.
    items: list[Any]
    failures: list[Failure]


def _video_job(item: tuple[str, Segment | None], cfg: VideoFrontEndConfig) -> torch.Tensor | str:
    path, segment = item
    try:
        return decode_clip(path, cfg, segment)  # uint8: a paper-size corpus at 32 x 128^2 fits in ~1.6 GB
    except MediaError as e:
        return str(e)


def _speech_job(
    item: tuple[str, Segment | None], cfg: SpeechFrontEndConfig, speeds: tuple[float, ...] = ()
) -> torch.Tensor | list[torch.Tensor] | str:
    # Workers run a Whisper front end on their own CPU core (device="cpu"): a forked worker
    # must not start CUDA, and int8 on one core keeps pace with the other workers.
    path, segment = item
    try:
        if not speeds:
            return speech_features(path, cfg, device="cpu", segment=segment)
        wave = load_audio(path, segment=segment)
        # Speed perturbation (Ko et al. 2015): replaying at another rate changes tempo and pitch
        # together, a cheap stand-in for new speakers.
        return [
            wave_features(
                prepare_wave(resample(wave, round(SAMPLE_RATE * sp), SAMPLE_RATE), cfg, name=path), cfg, "cpu"
            )
            for sp in speeds
        ]
    except MediaError as e:
        return str(e)


def _decode(
    manifest: Manifest,
    rows: Sequence[ManifestRow],
    job: Callable[[tuple[str, Segment | None]], torch.Tensor | list[torch.Tensor] | str],
    jobs: int | None,
    progress: Progress | None,
) -> Decoded:
    paths = [str(manifest.resolve(r)) for r in rows]
    items = [(path, r.segment) for path, r in zip(paths, rows, strict=True)]  # a row may be a stretch of its file
    results: list[torch.Tensor | list[torch.Tensor] | str] = []
    workers = jobs or os.cpu_count() or 1
    # Workers decode with one thread each; more would fight over the cores. They start from a
    # forkserver, not a fork of this process: a fork copies locks held by this process's threads
    # (CTranslate2's and torch's pools, once a Whisper encoder has run here) and can hang forever.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["fmn_core.training.data"])
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        for i, result in enumerate(pool.map(job, items, chunksize=8)):
            results.append(result)
            if progress:
                progress(i + 1, len(paths))
    decoded = Decoded(rows=[], items=[], failures=[])
    for row, path, result in zip(rows, paths, results, strict=True):
        if isinstance(result, str):
            decoded.failures.append(Failure(row.id, path, result))
        else:
            decoded.rows.append(row)
            decoded.items.append(result)
    return decoded


def decode_videos(
    manifest: Manifest,
    rows: Sequence[ManifestRow],
    cfg: VideoFrontEndConfig,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> Decoded:
    """Decode video rows into uint8 ``(3, T, S, S)`` clips (see ``features.video.normalize_clip``)."""
    return _decode(manifest, rows, functools.partial(_video_job, cfg=cfg), jobs, progress)


def decode_speech(
    manifest: Manifest,
    rows: Sequence[ManifestRow],
    cfg: SpeechFrontEndConfig,
    jobs: int | None = None,
    progress: Progress | None = None,
    speeds: tuple[float, ...] = (),
    cache_dir: Path | None = None,
) -> Decoded:
    """Compute the ``(L, F)`` front-end frames of every speech row.

    With ``speeds`` each item is instead a list of sequences, one per playback speed (1.0: as recorded).
    With ``cache_dir`` the result is kept there and reused while files, front end and speeds are unchanged.

    Raises:
        FrontEndError: a Whisper front end that is not installed (checked before any work starts).
    """
    cfg.check_installed()
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"speech-{_speech_cache_key(manifest, rows, cfg, speeds)}.safetensors"
        cached = _read_speech_cache(cache, rows, bool(speeds))
        if cached is not None:
            log.info("speech frames of %d rows read from %s", len(rows), cache)
            if progress:
                progress(len(rows), len(rows))
            return cached
    job = functools.partial(_speech_job, cfg=cfg, speeds=tuple(speeds))
    decoded = _decode(manifest, rows, job, jobs, progress)
    if cache is not None:
        # Rounded as the cache stores them, so a run that reads the cache sees the very frames
        # this one trains on (a resumed run must continue the same run).
        decoded.items = [_half(item) for item in decoded.items]
        _write_speech_cache(cache, decoded, rows)
    return decoded


def _half(item: torch.Tensor | list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
    if isinstance(item, list):
        return [t.to(torch.float16).float() for t in item]
    return item.to(torch.float16).float()


def _speech_cache_key(
    manifest: Manifest, rows: Sequence[ManifestRow], cfg: SpeechFrontEndConfig, speeds: Sequence[float]
) -> str:
    """A hash of what the frames depend on: each file's path, size and time, the front end, the speeds."""
    stats = []
    for r in rows:
        path = manifest.resolve(r)
        try:
            st = path.stat()
            stat = (r.id, str(path), st.st_size, st.st_mtime_ns)
        except OSError:
            stat = (r.id, str(path), -1, -1)
        stats.append(stat + ((r.start, r.end) if r.segment else ()))  # unsegmented rows: keys as before
    blob = json.dumps([stats, asdict(cfg), list(speeds)], sort_keys=True).encode()
    return hashlib.blake2b(blob, digest_size=12).hexdigest()


def _write_speech_cache(path: Path, decoded: Decoded, rows: Sequence[ManifestRow]) -> None:
    """Store frames as float16 (half the disk; the encoders' frames need no more precision)."""
    index = {r.id: i for i, r in enumerate(rows)}
    tensors: dict[str, torch.Tensor] = {}
    for row, item in zip(decoded.rows, decoded.items, strict=True):
        versions = item if isinstance(item, list) else [item]
        for k, t in enumerate(versions):
            tensors[f"{index[row.id]}/{k}"] = t.to(torch.float16).contiguous()
    failures = [asdict(f) for f in decoded.failures]
    # A name of this process's own: the ranks of a distributed run may each write the cache.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(tmp), metadata={"failures": json.dumps(failures), "rows": str(len(rows))})
    tmp.replace(path)  # atomic: a killed run leaves no half cache


def _read_speech_cache(path: Path, rows: Sequence[ManifestRow], versioned: bool) -> Decoded | None:
    """The cached frames of exactly these rows, or None (absent or unreadable: recomputed)."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
        failures = [Failure(**f) for f in json.loads(meta.get("failures", "[]"))]
        if int(meta.get("rows", -1)) != len(rows):
            return None
    except (OSError, ValueError, TypeError, SafetensorError) as e:
        log.warning("ignoring unreadable speech cache %s: %s", path, e)
        return None
    by_row: dict[int, dict[int, torch.Tensor]] = {}
    for key, t in tensors.items():
        i, k = (int(x) for x in key.split("/"))
        by_row.setdefault(i, {})[k] = t.float()
    decoded = Decoded(rows=[], items=[], failures=failures)
    for i in sorted(by_row):
        versions = [by_row[i][k] for k in sorted(by_row[i])]
        decoded.rows.append(rows[i])
        decoded.items.append(versions if versioned else versions[0])
    return decoded
