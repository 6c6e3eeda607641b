"""What the indexer's worker processes do: decode one file, or one stretch of a long video's
windows, into encoder input with its preview (a thumbnail or waveform peaks).

Workers are separate processes started from a clean interpreter (forkserver): they import this
module by name, so what a job carries is plain data, and they end themselves when the indexing
process is gone.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from fmn_core.index.library import file_hash

if TYPE_CHECKING:
    from fmn_core.features.audio import SpeechFrontEndConfig
    from fmn_core.features.video import VideoFrontEndConfig

THUMBNAIL_WIDTH = 160  # pixels; the thumbnail keeps the clip's aspect ratio
WAVEFORM_PEAKS = 200  # peak values summarising a speech item's waveform


@dataclass(frozen=True)
class DecodeJob:
    """One file to decode, or one stretch of a long video's windows."""

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
class Decoded:
    """What a worker sends back: encoder input and preview, or why the file cannot be used."""

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


def decoded_for(job: DecodeJob, **fields: Any) -> Decoded:
    return Decoded(job.id, spans=job.spans, first=job.first, part=job.part, parts=job.parts, total=job.total, **fields)


def init_worker(parent_pid: int) -> None:
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


def decode_item(job: DecodeJob) -> Decoded:
    """Decode one file for the encoder, with its preview; failures are returned, never raised."""
    from fmn_core.errors import FmnError

    out = decoded_for(job)
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


def _decode_video(job: DecodeJob, out: Decoded) -> None:
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


def _decode_windows(job: DecodeJob, out: Decoded) -> None:
    from fmn_core.features.video import window_clips

    assert job.spans is not None
    decoded = window_clips(job.path, job.spans, job.video_frontend, middles=job.thumbs)
    out.payload = decoded.clips
    out.missing = decoded.missing
    out.duration = job.duration
    out.previews = {job.first + p: thumbnail_jpeg(frame) for p, frame in decoded.middles.items()}


def _decode_speech(job: DecodeJob, out: Decoded) -> None:
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


__all__ = [
    "THUMBNAIL_WIDTH",
    "WAVEFORM_PEAKS",
    "DecodeJob",
    "Decoded",
    "decode_item",
    "thumbnail_jpeg",
    "waveform_peaks",
]
