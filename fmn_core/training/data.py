"""Decode a manifest's media once, in parallel, into tensors that training reuses every epoch.

Unreadable rows never stop training: they are collected as :class:`Failure`s and reported at
the end of the run.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import torch

from fmn_core.features.audio import SpeechFrontEndConfig, mfcc, prepare_wave, speech_features
from fmn_core.features.video import VideoFrontEndConfig, decode_clip
from fmn_core.manifest import Manifest, ManifestRow
from fmn_core.media.audio_io import SAMPLE_RATE, load_audio, resample
from fmn_core.media.errors import MediaError

Progress = Callable[[int, int], None]


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
    items: list  # one tensor per row (a list of tensors per row for speed-perturbed speech)
    failures: list[Failure]


def _video_job(path: str, cfg: VideoFrontEndConfig) -> torch.Tensor | str:
    try:
        return decode_clip(path, cfg)  # uint8: a paper-size corpus at 32 x 128^2 fits in ~1.6 GB
    except MediaError as e:
        return str(e)


def _speech_job(
    path: str, cfg: SpeechFrontEndConfig, speeds: tuple[float, ...] = ()
) -> torch.Tensor | list[torch.Tensor] | str:
    try:
        if not speeds:
            return speech_features(path, cfg)
        wave = load_audio(path)
        # Speed perturbation (Ko et al. 2015): replaying at another rate changes tempo and pitch
        # together, a cheap stand-in for new speakers.
        return [
            mfcc(prepare_wave(resample(wave, round(SAMPLE_RATE * sp), SAMPLE_RATE), cfg, name=path), cfg)
            for sp in speeds
        ]
    except MediaError as e:
        return str(e)


def _decode(
    manifest: Manifest,
    rows: Sequence[ManifestRow],
    job: Callable[[str], object],
    jobs: int | None,
    progress: Progress | None,
) -> Decoded:
    paths = [str(manifest.resolve(r)) for r in rows]
    results: list[torch.Tensor | str] = []
    workers = jobs or os.cpu_count() or 1
    # Workers decode with one thread each; more would fight over the cores.
    with ProcessPoolExecutor(max_workers=workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        for i, result in enumerate(pool.map(job, paths, chunksize=8)):
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
) -> Decoded:
    """Compute the ``(L, F)`` MFCC sequence of every speech row.

    With ``speeds`` each item is instead a list of sequences, one per playback speed (1.0: as recorded).
    """
    return _decode(manifest, rows, functools.partial(_speech_job, cfg=cfg, speeds=tuple(speeds)), jobs, progress)
