"""Ranking scores of the shipped combination and the ablations, and the model wrapper's round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fmn_core.errors import FmnError
from fmn_core.eval.scoring import pair_scores
from fmn_core.inference import FMNModel, resolve_device, resolve_model_path
from fmn_core.models import FMNConfig, create_fmn
from fmn_core.models.i3d import I3DConfig
from fmn_core.models.speech import SpeechEncoderConfig

CFG = FMNConfig(
    video=I3DConfig(stem_dim_out=8, input_frames=8, input_size=64, num_classes=3),
    speech=SpeechEncoderConfig(hidden=16, frame_stack=3),
    embed_dim=16,
    fusion_hidden=16,
    memory_capacity=4,
)


def _model(combination: str = "learned") -> FMNModel:
    torch.manual_seed(0)
    cfg = FMNConfig(**{**CFG.__dict__, "combination": combination})
    net = create_fmn(cfg).eval()
    if combination == "learned":
        with torch.no_grad():  # give the memory a say, as training would
            net.combiner.linear.weight.copy_(torch.tensor([[1.5, 2.0]]))
    v, a = torch.randn(4, cfg.video.feature_dim), torch.randn(4, cfg.speech.output_dim)
    net.confirm_match(v[:2], a[:2])  # two remembered pairs, so Max is not zero
    return FMNModel(net, cfg)


def test_scores_of_the_networks_own_combination_order_like_s() -> None:
    model = _model()
    v, a = torch.randn(5, CFG.video.feature_dim), torch.randn(6, CFG.speech.output_dim)
    scores = pair_scores(model.net, v, a)
    s = model.net.score_pairwise(v, a).s.detach().double().numpy()
    assert scores.shape == (5, 6) and scores.dtype == np.float64
    # the logit of S is monotonic in S: the same order wherever S has not saturated
    assert np.array_equal(np.argsort(-scores, axis=1, kind="stable"), np.argsort(-s, axis=1, kind="stable"))


@pytest.mark.parametrize("combination", ["product", "ratio", "none"])
def test_ablations_score_as_a_network_built_with_that_combination(combination: str) -> None:
    learned = _model("learned")
    other = _model(combination)
    other.net.load_state_dict({k: v for k, v in learned.net.state_dict().items() if not k.startswith("combiner.")})
    v, a = torch.randn(3, CFG.video.feature_dim), torch.randn(4, CFG.speech.output_dim)
    out = other.net.score_pairwise(v, a)
    expected = (out.logit if out.logit is not None else out.s).detach().double().numpy()
    np.testing.assert_allclose(pair_scores(learned.net, v, a, combination), expected, rtol=1e-5, atol=1e-6)


def test_an_ablation_to_learned_needs_its_weights() -> None:
    model = _model("none")
    with pytest.raises(ValueError, match="weights"):
        pair_scores(model.net, torch.randn(2, CFG.video.feature_dim), torch.randn(2, CFG.speech.output_dim), "learned")


def test_model_folder_round_trip_keeps_scores_and_front_ends(tmp_path: Path) -> None:
    model = _model()
    model.class_names = ["a", "b", "c"]
    model.save(tmp_path / "m")
    loaded = FMNModel.load(tmp_path / "m")
    v, a = torch.randn(3, CFG.video.feature_dim), torch.randn(4, CFG.speech.output_dim)
    np.testing.assert_array_equal(loaded.ranking_scores(v, a), model.ranking_scores(v, a))
    assert loaded.class_names == ["a", "b", "c"]
    assert (loaded.video_frontend.frames, loaded.video_frontend.size) == (8, 64)  # the I3D's input
    assert loaded.name == "m"


def test_missing_model_and_missing_gpu_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FmnError, match="no model"):
        resolve_model_path(tmp_path / "nothing")
    if not torch.cuda.is_available():
        with pytest.raises(FmnError, match="CUDA"):
            resolve_device("cuda")
    assert resolve_device("auto").type in ("cpu", "cuda")


@pytest.mark.parametrize("combination", ["learned", "product", "none"])
def test_one_scoring_pass_gives_the_scores_and_the_ranking(combination: str) -> None:
    model = _model(combination)
    v, a = torch.randn(5, CFG.video.feature_dim), torch.randn(4, CFG.speech.output_dim)
    out, ranking = model.score_and_rank(v, a)
    np.testing.assert_array_equal(ranking, model.ranking_scores(v, a))
    torch.testing.assert_close(out.s, model.score_pairwise(v, a).s)
