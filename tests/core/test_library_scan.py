"""Finding a library's files: any folder, flat or nested, fast on folders full of other files, never hanging."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fmn_core.errors import FmnError
from fmn_core.index.library import scan_library


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00")  # the scan goes by name: content is the decoder's business
    return path


def test_a_flat_folder_gives_unlabelled_items(tmp_path: Path) -> None:
    for name in ("IMG_0001.MOV", "clip.mp4", "memo.m4a", "note.amr", "readme.txt", ".hidden.mp4"):
        _touch(tmp_path / name)
    entries = scan_library(tmp_path)
    assert [(e.id, e.modality, e.label) for e in entries] == [
        ("IMG_0001.MOV", "video", None),
        ("clip.mp4", "video", None),
        ("memo.m4a", "speech", None),
        ("note.amr", "speech", None),
    ]


def test_a_nested_folder_labels_items_by_their_folder_and_skips_hidden_ones(tmp_path: Path) -> None:
    _touch(tmp_path / "2026" / "kitchen" / "a.mp4")
    _touch(tmp_path / "2026" / "b.webm")
    _touch(tmp_path / ".cache" / "c.mp4")
    _touch(tmp_path / ".fmn-index" / "d.mp4")
    entries = scan_library(tmp_path)
    assert [(e.id, e.label) for e in entries] == [("2026/b.webm", "2026"), ("2026/kitchen/a.mp4", "kitchen")]


def test_a_symlink_loop_does_not_hang_the_scan(tmp_path: Path) -> None:
    _touch(tmp_path / "videos" / "a.mp4")
    os.symlink(tmp_path, tmp_path / "videos" / "back-to-top")  # a loop, as a careless link makes
    os.symlink(tmp_path / "videos" / "a.mp4", tmp_path / "link.mp4")  # a link to a file is an item
    entries = scan_library(tmp_path)
    assert sorted(e.id for e in entries) == ["link.mp4", "videos/a.mp4"]


def test_a_folder_without_media_says_so(tmp_path: Path) -> None:
    for i in range(2000):
        _touch(tmp_path / f"{i % 20}" / f"page{i}.html")
    with pytest.raises(FmnError, match="no video or audio files found"):  # its speed: docs/benchmarks.md
        scan_library(tmp_path)
    with pytest.raises(FmnError, match="no such folder"):
        scan_library(tmp_path / "gone")
