"""Shared fixtures: one tiny generated corpus per test session, used as a library and as data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fmn_core.corpus.generate import CorpusSpec, generate_corpus
from fmn_core.corpus.recipes import RecipeSettings
from fmn_core.corpus.video import RenderSettings
from fmn_core.manifest import read_manifest, write_manifest
from fmn_core.splits import SplitSpec

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TINY = CorpusSpec(
    classes=("cut_onion", "stir_pan", "pour_milk"),
    videos_per_class=3,
    utterances_per_class=4,
    seed=11,
    render=RenderSettings(width=96, height=72, min_seconds=1.0, max_seconds=1.6),
    split=SplitSpec(holdout_voices=True),
)


RECIPE_RENDER = RenderSettings(width=96, height=72, min_seconds=1.0, max_seconds=1.4)
RECIPES = CorpusSpec(
    classes=("cut_onion", "pour_oil", "stir_pan"), videos_per_class=0, utterances_per_class=2, langs=("en",),
    render=RECIPE_RENDER, recipes=2,
    recipe=RecipeSettings(steps=(2, 3), idle_seconds=(1.0, 2.0), render=RECIPE_RENDER),
)  # fmt: skip


@pytest.fixture(scope="session")
def recipe_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two short recipe videos (steps of three classes, each a segment row) and their spoken phrases, all test."""
    out = tmp_path_factory.mktemp("recipes")
    manifest = generate_corpus(out, RECIPES, jobs=2)
    for r in manifest.rows:
        r.split = "test"
    write_manifest(manifest, out / "manifest.csv")
    read_manifest(out / "manifest.csv")  # valid as written
    return out


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated corpus of 3 classes, 3 videos and 4 utterances per class and language."""
    out = tmp_path_factory.mktemp("tiny_corpus")
    generate_corpus(out, TINY, jobs=2)
    return out
