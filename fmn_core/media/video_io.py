"""Reading, writing and probing video files.

OpenCV on this machine cannot encode H.264 (DESIGN.md §6), so clips are written with PyAV's
libx264; reading goes through OpenCV first (fast, frame-exact for our own files) and falls back
to PyAV for containers OpenCV's backend rejects.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from fmn_core.media.errors import MediaError

# Encoder settings: crf 23 is x264's visually-transparent-enough default; one thread keeps the
# bitstream identical from run to run (threaded x264 may split slices differently).
_X264_OPTIONS = {"crf": "23", "preset": "veryfast", "threads": "1"}

# x264's instruction sets by name, with the /proc/cpuinfo flag that says the CPU has each one.
# AVX-512 is left out on purpose, see _x264_options.
_X264_CPU_FLAGS = (
    ("MMX2", "sse"), ("SSE", "sse"), ("SSE2", "sse2"), ("SSE3", "pni"), ("SSSE3", "ssse3"), ("SSE4.1", "sse4_1"),
    ("SSE4.2", "sse4_2"), ("AVX", "avx"), ("XOP", "xop"), ("FMA4", "fma4"), ("FMA3", "fma"), ("BMI1", "bmi1"),
    ("BMI2", "bmi2"), ("AVX2", "avx2"), ("LZCNT", "abm"),
)  # fmt: skip


@functools.lru_cache(maxsize=1)
def _x264_options() -> dict[str, str]:
    """Encoder options for this machine.

    With its AVX-512 code enabled, the x264 in PyAV's wheels produces bitstreams that differ
    from run to run once its macroblock-tree rate control is on (measured here: 5 different
    files from 8 identical runs at 320x240; none without AVX-512 or without mbtree). Dropping
    mbtree triples the file size, so on AVX-512 CPUs x264 is told to use every other
    instruction set the CPU has (about 30 % slower encoding, same files every time).
    """
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return dict(_X264_OPTIONS)  # not Linux: nothing to go on, keep x264's own detection
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), []))
    if not any(f.startswith("avx512") for f in flags):
        return dict(_X264_OPTIONS)
    names = [name for name, flag in _X264_CPU_FLAGS if flag in flags]
    return {**_X264_OPTIONS, "x264-params": "asm=" + ",".join(names)}


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, from its container metadata."""

    frames: int  # number of video frames
    fps: float  # frames per second (average rate)
    width: int  # frame width in pixels
    height: int  # frame height in pixels
    duration_s: float  # duration in seconds


def write_mp4(path: str | os.PathLike[str], frames: Iterable[np.ndarray], fps: int = 25) -> int:
    """Encode frames as an H.264 MP4 file, atomically.

    The file is written under a temporary name in the same folder and moved into place only
    when complete, so a crash or an exception never leaves a half-written clip at ``path``.

    Args:
        path: output file; its folder is created if missing.
        frames: iterable of ``(H, W, 3)`` uint8 BGR frames, all the same size, H and W even.
        fps: frame rate of the output.

    Returns:
        The number of frames written.

    Raises:
        MediaError: no frames, a frame of the wrong shape, type or size, or an encoder error;
            the message names ``path``.
    """
    path = Path(path)
    if fps <= 0:
        raise MediaError(f"cannot write {path}: fps must be positive, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            count = _encode_all(container, frames, fps, path)
        os.replace(tmp, path)
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot write {path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return count


def _encode_all(container: av.container.OutputContainer, frames: Iterable[np.ndarray], fps: int, path: Path) -> int:
    """Encode every frame into a new libx264 stream of ``container``; returns the count."""
    stream = None
    shape: tuple[int, ...] = ()
    count = 0
    for frame in frames:
        if stream is None:
            shape = _check_first_frame(frame, path)
            stream = container.add_stream("libx264", rate=Fraction(fps))
            stream.width, stream.height = shape[1], shape[0]
            stream.pix_fmt = "yuv420p"
            stream.options = dict(_x264_options())
            stream.codec_context.thread_count = 1
        elif frame.shape != shape or frame.dtype != np.uint8:
            raise MediaError(
                f"cannot write {path}: frame {count} is {frame.shape} {frame.dtype}, expected {shape} uint8"
            )
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
        container.mux(stream.encode(video_frame))
        count += 1
    if stream is None:
        raise MediaError(f"cannot write {path}: no frames given")
    container.mux(stream.encode(None))  # flush the frames x264 holds back for lookahead
    return count


def _check_first_frame(frame: np.ndarray, path: Path) -> tuple[int, ...]:
    """Validate the first frame (it fixes the stream size) and return its shape."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.shape} {frame.dtype}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise MediaError(f"cannot write {path}: frames must be (H, W, 3) uint8 BGR, got {got}")
    height, width = frame.shape[:2]
    if height % 2 or width % 2:
        raise MediaError(f"cannot write {path}: yuv420p needs even width and height, got {width}x{height}")
    return frame.shape


def read_frames(path: str | os.PathLike[str], max_frames: int | None = None) -> np.ndarray:
    """Decode the frames of a video file.

    Args:
        path: the video file.
        max_frames: stop after this many frames (``None``: all).

    Returns:
        ``(N, H, W, 3)`` uint8 BGR frames, N >= 1.

    Raises:
        MediaError: the file is missing, empty, corrupt or holds no decodable video frames.
    """
    path = Path(path)
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if not path.is_file():
        raise MediaError(f"cannot read {path}: no such file")
    if path.stat().st_size == 0:
        raise MediaError(f"cannot read {path}: the file is empty")
    frames = _read_with_opencv(path, max_frames) or _read_with_pyav(path, max_frames)
    if not frames:
        raise MediaError(f"cannot read {path}: {_why_no_frames(path)}")
    return np.stack(frames)


def _why_no_frames(path: Path) -> str:
    """Why a file gave no video frames, in words: a sound-only file says so (it is a common mistake)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                what = "sound" if container.streams.audio else "no audio or video"
                return f"it holds {what} but no video stream (not a video)"
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        pass
    return "no video frames could be decoded (corrupt or not a video)"


def repeat_video(src: str | os.PathLike[str], dst: str | os.PathLike[str], copies: int) -> None:
    """Write ``copies`` of a video one after another into ``dst`` (MP4), without re-encoding.

    A long video in seconds for benchmarks: the packets are copied with their times shifted.

    Raises:
        MediaError: ``src`` is not a readable video.
    """
    try:
        with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
            if not inp.streams.video:
                raise MediaError(f"cannot repeat {src}: it holds no video stream")
            s_in = inp.streams.video[0]
            s_out = out.add_stream_from_template(s_in)
            offset = 0
            for _ in range(copies):
                inp.seek(0)
                end = offset
                for packet in inp.demux(s_in):
                    if packet.dts is None:  # the demuxer's end-of-stream marker
                        continue
                    assert packet.pts is not None  # a demuxed packet with a dts has a pts
                    packet.pts += offset
                    packet.dts += offset
                    end = max(end, packet.pts + (packet.duration or 0))
                    packet.stream = s_out
                    out.mux(packet)
                offset = end
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot repeat {src} into {dst}: {exc}") from exc


def read_frame_at(path: str | os.PathLike[str], seconds: float) -> np.ndarray:
    """The frame shown at ``seconds``, ``(H, W, 3)`` uint8 BGR (the first frame at 0, and past the end).

    Raises:
        MediaError: the file is missing, empty, corrupt or holds no decodable video frames.
    """
    if seconds <= 0:
        return _first_frame(path)
    capture = cv2.VideoCapture(str(path))
    try:
        if capture.isOpened() and capture.set(cv2.CAP_PROP_POS_MSEC, seconds * 1000):
            ok, frame = capture.read()
            if ok and frame is not None:
                return frame
    finally:
        capture.release()
    return _first_frame(path)  # past the end, or a file OpenCV cannot seek in: its first frame


def _first_frame(path: str | os.PathLike[str]) -> np.ndarray:
    frame: np.ndarray = read_frames(path, max_frames=1)[0]
    return frame


def _read_with_opencv(path: Path, max_frames: int | None) -> list[np.ndarray]:
    """Decode with OpenCV; an empty list means OpenCV could not read the file."""
    capture = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    try:
        while capture.isOpened() and (max_frames is None or len(frames) < max_frames):
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            frames.append(frame)
    finally:
        capture.release()
    return frames


def _read_with_pyav(path: Path, max_frames: int | None) -> list[np.ndarray]:
    """Decode with PyAV; an empty list means the file holds no decodable video."""
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return []
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="bgr24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return frames  # a truncated file still yields the frames before the damage
    return frames


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe a video file from its container metadata, without decoding pictures.

    Falls back to counting packets when the container does not record a frame count.

    Raises:
        MediaError: the file is missing or not a readable video.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"cannot probe {path}: no such file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"cannot probe {path}: it holds no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            length = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
            frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
            width, height = stream.codec_context.width, stream.codec_context.height
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"cannot probe {path}: {exc}") from exc
    fps = float(rate) if rate else 0.0
    duration = frames / fps if fps else 0.0
    if frames and length > 0 and (not fps or abs(length - duration) * fps > 1):
        # A variable frame rate (phones, screen recorders): FFmpeg's average rate of an MP4 can
        # be far off (frames of a 5.98 s video at a rate that makes it 6.11 s), the stream's
        # own duration is not; the rate is then the one that fits the frames into it.
        duration, fps = length, frames / length
    return VideoInfo(frames=frames, fps=fps, width=width, height=height, duration_s=duration)
