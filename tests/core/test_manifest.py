"""Manifest round-trip, validation that lists every bad row, and folders turned into manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmn_core.manifest import (
    Manifest,
    ManifestError,
    ManifestRow,
    manifest_from_folders,
    read_manifest,
    write_manifest,
)


def _rows() -> list[ManifestRow]:
    return [
        ManifestRow("v1", "video", "video/a.mp4", "cut_onion", split="train"),
        ManifestRow(
            "s1",
            "speech",
            "speech/a.wav",
            "cut_onion",
            split="test",
            text='切洋葱, "quoted"',
            voice="espeak:cmn",
            lang="zh",
            extra={"note": "x"},
        ),
    ]


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    path = write_manifest(_rows(), tmp_path / "m.csv")
    manifest = read_manifest(path)
    assert manifest.rows == _rows()
    assert manifest.root == tmp_path.resolve()
    assert manifest.resolve(manifest.rows[0]) == tmp_path.resolve() / "video/a.mp4"
    assert [r.id for r in manifest.of("speech", split="test")] == ["s1"]


def test_validation_lists_every_bad_row_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "id,modality,path,label,split\n"
        "a,video,a.mp4,cut_onion,train\n"  # line 2: fine
        "a,video,b.mp4,cut_onion,train\n"  # line 3: duplicate id
        "c,image,c.png,cut_onion,train\n"  # line 4: unknown modality
        "d,speech,,cut_onion,test\n"  # line 5: empty path
        "e,speech,e.wav,cut_onion,holdout\n",  # line 6: unknown split
        encoding="utf-8",
    )
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    lines = [i.line for i in info.value.issues]
    assert lines == [3, 4, 5, 6]
    text = str(info.value)
    assert "duplicate id 'a' (first on line 2)" in text and "unknown modality 'image'" in text
    assert "empty path" in text and "unknown split 'holdout'" in text


def test_media_check_reports_missing_and_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "broken.wav").write_bytes(b"not audio at all")
    (tmp_path / "broken.mp4").write_bytes(b"")
    rows = [
        ManifestRow("m", "video", "missing.mp4", "x"),
        ManifestRow("b", "speech", "broken.wav", "x"),
        ManifestRow("e", "video", "broken.mp4", "x"),
    ]
    path = write_manifest(rows, tmp_path / "m.csv")
    read_manifest(path)  # structure alone is fine
    with pytest.raises(ManifestError) as info:
        read_manifest(path, check_media=True)
    messages = [i.message for i in info.value.issues]
    assert [i.line for i in info.value.issues] == [2, 3, 4]
    assert "missing file missing.mp4" in messages[0]
    assert "broken.wav" in messages[1] and "broken.mp4" in messages[2]


def test_missing_columns_and_missing_file_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("id,path\nx,y\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="missing column"):
        read_manifest(path)
    with pytest.raises(ManifestError, match="file not found"):
        read_manifest(tmp_path / "nope.csv")


def test_write_is_atomic_when_the_disk_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_manifest(_rows(), tmp_path / "m.csv")
    before = path.read_bytes()

    def full_disk(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", full_disk)
    with pytest.raises(OSError):
        write_manifest(_rows()[:1], path)
    assert path.read_bytes() == before  # the old manifest is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["m.csv"]  # no temp file left behind


def test_from_folders(tmp_path: Path) -> None:
    for rel in ("cut_onion/a.mp4", "cut_onion/a.wav", "stir_pan/b.MOV", "stir_pan/notes.txt", ".hidden/x.wav"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    manifest = manifest_from_folders(tmp_path)
    assert isinstance(manifest, Manifest)
    got = {(r.id, r.modality, r.label) for r in manifest.rows}
    assert got == {
        ("cut_onion/a.mp4", "video", "cut_onion"),
        ("cut_onion/a.wav", "speech", "cut_onion"),
        ("stir_pan/b.MOV", "video", "stir_pan"),
    }
    with pytest.raises(ManifestError, match="no video or audio"):
        manifest_from_folders(tmp_path / "stir_pan")
