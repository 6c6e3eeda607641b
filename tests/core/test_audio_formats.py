"""Audio that libsndfile cannot read (a phone's m4a memo, Opus, WMA, a video's sound) is read through FFmpeg."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from fmn_core.index.library import detect_modality
from fmn_core.media.audio_io import SAMPLE_RATE, load_audio, resample
from fmn_core.media.errors import MediaError

RATE = 48000


def _tone(seconds: float = 1.0) -> np.ndarray:
    """A 440 Hz tone with a 3 Hz amplitude wobble: easy to compare after a lossy codec."""
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * 440 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def _encode(path: Path, wave: np.ndarray, codec: str, fmt: str, with_video: bool = False) -> Path:
    """Write ``wave`` (mono, 48 kHz) with PyAV's ``codec`` in container ``fmt``; optionally beside a video."""
    with av.open(str(path), "w", format=fmt) as out:
        if with_video:
            video = out.add_stream("libx264", rate=10)
            video.width = video.height = 64
            video.pix_fmt = "yuv420p"
        audio = out.add_stream(codec, rate=RATE)
        audio.layout = "mono"
        audio.bit_rate = 64000  # WMA has no default rate
        size = audio.codec_context.frame_size or 1024
        pts = 0
        for start in range(0, len(wave), size):
            chunk = wave[start : start + size]
            # Mono: packed and planar float hold the same (1, n) array; use what the encoder takes.
            sample_format = "flt" if "flt" in [f.name for f in audio.codec.audio_formats] else "fltp"
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format=sample_format, layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = RATE, pts, Fraction(1, RATE)
            pts += len(chunk)
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)
        if with_video:
            for i in range(int(10 * len(wave) / RATE)):
                picture = np.full((64, 64, 3), i * 20 % 255, np.uint8)
                for packet in video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                    out.mux(packet)
            for packet in video.encode(None):
                out.mux(packet)
    return path


def _at_16k(wave: np.ndarray) -> np.ndarray:
    return resample(wave, RATE, SAMPLE_RATE)


def _envelope_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of the two waves' 10 ms RMS envelopes over their common length (codec delay aside)."""
    hop = SAMPLE_RATE // 100
    n = min(len(a), len(b)) // hop * hop
    ea = np.sqrt((a[:n].reshape(-1, hop) ** 2).mean(1))
    eb = np.sqrt((b[:n].reshape(-1, hop) ** 2).mean(1))
    # Encoders add or trim up to a few frames of delay at the start.
    shifted = [(ea[: len(ea) - lag], eb[lag:]) for lag in range(20)]
    shifted += [(ea[lag:], eb[: len(eb) - lag]) for lag in range(20)]
    return float(max(np.corrcoef(x, y)[0, 1] for x, y in shifted))


@pytest.mark.parametrize(
    ("name", "codec", "fmt"),
    [("memo.m4a", "aac", "ipod"), ("memo.opus", "libopus", "ogg"), ("memo.wma", "wmav2", "asf")],
)
def test_compressed_audio_is_read_through_ffmpeg(tmp_path: Path, name: str, codec: str, fmt: str) -> None:
    wave = _tone()
    got = load_audio(_encode(tmp_path / name, wave, codec, fmt))
    expected_len = len(wave) * SAMPLE_RATE // RATE
    assert abs(len(got) - expected_len) < 0.1 * expected_len  # codec padding, never a different length
    assert got.dtype == np.float32 and np.abs(got).max() <= 1.0
    assert _envelope_correlation(_at_16k(wave), got) > 0.9


def test_a_video_files_sound_track_is_read_as_audio(tmp_path: Path) -> None:
    clip = _encode(tmp_path / "clip.mp4", _tone(), "aac", "mp4", with_video=True)
    assert detect_modality(clip) == "video"
    got = load_audio(clip)
    assert _envelope_correlation(_at_16k(_tone()), got) > 0.9


def test_content_decides_the_modality_of_a_file_without_extension(tmp_path: Path) -> None:
    memo = _encode(tmp_path / "memo.m4a", _tone(), "aac", "ipod")
    bare = tmp_path / "memo"
    bare.write_bytes(memo.read_bytes())
    assert detect_modality(bare) == "speech"


def test_a_video_without_sound_and_garbage_are_clear_errors(tmp_path: Path) -> None:
    silent_video = tmp_path / "silent.mp4"
    with av.open(str(silent_video), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=10)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        for i in range(5):
            for packet in video.encode(av.VideoFrame.from_ndarray(np.full((64, 64, 3), i, np.uint8), format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    with pytest.raises(MediaError, match="a video without sound"):
        load_audio(silent_video)
    garbage = tmp_path / "broken.m4a"
    garbage.write_bytes(b"\x00\x01not audio" * 100)
    with pytest.raises(MediaError, match=r"broken\.m4a: not a readable audio file .*FFmpeg"):
        load_audio(garbage)
