"""The shipped model, through the product's search path, finds the step a phrase asks for in a long video."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmn_core.corpus.generate import CorpusSpec, generate_corpus
from fmn_core.index.retriever import Retriever
from fmn_core.inference import DEFAULT_MODEL_DIR


def _iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


@pytest.mark.slow
def test_the_shipped_model_returns_the_step_a_phrase_asks_for(tmp_path: Path) -> None:
    # A recipe and phrasings of a seed no shipped model was trained or chosen on (training used
    # 2022), at the full render size: seven steps between idle stretches, about two minutes.
    spec = CorpusSpec(videos_per_class=0, utterances_per_class=3, langs=("en",), recipes=1, seed=2031)
    manifest = generate_corpus(tmp_path / "lib", spec, jobs=2)
    steps = [r for r in manifest.rows if r.modality == "video" and r.start]
    phrases = [r for r in manifest.rows if r.modality == "speech"]
    r = Retriever.open(tmp_path / "lib", DEFAULT_MODEL_DIR, jobs=2)
    try:
        found = []
        for step in steps:
            asked = (float(step.start), float(step.end))
            for phrase in (p for p in phrases if p.label == step.label):
                top = r.search(r.query_from_file(tmp_path / "lib" / phrase.path)).hits[0]
                assert top.span is not None and top.item.id == step.path
                found.append(_iou(top.span, asked) >= 0.5)
        # R@1 at IoU 0.5 within a video measures 85 % for English (docs/benchmarks.md); here 17 of 21.
        assert len(found) == 21 and sum(found) >= 15, f"{sum(found)} of {len(found)} phrases found their step"
    finally:
        r.close()
