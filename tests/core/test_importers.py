"""Manifests of segments from MPII Cooking 2 and TACoS annotations, on small files in exactly their layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fmn_core.cli import main
from fmn_core.importers import from_mpii_cooking2, from_tacos
from fmn_core.manifest import BACKGROUND, ManifestError, ManifestRow, read_manifest, write_manifest
from fmn_core.media.video_io import write_mp4
from fmn_core.splits import split_by_video

FPS = 10


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 4 s recordings (40 frames at 10 fps), named as the datasets name theirs."""
    folder = tmp_path_factory.mktemp("videos")
    for name in ("s08-d02-cam-002.avi", "s13-d21.avi"):
        write_mp4(folder / name, [np.full((64, 64, 3), 5 * i, np.uint8) for i in range(4 * FPS)], fps=FPS)
    return folder


def _mpii(folder: Path, lines: list[str]) -> Path:
    path = folder / "detectionGroundtruth.csv"  # no header, as the dataset ships it
    path.write_text("\n".join(lines) + "\n")
    return path


def test_mpii_cooking2_segments_become_rows_of_their_activity(videos: Path, tmp_path: Path) -> None:
    csv_path = _mpii(tmp_path, ["s08,s08-d02-cam-002,11,20,5,cut apart", "s08,s08-d02-cam-002,21,35,12,peel"])
    rows = from_mpii_cooking2(csv_path, videos)
    assert [(r.label, r.segment) for r in rows] == [("cut apart", (1.0, 2.0)), ("peel", (2.0, 3.5))]
    assert rows[0].id == "s08-d02-cam-002_10_20" and all(r.modality == "video" for r in rows)


def test_tacos_sentences_become_one_class_per_segment(videos: Path, tmp_path: Path) -> None:
    annotations = {
        "s13-d21.avi": {
            "num_frames": 40,
            "fps": 10,
            "timestamps": [[0, 10], [20, 35]],
            "sentences": ["The person takes out a knife.", "She cuts the cucumber into slices."],
        }
    }
    path = tmp_path / "test.json"
    path.write_text(json.dumps(annotations))
    rows = from_tacos(path, videos)
    assert [(r.label, r.segment, r.text) for r in rows] == [
        ("s13-d21#0", (0.0, 1.0), "The person takes out a knife."),
        ("s13-d21#1", (2.0, 3.5), "She cuts the cucumber into slices."),
    ]


def test_bad_annotations_are_listed_and_nothing_is_written(
    videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = _mpii(
        tmp_path,
        [
            "s08,s08-d02-cam-002,11,20,5,cut apart",  # fine
            "s08,s08-d02-cam-002,30,90,5,cut apart",  # line 2: past the 4 s recording
            "s09,s09-d01-cam-002,1,20,5,peel",  # line 3: no such video
            "s08,s08-d02-cam-002,20,10,7,stir",  # line 4: backwards
            "s08,s08-d02-cam-002,x,10,7,stir",  # line 5: not a frame
            "s08,s08-d02-cam-002",  # line 6: too few cells
        ],
    )
    with pytest.raises(ManifestError) as caught:
        from_mpii_cooking2(csv_path, videos)
    assert [i.line for i in caught.value.issues] == [2, 3, 4, 5, 6]
    assert "past the end" in str(caught.value) and "no video 's09-d01-cam-002'" in str(caught.value)
    out = tmp_path / "manifest.csv"
    argv = ["manifest", "from-mpii-cooking2", str(csv_path), "--videos", str(videos), "--out", str(out)]
    assert main(argv) == 2
    assert not out.exists() and "5 problem(s)" in capsys.readouterr().err
    with pytest.raises(ManifestError, match="not a TACoS annotation file"):
        from_tacos(csv_path, videos)


def test_the_command_writes_a_manifest_that_validates_and_splits_by_recording(
    videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [f"s08,s08-d02-cam-002,{1 + 4 * i},{4 + 4 * i},5,act{i % 3}" for i in range(9)]
    csv_path = _mpii(tmp_path, lines)
    out = tmp_path / "mpii" / "manifest.csv"
    argv = ["manifest", "from-mpii-cooking2", str(csv_path), "--videos", str(videos), "--out", str(out)]
    assert main(argv) == 0
    assert "9 segments of 1 videos" in capsys.readouterr().out
    manifest = read_manifest(out, check_media=True)
    assert len({r.split for r in manifest.rows}) == 1  # one recording: its segments share a split
    two = [
        ManifestRow(f"{name}{i}", "video", str(videos / name), f"l{i}", start=str(i), end=str(i + 1))
        for name in ("s08-d02-cam-002.avi", "s13-d21.avi")
        for i in range(3)
    ]
    split = split_by_video(two, test=0.5, val=0.0, seed=0)
    assert {r.split for r in split} == {"train", "test"}
    assert all(len({r.split for r in split if r.path == p}) == 1 for p in {r.path for r in split})


def test_the_stretches_no_segment_covers_become_background_rows(videos: Path, tmp_path: Path) -> None:
    name = str(videos / "s13-d21.avi")  # 4 s long
    rows = [
        ManifestRow("a", "video", name, "cut_onion", "train", start="0.5", end="1.0"),  # 0.5 s before it: too short
        ManifestRow("b", "video", name, "pour_oil", "train", start="3.6", end="4.0"),  # 1.0-3.6 is free
        ManifestRow("s", "speech", "x.wav", "cut_onion", "train"),
    ]
    write_manifest(rows, tmp_path / "m.csv")
    out = tmp_path / "with-background.csv"
    assert main(["manifest", "background", str(tmp_path / "m.csv"), "--out", str(out), "--piece", "1.5"]) == 0
    added = [r for r in read_manifest(out).rows if r.label == BACKGROUND]
    # 2.6 s of nothing, cut into two pieces of about 1.5 s, in the file's split; the end (4.0) is covered
    assert [(float(r.start), float(r.end)) for r in added] == [(1.0, 2.3), (2.3, 3.6)]
    assert {r.split for r in added} == {"train"} and len({r.id for r in added}) == 2
