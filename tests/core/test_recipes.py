"""Long recipe videos: one kitchen, several steps in a row, every step a segment row of the corpus."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fmn_core.corpus.generate import CorpusSpec, generate_corpus
from fmn_core.corpus.recipes import DISHES, RecipeSettings, plan_recipe, write_recipe
from fmn_core.corpus.video import RenderSettings
from fmn_core.corpus.video.clip import _plan
from fmn_core.manifest import read_manifest
from fmn_core.media.video_io import probe_video

SMALL = RecipeSettings(
    steps=(2, 3), idle_seconds=(0.4, 0.8), render=RenderSettings(width=96, height=72, min_seconds=1.0, max_seconds=1.4)
)


def test_a_recipe_is_its_dishs_steps_in_order_with_segments_inside_the_video(tmp_path: Path) -> None:
    info = write_recipe(5, tmp_path / "r.mp4", SMALL)
    steps = [s.class_key for s in info.steps]
    pool = DISHES[info.dish]
    assert 2 <= len(steps) <= 3 and [pool.index(s) for s in steps] == sorted(pool.index(s) for s in steps)
    assert all(a.end <= b.start for a, b in zip(info.steps, info.steps[1:], strict=False))  # idle between steps
    assert info.steps[0].start > 0 and info.steps[-1].end == pytest.approx(info.duration_s)
    assert probe_video(tmp_path / "r.mp4").duration_s == pytest.approx(info.duration_s)


def test_recipes_are_deterministic_and_stay_among_the_corpus_classes(tmp_path: Path) -> None:
    a, b = write_recipe(9, tmp_path / "a.mp4", SMALL), write_recipe(9, tmp_path / "b.mp4", SMALL)
    assert a == b
    assert (
        hashlib.sha256((tmp_path / "a.mp4").read_bytes()).digest()
        == hashlib.sha256((tmp_path / "b.mp4").read_bytes()).digest()
    )
    _, plan = plan_recipe(9, SMALL, classes=("stir_pan", "pour_oil"))
    assert {c for c, _, _ in plan} <= {"stir_pan", "pour_oil"}
    with pytest.raises(ValueError, match="no recipe has a step"):
        plan_recipe(9, SMALL, classes=("take_out_cutlery",))


def test_the_steps_of_a_recipe_share_one_kitchen() -> None:
    render = SMALL.render
    first, second = (
        _plan("cut_onion", 1, render, kitchen=42).info.nuisance,
        _plan("pour_oil", 2, render, kitchen=42).info.nuisance,
    )
    other = _plan("cut_onion", 1, render, kitchen=43).info.nuisance
    same = ("counter", "counter_color", "wall_color", "zoom", "rotation", "gain", "light_angle", "skin", "sleeve")
    assert all(first[k] == second[k] for k in same)
    assert any(first[k] != other[k] for k in same)
    alone = _plan("cut_onion", 1, render).info.nuisance  # without a kitchen: a clip's own, as always
    assert alone == _plan("cut_onion", 1, render, kitchen=None).info.nuisance


def test_corpus_recipes_are_segment_rows_split_by_recipe(tmp_path: Path) -> None:
    spec = CorpusSpec(
        classes=("cut_onion", "pour_oil", "stir_pan"), videos_per_class=1, utterances_per_class=1, langs=("en",),
        render=RenderSettings(width=96, height=72, min_seconds=1.0, max_seconds=1.4), recipes=3, recipe=SMALL,
    )  # fmt: skip
    manifest = generate_corpus(tmp_path, spec, jobs=2)
    segments = [r for r in manifest.rows if r.extra.get("recipe")]
    assert segments and all(r.segment is not None and r.modality == "video" for r in segments)
    by_recipe: dict[str, set[str]] = {}
    for r in segments:
        by_recipe.setdefault(r.extra["recipe"], set()).add(r.split)
    assert len(by_recipe) == 3 and all(len(splits) == 1 for splits in by_recipe.values())
    read_manifest(tmp_path / "manifest.csv", check_media=True)  # every segment inside its file
