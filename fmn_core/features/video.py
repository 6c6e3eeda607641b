"""Video front end: decode a clip, sample T frames evenly, resize and normalise for I3D.

The encoders take ``(3, T, S, S)`` float tensors normalised with the Kinetics statistics that
pytorchvideo's I3D models were trained with, so a user's Kinetics checkpoint sees the inputs
it expects.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from fmn_core.media.errors import MediaError
from fmn_core.media.video_io import probe_video, read_frames

if TYPE_CHECKING:
    from fmn_core.manifest import Segment

KINETICS_MEAN = (0.45, 0.45, 0.45)  # RGB, as pytorchvideo's Kinetics recipes
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class VideoFrontEndConfig:
    """How a clip becomes an encoder input."""

    frames: int = 8  # T: frames sampled evenly over the whole clip (I3D_COMPACT's input)
    size: int = 96  # S: output frames are S x S
    crop: bool = False  # True: short side to S then centre crop (I3D's recipe); False: squash the whole frame
    max_decode_frames: int = 3000  # longer files are sampled from their first 3000 frames (2 min at 25 fps)
    # Moments: a video longer than two windows is indexed as windows of `window` seconds every
    # `hop` seconds, each sampled like a clip (5 s / 1 s chosen on validation recipes, docs/benchmarks.md).
    window: float = 5.0
    hop: float = 1.0

    def windowed(self, duration: float) -> bool:
        """Whether a video of ``duration`` seconds is indexed and searched as windows (moments)."""
        return duration > 2 * self.window


def even_indices(n_frames: int, t: int) -> np.ndarray:
    """Indices of ``t`` frames spread evenly over ``n_frames`` (centres of t equal segments).

    Clips shorter than t frames repeat frames rather than fail.
    """
    if n_frames < 1 or t < 1:
        raise ValueError(f"need at least one frame and one sample, got n_frames={n_frames}, t={t}")
    return np.minimum(((np.arange(t) + 0.5) * n_frames / t).astype(np.int64), n_frames - 1)


def _decode_sampled(path: Path, t: int, max_frames: int, segment: Segment | None = None) -> np.ndarray:
    """Decode only the frames that will be kept when the container knows its length, else all.

    With ``segment`` (seconds) the ``t`` frames are spread over that stretch of the file instead
    of the whole of it; the file is read from its start up to the segment's end, never cut.
    """
    try:
        info = probe_video(path)
        n_file, fps = info.frames, info.fps
    except MediaError:
        n_file, fps = 0, 0.0
    first, last = segment_frames(segment, fps, n_file)
    last = min(last, first + max_frames) if last else first + max_frames
    if n_file < 1 or last <= first:
        frames = read_frames(path, max_frames=last)[first:]
        if len(frames) == 0:
            raise MediaError(f"{path}: no frames in {_describe(segment)}")
        return frames[even_indices(len(frames), t)]
    wanted = first + even_indices(last - first, t)
    wanted_set = set(wanted.tolist())
    capture = cv2.VideoCapture(str(path))
    kept: dict[int, np.ndarray] = {}
    try:
        for i in range(int(wanted[-1]) + 1):
            if not capture.grab():
                break
            if i in wanted_set and i not in kept:
                ok, frame = capture.retrieve()
                if ok:
                    kept[i] = frame
    finally:
        capture.release()
    if len(kept) < len(wanted_set):  # metadata lied or OpenCV gave up: decode everything
        frames = read_frames(path, max_frames=last)[first:]
        if len(frames) == 0:
            raise MediaError(f"{path}: no frames in {_describe(segment)}")
        return frames[even_indices(len(frames), t)]
    return np.stack([kept[i] for i in wanted.tolist()])


def segment_frames(segment: Segment | None, fps: float, n_file: int) -> tuple[int, int]:
    """``[first, last)`` frame indices of a segment (the whole file without one; last 0: unknown)."""
    if segment is None:
        return 0, n_file
    start, end = segment
    rate = fps or 25.0  # a container without a rate: assume PAL's, the commonest for cooking footage
    first = int(round(start * rate))
    last = int(round(end * rate)) if end is not None else n_file
    if n_file:
        last = min(last, n_file) if last else n_file
    return first, max(last, first + 1) if last else 0


def _describe(segment: Segment | None) -> str:
    if segment is None:
        return "the file"
    start, end = segment
    return f"the segment {start:g}–{end:g} s" if end is not None else f"the segment from {start:g} s"


@dataclass
class WindowClips:
    """The clips of a video's windows, decoded in one pass (see :func:`window_clips`)."""

    clips: np.ndarray  # (n, 3, T, S, S) uint8 RGB, one clip per window
    missing: int  # sampled frames that could not be read (a broken stretch); the last good one stood in
    middles: dict[int, np.ndarray]  # window position -> its middle sampled frame, full size BGR (those asked for)


def window_clips(
    path: str | os.PathLike[str],
    spans: Sequence[tuple[float, float]],
    cfg: VideoFrontEndConfig,
    middles: Collection[int] = (),
) -> WindowClips:
    """Every window's clip from one pass over the stretch of the file the windows cover.

    Decoding each window on its own would read the file up to the window again and again; here
    the reader seeks to the first frame any window samples, each frame is read once and resized
    once if any window samples it. A frame that cannot be read (a broken stretch, a file shorter
    than its header says) is replaced by the last good one and counted, so one bad stretch costs
    its windows, not the whole video. The frames are those :func:`decode_clip` samples for each
    window as a segment.

    Args:
        path: the video.
        spans: the windows, ``(start, end)`` seconds, in time order.
        cfg: frames per window and their size.
        middles: positions of the windows whose middle frame to keep at full size (thumbnails).

    Raises:
        MediaError: not a readable video, or not even the first sampled frame can be read.
    """
    info = probe_video(path)
    wanted = []
    for span in spans:
        first, last = segment_frames(span, info.fps, info.frames)
        wanted.append(first + even_indices(last - first, cfg.frames))
    needed = sorted({int(i) for w in wanted for i in w})
    full_size = {int(wanted[p][len(wanted[p]) // 2]) for p in middles}
    kept: dict[int, torch.Tensor] = {}
    big: dict[int, np.ndarray] = {}
    missing = 0
    capture = cv2.VideoCapture(str(path))
    try:
        index = 0
        if needed and needed[0] > 0 and capture.set(cv2.CAP_PROP_POS_FRAMES, needed[0]):
            index = int(capture.get(cv2.CAP_PROP_POS_FRAMES))  # where the seek landed (a keyframe or the frame)
            if index > needed[0]:  # overshot: read from the start instead
                capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                index = 0
        last_good: torch.Tensor | None = None
        last_frame: np.ndarray | None = None
        for i in needed:
            read = False
            while index <= i:
                if not capture.grab():
                    break
                if index == i:
                    ok, frame = capture.retrieve()
                    if ok:
                        last_good, last_frame, read = frames_to_uint8(frame[None], cfg)[:, 0], frame, True
                index += 1
            if last_good is None or last_frame is None:
                raise MediaError(f"{path}: no frame could be read up to frame {i}")
            missing += not read
            kept[i] = last_good
            if i in full_size:
                big[i] = last_frame
    finally:
        capture.release()
    clips = np.stack([torch.stack([kept[int(i)] for i in w], dim=1).numpy() for w in wanted])
    return WindowClips(clips, missing, {p: big[int(wanted[p][len(wanted[p]) // 2])] for p in middles})


def frames_to_uint8(frames: np.ndarray, cfg: VideoFrontEndConfig) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 BGR frames to ``(3, T, S, S)`` uint8 RGB, resized (or cropped) to S."""
    s = cfg.size
    out = np.empty((len(frames), s, s, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        if cfg.crop:
            h, w = frame.shape[:2]
            scale = s / min(h, w)
            size = (max(s, round(w * scale)), max(s, round(h * scale)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            y, x = (frame.shape[0] - s) // 2, (frame.shape[1] - s) // 2
            out[i] = frame[y : y + s, x : x + s]
        else:
            out[i] = cv2.resize(frame, (s, s), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(out[..., ::-1].copy()).permute(3, 0, 1, 2).contiguous()


def normalize_clip(x: torch.Tensor) -> torch.Tensor:
    """uint8 RGB clips ``(..., 3, T, S, S)`` to float32 normalised with the Kinetics statistics."""
    mean = torch.tensor(KINETICS_MEAN, device=x.device)[:, None, None, None]
    std = torch.tensor(KINETICS_STD, device=x.device)[:, None, None, None]
    return (x.float() / 255.0 - mean) / std


def frames_to_tensor(frames: np.ndarray, cfg: VideoFrontEndConfig) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 BGR frames to a normalised ``(3, T, S, S)`` float32 tensor."""
    return normalize_clip(frames_to_uint8(frames, cfg))


def decode_clip(
    path: str | os.PathLike[str], cfg: VideoFrontEndConfig = VideoFrontEndConfig(), segment: Segment | None = None
) -> torch.Tensor:
    """Decode a video file (or a ``(start, end)`` stretch of it) into ``(3, T, S, S)`` uint8 RGB frames.

    uint8 keeps many clips in memory at once.

    Raises:
        MediaError: the file is missing, empty, corrupt, not a video (e.g. an audio file), or the
            segment holds no frame.
    """
    return frames_to_uint8(_decode_sampled(Path(path), cfg.frames, cfg.max_decode_frames, segment), cfg)


def load_clip(path: str | os.PathLike[str], cfg: VideoFrontEndConfig = VideoFrontEndConfig()) -> torch.Tensor:
    """Decode a video file into an encoder input.

    Args:
        path: any file OpenCV or PyAV can read.
        cfg: frames, size and cropping.

    Returns:
        ``(3, T, S, S)`` float32 tensor.

    Raises:
        MediaError: the file is missing, empty, corrupt, or not a video (e.g. an audio file).
    """
    return normalize_clip(decode_clip(path, cfg))
