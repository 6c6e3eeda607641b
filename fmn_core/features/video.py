"""Video front end: decode a clip, sample T frames evenly, resize and normalise for I3D.

The encoders take ``(3, T, S, S)`` float tensors normalised with the Kinetics statistics that
pytorchvideo's I3D models were trained with, so a user's Kinetics checkpoint sees the inputs
it expects.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt
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


def even_indices(n_frames: int, t: int) -> npt.NDArray[np.int64]:
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
    if segment is not None:
        # A segment is found by time: counting frames from the start would shift it in a video of
        # variable frame rate or after a broken stretch (as windows are, see window_clips).
        by_time = _frames_at(path, wanted, fps, n_file)
        if by_time is not None:
            return by_time
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


def _frames_at(path: Path, wanted: np.ndarray, fps: float, n_file: int) -> np.ndarray | None:
    """The frames shown at ``wanted`` indices of the fps grid, by timestamp (:class:`_FramesByTime`);
    a lost frame's place is taken by the last good one. None when none of them could be read
    (a segment past the end shows only the video's last frame, which is not its own)."""
    capture = cv2.VideoCapture(str(path))
    shown: list[np.ndarray] = []
    found = False
    try:
        frames = _FramesByTime(capture, fps, n_file)
        frames.seek(int(wanted[0]))
        for i in wanted.tolist():
            found = frames.at(i) or found
            if frames.frame is None:
                return None
            shown.append(frames.frame)
    finally:
        capture.release()
    return np.stack(shown) if found else None


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
    once if any window samples it. Frames are found by their timestamps (:class:`_FramesByTime`),
    so a variable frame rate or a broken stretch does not shift the frames of the windows after
    it. A frame that cannot be read (a broken stretch, a file shorter than its header says) is
    replaced by the last good one and counted, so one bad stretch costs its windows, not the
    whole video. At a constant frame rate the frames are those :func:`decode_clip` samples for
    each window as a segment.

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
        frames = _FramesByTime(capture, info.fps, info.frames)
        if needed:
            frames.seek(needed[0])
        small: tuple[int, torch.Tensor] | None = None  # the last frame resized: (its serial, the tensor)
        for i in needed:
            read = frames.at(i)
            if frames.frame is None:
                raise MediaError(f"{path}: no frame could be read up to frame {i}")
            if small is None or small[0] != frames.serial:
                small = frames.serial, frames_to_uint8(frames.frame[None], cfg)[:, 0]
            missing += not read
            kept[i] = small[1]
            if i in full_size:
                big[i] = frames.frame
    finally:
        capture.release()
    clips = np.stack([torch.stack([kept[int(i)] for i in w], dim=1).numpy() for w in wanted])
    return WindowClips(clips, missing, {p: big[int(wanted[p][len(wanted[p]) // 2])] for p in middles})


_DECODER_DELAY = 32  # frames a decoder may hold back (B-frame reordering, frame threads)


class _FramesByTime:
    """A capture's frames in order, each labelled with the frame index its timestamp falls on (time x fps).

    Counting grabs numbers frames wrongly after a broken stretch (a packet that fails to decode
    fails one grab, yet may cost several frames or none) and in a video of variable frame rate
    (its frames are not 1/fps apart: a phone slows down in dim light); a frame's own timestamp
    says which frame of the regular fps grid it stands for. A file without timestamps is counted.
    At a constant frame rate the labels are the counts.
    """

    def __init__(self, capture: cv2.VideoCapture, fps: float, n_frames: int) -> None:
        self.capture = capture
        self.fps = fps or 25.0  # as segment_frames
        self.n_frames = n_frames
        self.frame: np.ndarray | None = None  # the frame shown at the index last asked for (BGR)
        self.serial = 0  # changes with `frame`
        self._shown = -1  # label of `frame`
        self._label = -1  # label of the last frame grabbed and passed
        self._steps: deque[int] = deque([1], maxlen=8)  # labels between the latest frames passed
        self._regular = True  # every frame so far was one label after the last (a constant frame rate)
        self._time = -math.inf  # timestamp of the last frame grabbed (seconds)
        self._next: int | None = None  # label of a frame grabbed past the index last asked for
        self._gap = False  # frames were lost between the last frame passed and `_next`
        self._failed = 0  # frames still to come that may end a broken stretch (after failed grabs)
        self._ended = False

    def seek(self, i: int) -> None:
        """Start at frame ``i`` or before it, never after (from the start when the seek fails)."""
        target, moved = i, False
        for _ in range(4):  # a variable frame rate may land the seek past i: step back further
            if target <= 0 or not self.capture.set(cv2.CAP_PROP_POS_FRAMES, target):
                break
            moved = True
            self._time, self._label = -math.inf, target - 1  # a file without timestamps: counted from here
            landed = self._grab()
            if landed is None:
                break
            if landed <= i:
                self._next = landed
                return
            target -= 2 * (landed - i)
        if moved:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._time, self._label, self._next, self._gap, self._failed, self._ended = (
                -math.inf, -1, None, False, 0, False
            )  # fmt: skip

    def at(self, i: int) -> bool:
        """Move ``frame`` to the frame shown at index ``i`` (at or after the index last asked for).

        Returns whether it is that frame (False: frames were lost there and an earlier one stands
        in). ``frame`` stays None when no frame could be read.
        """
        while True:
            if self._next is None:
                self._next = self._grab()
                if self._next is None:  # the end: the last frame is shown for its step, after that frames are lost
                    return self._shown == i or i <= self._label + max(self._steps)
            if self._next > i and self.frame is not None:
                return self._shown == i or not self._gap
            label, gap, self._next = self._next, self._gap, None
            # Retrieved (the costly part) when it may be the one shown at i: it is at i; or frames
            # are irregular, so the next one may be past i; or a broken stretch may follow it (the
            # last good frame stands in). At a constant frame rate only the frames sampled are.
            if label >= i or not self._regular or self._failed or self.frame is None:
                ok, frame = self.capture.retrieve()
                if ok:
                    self.frame, self._shown, self.serial = frame, label, self.serial + 1
            if self._label >= 0 and label - self._label != 1:
                self._regular = False
            self._steps.append(max(1, label - self._label))
            self._label = label
            if label >= i:  # at i; or past it when nothing before it could be read
                return self._shown == i or (self._shown > i and not gap)

    def _grab(self) -> int | None:
        """Grab the next frame; its label, or None at the end of the stream."""
        failures = 0
        while not self._ended:
            if self.capture.grab():
                t = self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000  # 0 when the frame has no timestamp
                if 0 < t <= self._time:
                    # Older than the last: a decoder recovering from a broken stretch, too late (or
                    # timestamps that start again, a file joined from two: the rest counts as lost).
                    continue
                label = round(t * self.fps) if t > 0 or self._label < 0 else self._label + 1
                self._time = max(t, self._time)
                # Frames the decoder held back may come out after the failed grabs, so the broken
                # stretch shows as the first jump in labels within a few frames after them.
                self._failed = _DECODER_DELAY if failures else max(0, self._failed - 1)
                self._gap = self._failed > 0 and label - self._label > max(self._steps)
                if self._gap:
                    self._failed = 0
                return label
            # A failed grab is a packet that did not decode, or the end: the end fails every time
            # after, cheaply; a broken stretch is at most the frames the file has left.
            failures += 1
            self._ended = failures > max(16, self.n_frames - self._label)
        return None


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
