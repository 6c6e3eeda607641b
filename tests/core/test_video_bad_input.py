"""Bad video in a library (issue 13): each file is indexed as well as it can be, or refused with a reason.

One small library holds what users' folders hold: a phone video of variable frame rate, one
recorded sideways (rotation metadata), an empty file and a sound-only file named .mp4, and a long
video with a broken stretch next to an intact copy of it. It is indexed once, as the app does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from fmn_core.features.video import VideoFrontEndConfig, decode_clip, even_indices, segment_frames, window_clips
from fmn_core.index.moments import windows
from fmn_core.index.retriever import Retriever
from fmn_core.inference import FMNModel
from fmn_core.media.video_io import probe_video
from fmn_core.models import FMNConfig, create_fmn
from fmn_core.models.speech import SpeechEncoderConfig

SMALL = FMNConfig(speech=SpeechEncoderConfig(hidden=32, frame_stack=3), embed_dim=32, fusion_hidden=32)
WINDOW, HOP = 2.0, 1.0
# A phone in dim light: 3 s at 10 fps, then frames 20 ms and 80 ms apart by turns (20 fps on average).
VFR_GAPS_MS = [100] * 30 + [20, 80] * 30
BITS = 8  # a frame shows its number as this many black or white stripes


def _numbered(i: int) -> np.ndarray:
    """A 96x72 BGR frame showing ``i`` in binary, readable after compression and resizing."""
    frame = np.zeros((72, 96, 3), np.uint8)
    for b in range(BITS):
        if i >> b & 1:
            frame[:, b * 12 : (b + 1) * 12] = 255
    return frame


def _number_of(frame: np.ndarray) -> int:
    """The number a ``(H, W, 3)`` frame of :func:`_numbered` shows."""
    row = frame[frame.shape[0] // 2].astype(np.float32).mean(axis=1)
    return sum(1 << b for b in range(BITS) if row[int((b + 0.5) * frame.shape[1] / BITS)] > 127)


def _write(
    path: Path, frames: Sequence[np.ndarray], gaps_ms: Sequence[int], rotation: int = 0, keyint: int = 250
) -> None:
    """An H.264 MP4 whose frames are ``gaps_ms`` apart (millisecond timestamps, so any rhythm)."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"g": str(keyint)}
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)  # the display matrix a phone writes
        pts = 0
        for frame, gap in zip(frames, gaps_ms, strict=True):
            picture = av.VideoFrame.from_ndarray(frame, format="bgr24")
            picture.pts, picture.time_base = pts, Fraction(1, 1000)
            out.mux(stream.encode(picture))
            pts += gap
        out.mux(stream.encode(None))


def _write_sound_only(path: Path) -> None:
    """One second of a tone as AAC in an MP4 (what a voice memo app may save as .mp4)."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000, layout="mono")
        wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)[None]
        for start in range(0, wave.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, start : start + 1024]), "fltp", "mono")
            frame.sample_rate = 16000
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random model whose windows (2 s every 1 s) make videos of a few seconds long videos."""
    torch.manual_seed(0)
    fe = VideoFrontEndConfig(frames=SMALL.video.input_frames, size=SMALL.video.input_size, window=WINDOW, hop=HOP)
    folder = tmp_path_factory.mktemp("model") / "m"
    FMNModel(create_fmn(SMALL).eval(), SMALL, video_frontend=fe).save(folder)
    return folder


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lib = tmp_path_factory.mktemp("bad") / "lib"
    lib.mkdir()
    _write(lib / "vfr.mp4", [_numbered(i) for i in range(len(VFR_GAPS_MS))], VFR_GAPS_MS)
    # Upright, the picture is portrait with a red top; the phone stored it turned clockwise and
    # says so in its display matrix (rotation 90: turn it counter-clockwise to show it).
    upright = np.zeros((96, 72, 3), np.uint8)
    upright[:48, :, 2] = 255
    _write(lib / "rotated.mp4", [np.ascontiguousarray(np.rot90(upright, k=-1))] * 50, [100] * 50, rotation=90)
    (lib / "empty.mp4").write_bytes(b"")
    _write_sound_only(lib / "sound.mp4")
    # A keyframe every second, so the picture recovers after the damage and windows past it can
    # be compared with the intact copy's (12 s: a tenth of these bytes is about two seconds).
    _write(lib / "intact.mp4", [_numbered(i) for i in range(120)], [100] * 120, keyint=10)
    data = bytearray((lib / "intact.mp4").read_bytes())
    tenth = len(data) // 10
    middle = len(data) // 2 - tenth // 2  # in the picture data (mdat), far from the index (moov, at the end)
    data[middle : middle + tenth] = bytes(tenth)
    (lib / "broken.mp4").write_bytes(bytes(data))
    return lib


@pytest.fixture(scope="module")
def indexed(library: Path, model_dir: Path) -> Iterator[Retriever]:
    r = Retriever.open(library, model_dir, jobs=1)
    try:
        yield r
    finally:
        r.close()


def _window_raws(r: Retriever, item_id: str) -> tuple[np.ndarray, np.ndarray]:
    """A long video's stored windows: ``(spans (n, 2), raw features (n, D))``."""
    assert r.store is not None
    with sqlite3.connect(r.store.path) as db:
        rows = db.execute("SELECT start, end, raw FROM windows WHERE item_id = ? ORDER BY idx", (item_id,)).fetchall()
    spans = np.array([(a, b) for a, b, _ in rows])
    return spans, np.stack([np.frombuffer(raw, np.float32) for _, _, raw in rows])


def test_a_variable_frame_rate_video_is_sampled_by_time(library: Path, indexed: Retriever) -> None:
    path = library / "vfr.mp4"
    times = np.cumsum([0, *VFR_GAPS_MS[:-1]]) / 1000  # when each frame is shown
    info = probe_video(path)
    # The real length, from the last frame's time (5.92 s) to its end (6 s; the muxer guesses 5.96):
    # FFmpeg's average rate of this file (14.85 fps) would make it 6.06 s, windows past the end.
    assert info.frames == len(VFR_GAPS_MS) and 5.92 < info.duration_s <= 6.0
    assert info.fps == pytest.approx(info.frames / info.duration_s)

    row = indexed.item("vfr.mp4")
    spans, _ = _window_raws(indexed, "vfr.mp4")
    assert row.status == "ok" and np.allclose(spans, windows(info.duration_s, WINDOW, HOP))
    assert spans[0, 0] == 0 and spans[-1, 1] == info.duration_s  # the windows cover the whole video

    # Every sampled frame is the one on screen at its time, or a neighbour (times are rounded to
    # the 15 fps grid of the windows): counting frames at the average rate would take the frame
    # shown at 2.8 s for the one at 1.8 s (frames of the first 3 s are 100 ms apart, not 66).
    cfg = indexed.model.video_frontend
    decoded = window_clips(path, [tuple(s) for s in spans], cfg)
    assert decoded.missing == 0
    for span, clip in zip(spans, decoded.clips, strict=True):
        first, last = segment_frames(tuple(span), info.fps, info.frames)
        wanted = (first + even_indices(last - first, cfg.frames)) / info.fps
        on_screen = np.searchsorted(times, wanted + 1e-9, side="right") - 1
        shown = np.array([_number_of(clip[:, k].transpose(1, 2, 0)) for k in range(cfg.frames)])
        assert np.all(np.abs(shown - on_screen) <= 1), (span, shown, on_screen)
        # a manifest's segment row is decoded the same way: its frames are a window's frames
        assert np.array_equal(decode_clip(path, cfg, segment=(float(span[0]), float(span[1]))).numpy(), clip)


def test_a_rotated_phone_video_is_indexed_upright(library: Path, indexed: Retriever) -> None:
    with av.open(str(library / "rotated.mp4")) as f:
        assert next(f.decode(video=0)).rotation == 90  # the file says: turn me to show me
    row = indexed.item("rotated.mp4")
    assert row.status == "ok" and row.duration == pytest.approx(5.0, abs=0.1)
    # OpenCV applies the display matrix (CAP_PROP_ORIENTATION_AUTO): encoder input and thumbnails
    # see the picture the phone showed, portrait and red on top (the thumbnail is RGB).
    for at in (None, 2.5):
        thumb = indexed.thumbnail("rotated.mp4", at=at)
        assert thumb is not None and thumb.shape[0] > thumb.shape[1]
        top, bottom = thumb[: thumb.shape[0] // 3].mean(axis=(0, 1)), thumb[-thumb.shape[0] // 3 :].mean(axis=(0, 1))
        assert top[0] > 200 and top[1:].max() < 50 and bottom.max() < 50


def test_an_empty_file_and_a_sound_only_file_are_refused_with_what_is_wrong(indexed: Retriever) -> None:
    failed = dict(indexed.report.failed)
    assert set(failed) == {"empty.mp4", "sound.mp4"}  # and nothing else: the rest of the library is indexed
    # the reasons the app and `fmn index` show: what is wrong with the file, not a traceback
    assert failed["empty.mp4"].endswith("empty.mp4: the file is empty")
    assert failed["sound.mp4"].endswith("sound.mp4: it holds sound but no video stream (not a video)")
    for item_id in failed:
        assert indexed.item(item_id).status == "failed"
    assert all(it.status == "ok" for it in indexed.items() if it.id not in failed)
    assert len(indexed.items()) == 6


def test_a_broken_stretch_costs_its_windows_and_is_reported(indexed: Retriever) -> None:
    gaps = dict(indexed.report.gaps)
    assert set(gaps) == {"broken.mp4"} and "sampled frames could not be read" in gaps["broken.mp4"]
    assert indexed.item("broken.mp4").status == "ok"
    spans, broken = _window_raws(indexed, "broken.mp4")
    intact_spans, intact = _window_raws(indexed, "intact.mp4")
    assert np.array_equal(spans, intact_spans)
    # The damage changes a run of windows in the middle; the windows before it and those after
    # the picture recovers are the intact video's (frames are found by their timestamps: counting
    # them would shift every window after the stretch).
    same = [bool(np.allclose(a, b, atol=1e-5)) for a, b in zip(broken, intact, strict=True)]
    changed = [w for w, s in enumerate(same) if not s]
    assert changed and same[0] and same[-1], same
    assert changed == list(range(changed[0], changed[-1] + 1)), same
