"""Calibrated confidence and "no good match": the fit, the threshold, the file beside the model, search output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fmn_core.cli import main
from fmn_core.eval.calibration import CALIBRATION_NAME, DirectionFit
from fmn_core.eval.calibration_fit import (
    PairScores,
    calibrate,
    choose_threshold,
    fit_direction,
    fit_logistic,
    flag_rates,
)
from fmn_core.index.retriever import Retriever
from fmn_core.inference import FMNModel
from fmn_core.models import FMNConfig, create_fmn
from fmn_core.models.speech import SpeechEncoderConfig

SMALL = FMNConfig(speech=SpeechEncoderConfig(hidden=32, frame_stack=3), embed_dim=32, fusion_hidden=32)


def test_the_logistic_fit_recovers_known_weights() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 1)) * 2
    y = rng.random(20000) < 1 / (1 + np.exp(-(1.5 * x[:, 0] - 0.5)))
    w = fit_logistic(x, y)
    assert w[0] == pytest.approx(1.5, abs=0.1) and w[1] == pytest.approx(-0.5, abs=0.1)


def test_separable_classes_still_give_finite_weights() -> None:
    x = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    w = fit_logistic(x, np.array([0, 0, 1, 1]))
    assert np.isfinite(w).all() and w[0] > 0


def test_the_threshold_trades_catches_against_false_alarms() -> None:
    threshold, false_alarm, catch = choose_threshold(np.array([0.8, 0.9, 0.95]), np.array([0.1, 0.2, 0.85]))
    assert 0.2 < threshold <= 0.8 and false_alarm == 0.0 and catch == pytest.approx(2 / 3)


def test_the_threshold_never_hides_more_right_answers_than_allowed() -> None:
    # Unconstrained, the best line (0.95) catches every unanswerable query and hides 10 % of the
    # right answers; capped at 2 %, the line drops below every right answer and catches half.
    answerable = np.concatenate([np.full(90, 0.95), np.full(10, 0.6)])
    unanswerable = np.concatenate([np.full(50, 0.5), np.full(50, 0.9)])
    assert choose_threshold(answerable, unanswerable, max_false_alarm=1.0) == (0.95, 0.1, 1.0)
    assert choose_threshold(answerable, unanswerable) == (0.6, 0.0, 0.5)


def test_a_fit_on_pairs_is_increasing_and_flags_queries_without_an_answer() -> None:
    # Three classes; a right pair scores about 3, a wrong one about -3: a sharp, easy model.
    rng = np.random.default_rng(1)
    videos, speech = np.repeat(["a", "b", "c"], 4), np.repeat(["a", "b", "c"], 6)
    score = np.where(videos[:, None] == speech[None, :], 3.0, -3.0) + rng.normal(0, 0.5, (12, 18))
    pairs = PairScores(score, videos, speech)
    for direction in ("speech->video", "video->speech"):
        fit = fit_direction(pairs, direction)
        assert fit.weight > 0 and fit.confidence(3.0) > 0.9 > 0.1 > fit.confidence(-3.0)
        assert fit.false_alarm_rate == 0.0 and fit.catch_rate == 1.0
        rates = flag_rates(fit, pairs, direction)
        assert rates["top_hit_accuracy"] == 1.0 and rates["top_hit_confidence"] > 0.9


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("calibrated") / "model"
    FMNModel(create_fmn(SMALL).eval(), SMALL).save(folder)
    return folder


def test_calibrate_writes_a_fit_the_model_loads_and_search_reports(
    model_dir: Path, tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["calibrate", "--model", str(model_dir), "--manifest", str(tiny_corpus / "manifest.csv"),
                 "--check", "test", "--json", str(tmp_path / "rates.json")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "speech->video" in out and "false alarms" in out
    assert json.loads((tmp_path / "rates.json").read_text())["rates"].keys() == {"val", "test"}
    saved = json.loads((model_dir / CALIBRATION_NAME).read_text())
    assert saved["split"] == "val" and set(saved["directions"]) == {"speech->video", "video->speech"}

    library = tmp_path / "lib"
    shutil.copytree(tiny_corpus, library)
    retriever = Retriever.open(library, model_dir, jobs=1)
    try:
        assert retriever.model.calibration is not None
        result = retriever.search(retriever.query_from_item(retriever.items("speech")[0].id))
        sure = [h.confidence for h in result.hits]
        assert all(c is not None and 0 <= c <= 1 for c in sure)
        assert sure == sorted(sure, reverse=True)  # the map is increasing in the ranking score
        assert result.threshold == saved["directions"]["speech->video"]["threshold"]
    finally:
        retriever.close()

    # A threshold no hit reaches: search says so, in text and JSON.
    saved["directions"]["speech->video"]["threshold"] = 1.0
    (model_dir / CALIBRATION_NAME).write_text(json.dumps(saved))
    speech = next((library / "speech").rglob("*.wav"))
    args = ["search", "--index", str(library), "--model", str(model_dir), "--audio", str(speech), "--no-transcript"]
    assert main(args) == 0
    assert "no good match in this library" in capsys.readouterr().out
    assert main([*args, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["no_good_match"] is True and all(0 <= h["confidence"] <= 1 for h in answer["hits"])


def test_a_calibration_of_other_weights_is_ignored(
    model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    fit = DirectionFit(1.0, 0.0, 0.5, 0.1, 0.9, 10)
    stale = {"checkpoint_hash": "0" * 32, "split": "val",
             "directions": {d: fit.__dict__ for d in ("speech->video", "video->speech")}}  # fmt: skip
    (other / CALIBRATION_NAME).write_text(json.dumps(stale))
    assert FMNModel.load(other).calibration is None
    assert "other weights" in caplog.text
    (other / CALIBRATION_NAME).write_text("{not json")
    assert FMNModel.load(other).calibration is None
    assert "unreadable calibration" in caplog.text


def test_a_model_built_in_memory_cannot_be_calibrated(tiny_corpus: Path) -> None:
    from fmn_core.errors import FmnError

    with pytest.raises(FmnError, match="saved model"):
        calibrate(FMNModel(create_fmn(SMALL).eval(), SMALL), tiny_corpus / "manifest.csv")
