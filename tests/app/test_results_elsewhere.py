"""How sure each result is and when nothing matches; taking results out of the window (export, copy, drag)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
from fmn_core.eval.calibration import CALIBRATION_NAME, DIRECTIONS, Calibration, DirectionFit
from fmn_core.index.library import file_hash
from fmn_core.manifest import read_manifest


def _speech(library: Path) -> Path:
    manifest = read_manifest(library / "manifest.csv")
    return next(manifest.resolve(r) for r in manifest.rows if r.modality == "speech")


def _calibrated(tiny_model: Path, folder: Path, threshold: float) -> Path:
    """A copy of the tiny model with a calibration whose "no good match" line is ``threshold``."""
    shutil.copytree(tiny_model, folder)
    fit = DirectionFit(weight=2.0, bias=0.0, threshold=threshold, false_alarm_rate=0.05, catch_rate=0.8, queries=10)
    Calibration(file_hash(folder / "model.safetensors"), "val", dict.fromkeys(DIRECTIONS, fit)).write(
        folder / CALIBRATION_NAME
    )
    return folder


@pytest.mark.parametrize("threshold", [0.0, 1.01])
def test_results_say_how_sure_they_are_and_when_nothing_matches(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, library: Path, tiny_model: Path, tmp_path: Path, threshold: float
) -> None:
    model = _calibrated(tiny_model, tmp_path / "calibrated", threshold)
    with qtbot.waitSignal(window.session.opened, timeout=60000):
        assert window.open_library(library, model)
    with qtbot.waitSignal(window.session.ranked, timeout=20000):
        window.query_file(_speech(library))
    hits = window.results.hits
    assert hits and all(h.confidence is not None for h in hits)
    first = window.results.model.index(0)
    text = first.data()
    assert f"{hits[0].confidence:.0%}" in text and "match" in text  # read out by screen readers too
    assert window.results.no_match.isVisibleTo(window) == (threshold > 1)
    if threshold > 1:
        assert "weak match" in text  # below the line: said in words, not only in colour


def test_a_model_without_calibration_shows_no_confidence(qtbot, opened: MainWindow, library: Path) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(opened.session.ranked, timeout=20000):
        opened.query_file(_speech(library))
    assert all(h.confidence is None for h in opened.results.hits)
    assert not opened.results.no_match.isVisibleTo(opened)
    assert "match" not in opened.results.model.index(0).data()


def test_the_ranking_exports_as_json_csv_and_a_playlist(
    qtbot, opened: MainWindow, library: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    actions = opened.result_actions
    assert not actions.export_action.isEnabled()  # nothing ranked yet
    with qtbot.waitSignal(opened.session.ranked, timeout=20000):
        opened.query_file(_speech(library))
    assert actions.export_action.isEnabled()
    hits = opened.results.hits

    doc = json.loads(actions.export(tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert [h["id"] for h in doc["hits"]] == [h.item.id for h in hits]
    assert doc["query"]["modality"] == "speech" and "Exported 9 results" in opened.messages.text

    with actions.export(tmp_path / "results.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [h.item.id for h in hits] and rows[0]["rank"] == "1"

    lines = actions.export(tmp_path / "results.m3u").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U"
    assert [line for line in lines if not line.startswith("#")] == [str(Path(h.item.path).resolve()) for h in hits]

    assert actions.export(tmp_path / "results.txt") is None  # an unknown format: said, nothing written
    assert "export as .json, .csv or .m3u" in opened.messages.text and not (tmp_path / "results.txt").exists()


def test_a_result_is_copied_and_dragged_out_as_its_file(qtbot, opened: MainWindow, library: Path) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(opened.session.ranked, timeout=20000):
        opened.query_file(_speech(library))
    opened.results.select_row(2)
    hit = opened.results.current_hit()
    opened.result_actions.copy_path_action.trigger()
    assert QApplication.clipboard().text() == str(hit.item.path)
    model = opened.results.model
    index = model.index(2)
    assert model.flags(index) & model.flags(index).ItemIsDragEnabled
    mime = model.mimeData([index])
    assert [u.toLocalFile() for u in mime.urls()] == [str(hit.item.path)]
