"""Manifest rows that are a stretch of their file (start/end): validation, and decoding only that stretch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fmn_core.features.video import VideoFrontEndConfig, decode_clip
from fmn_core.manifest import ManifestError, ManifestRow, read_manifest, write_manifest
from fmn_core.media.audio_io import SAMPLE_RATE, load_audio, write_wav
from fmn_core.media.errors import MediaError
from fmn_core.media.video_io import write_mp4
from fmn_core.training.data import decode_speech, decode_videos

FPS = 10


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s video whose frame i is grey level 6 * i: a decoded frame says where it came from."""
    folder = tmp_path_factory.mktemp("segments")
    frames = [np.full((64, 64, 3), 6 * i, np.uint8) for i in range(4 * FPS)]
    write_mp4(folder / "recipe.mp4", frames, fps=FPS)
    t = np.arange(4 * SAMPLE_RATE) / SAMPLE_RATE
    wave = np.where((t >= 1) & (t < 2), 0.5 * np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)  # sound at 1-2 s
    write_wav(folder / "narration.wav", wave)
    return folder


def _write(folder: Path, lines: list[str]) -> Path:
    path = folder / "manifest.csv"
    path.write_text("id,modality,path,label,start,end\n" + "\n".join(lines) + "\n")
    return path


def test_segments_are_read_and_written(recording: Path) -> None:
    path = _write(recording, ["a,video,recipe.mp4,cut,1.0,2.5", "b,video,recipe.mp4,stir,3,", "c,video,recipe.mp4,x,,"])
    manifest = read_manifest(path, check_media=True)
    assert [r.segment for r in manifest.rows] == [(1.0, 2.5), (3.0, None), None]
    again = read_manifest(write_manifest(manifest, recording / "copy.csv"))
    assert [r.segment for r in again.rows] == [(1.0, 2.5), (3.0, None), None]


def test_bad_ranges_are_listed_with_their_lines(recording: Path, tmp_path: Path) -> None:
    (tmp_path / "recipe.mp4").write_bytes((recording / "recipe.mp4").read_bytes())
    path = _write(
        tmp_path,
        [
            "a,video,recipe.mp4,cut,-1,2",  # line 2: negative
            "b,video,recipe.mp4,cut,2,2",  # line 3: empty
            "c,video,recipe.mp4,cut,soon,3",  # line 4: not a number
            "d,video,recipe.mp4,cut,3,9",  # line 5: past the file's 4 s
            "e,video,recipe.mp4,cut,1,2",  # fine
        ],
    )
    with pytest.raises(ManifestError) as caught:
        read_manifest(path, check_media=True)
    lines = {i.line: i.message for i in caught.value.issues}
    assert sorted(lines) == [2, 3, 4, 5]
    assert "0 or more" in lines[2] and "not after start" in lines[3] and "not a number" in lines[4]
    assert "past the end" in lines[5] and "4.00 s" in lines[5]
    with pytest.raises(ManifestError) as text_only:  # without opening the files: what the text says
        read_manifest(path)
    assert sorted(i.line for i in text_only.value.issues) == [2, 3, 4]


def test_a_video_segment_samples_frames_from_its_stretch_only(recording: Path) -> None:
    cfg = VideoFrontEndConfig(frames=4, size=32)
    whole = decode_clip(recording / "recipe.mp4", cfg).float().mean(dim=(0, 2, 3))
    part = decode_clip(recording / "recipe.mp4", cfg, (1.0, 2.0)).float().mean(dim=(0, 2, 3))
    # frames 10-19 have grey levels 60-114, frames 30-39 180-234 (within the codec's error)
    assert part.min() > 50 and part.max() < 125
    assert whole.min() < 40 and whole.max() > 180
    to_end = decode_clip(recording / "recipe.mp4", cfg, (3.0, None)).float().mean(dim=(0, 2, 3))
    assert to_end.min() > 170
    with pytest.raises(MediaError, match="no frames"):
        decode_clip(recording / "recipe.mp4", cfg, (30.0, 31.0))


def test_an_audio_segment_is_only_that_stretch(recording: Path) -> None:
    part = load_audio(recording / "narration.wav", segment=(1.0, 2.0))
    assert len(part) == SAMPLE_RATE and np.sqrt((part**2).mean()) > 0.3
    assert np.abs(load_audio(recording / "narration.wav", segment=(2.5, None))).max() == 0
    with pytest.raises(MediaError, match="no audio in the segment"):
        load_audio(recording / "narration.wav", segment=(9.0, 10.0))


def test_training_decodes_segment_rows_without_cutting_files(recording: Path) -> None:
    manifest = read_manifest(
        _write(
            recording,
            ["v1,video,recipe.mp4,cut,1,2", "v2,video,recipe.mp4,stir,3,4", "s1,speech,narration.wav,cut,1,2"],
        )
    )
    videos = decode_videos(manifest, manifest.of("video"), VideoFrontEndConfig(frames=4, size=32), jobs=1)
    levels = [clip.float().mean().item() for clip in videos.items]
    assert 50 < levels[0] < 125 and levels[1] > 170 and not videos.failures
    from fmn_core.features.audio import SpeechFrontEndConfig

    speech = decode_speech(manifest, manifest.of("speech"), SpeechFrontEndConfig(kind="mfcc"), jobs=1)
    assert not speech.failures and speech.items[0].shape[0] > 50  # about 1 s of 10 ms frames
    assert ManifestRow("x", "video", "a.mp4", "l", start="0.5").segment == (0.5, None)
