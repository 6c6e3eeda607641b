"""Shared fixtures: one tiny generated corpus per test session, used as a library and as data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fmn_core.corpus.generate import CorpusSpec, generate_corpus
from fmn_core.corpus.video import RenderSettings
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


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated corpus of 3 classes, 3 videos and 4 utterances per class and language."""
    out = tmp_path_factory.mktemp("tiny_corpus")
    generate_corpus(out, TINY, jobs=2)
    return out
