"""The procedural kitchen renderer and the video I/O it writes through."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fmn_core.corpus.contact_sheet import contact_sheet
from fmn_core.corpus.video import RenderSettings, describe_clip, render_clip, write_clip
from fmn_core.corpus.vocabulary import VocabularyError, all_class_keys
from fmn_core.media import MediaError
from fmn_core.media.video_io import probe_video, read_frames, write_mp4

SMALL = RenderSettings(width=96, height=72, fps=10, min_seconds=0.5, max_seconds=1.0)


def _frames(key: str, seed: int) -> np.ndarray:
    return np.stack(list(render_clip(key, seed, SMALL)))


def test_same_seed_same_pixels_other_seed_differs() -> None:
    a, b = _frames("cut_onion", 3), _frames("cut_onion", 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a[0], _frames("cut_onion", 4)[0])


@pytest.mark.parametrize("key", all_class_keys())
def test_every_class_renders_with_motion(key: str) -> None:
    frames = _frames(key, 7)
    assert frames.dtype == np.uint8 and frames.shape[1:] == (72, 96, 3)
    assert 5 <= len(frames) <= 10  # 0.5-1.0 s at 10 fps
    assert len(frames) == describe_clip(key, 7, SMALL).n_frames
    motion = np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean()
    assert motion > 1.0, f"{key}: first and last frames are nearly identical"


def test_the_scene_is_a_scene_not_noise() -> None:
    frame = _frames("stir_pan", 1)[0].astype(float)
    neighbours = np.abs(np.diff(frame, axis=1)).mean()
    assert neighbours < 20.0  # mostly smooth surfaces, edges here and there


def test_nuisance_does_not_depend_on_the_class() -> None:
    a, b = describe_clip("cut_onion", 5, SMALL), describe_clip("wash_apple", 5, SMALL)
    shared = ("counter", "counter_color", "wall_y", "skin", "zoom", "gain", "noise_sigma", "duration_s", "board")
    assert all(a.nuisance[k] == b.nuisance[k] for k in shared)
    assert "onion" not in a.nuisance["distractors"]


def test_write_clip_decodes_to_the_same_frames(tmp_path: Path) -> None:
    out = tmp_path / "clips" / "peel_apple.mp4"
    info = write_clip("peel_apple", 2, out, SMALL)
    frames = read_frames(out)
    assert frames.shape == (info.n_frames, 72, 96, 3) and frames.dtype == np.uint8
    assert (info.width, info.height, info.fps) == (96, 72, 10)
    assert info.duration_s == pytest.approx(info.n_frames / 10)
    probe = probe_video(out)
    assert (probe.frames, probe.width, probe.height) == (info.n_frames, 96, 72)
    assert probe.fps == pytest.approx(10)
    rendered = _frames("peel_apple", 2).astype(int)
    assert np.abs(frames.astype(int) - rendered).mean() < 6.0  # lossy H.264, but the same pictures
    assert read_frames(out, max_frames=3).shape[0] == 3
    assert [p.name for p in out.parent.iterdir()] == ["peel_apple.mp4"]  # no temporary file left


def test_write_mp4_is_byte_identical_run_to_run(tmp_path: Path) -> None:
    frames = _frames("pour_oil", 9)
    write_mp4(tmp_path / "a.mp4", frames, fps=10)
    write_mp4(tmp_path / "b.mp4", frames, fps=10)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


@pytest.mark.parametrize("content", [b"", b"this is not a video" * 50])
def test_read_frames_rejects_empty_and_garbage_files(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(content)
    with pytest.raises(MediaError, match="broken.mp4"):
        read_frames(bad)
    with pytest.raises(MediaError, match="missing.mp4"):
        read_frames(tmp_path / "missing.mp4")


def test_write_mp4_rejects_bad_frames_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    with pytest.raises(MediaError, match="odd.mp4"):
        write_mp4(out, [np.zeros((71, 96, 3), np.uint8)])
    with pytest.raises(MediaError, match="odd.mp4"):
        write_mp4(out, [])
    with pytest.raises(MediaError, match="odd.mp4"):
        write_mp4(out, [np.zeros((72, 96, 3), np.uint8), np.zeros((72, 98, 3), np.uint8)])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key", ["cut_spaceship", "sprinkle_plate", "dance_onion"])
def test_unknown_class_raises_vocabulary_error(key: str, tmp_path: Path) -> None:
    with pytest.raises(VocabularyError):
        render_clip(key, 0, SMALL)
    with pytest.raises(VocabularyError):
        write_clip(key, 0, tmp_path / "x.mp4", SMALL)
    assert not (tmp_path / "x.mp4").exists()


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        RenderSettings(width=95)
    with pytest.raises(ValueError):
        RenderSettings(min_seconds=3.0, max_seconds=2.0)


def test_contact_sheet_lays_out_one_row_per_class(tmp_path: Path) -> None:
    out = contact_sheet(["cut_onion", "stir_bowl"], 0, tmp_path / "sheet.png", frames_per_clip=3, settings=SMALL)
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[0] == 2 * (72 + 2) and sheet.shape[1] > 3 * (96 + 2)
