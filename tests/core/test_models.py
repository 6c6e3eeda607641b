"""Model parts on tiny configs: shapes, the I3D settings and Kinetics key mapping, padding-free speech
encoding, pairwise scoring equal to aligned scoring, and the losses."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from fmn_core.errors import FmnError
from fmn_core.losses import MatchBCELoss, TripletRankingLoss, reverse_gradient
from fmn_core.models import (
    I3D_COMPACT,
    I3D_FULL,
    CheckpointError,
    FMNConfig,
    FusionHead,
    I3DConfig,
    SpeechEncoderConfig,
    create_fmn,
    create_i3d,
    create_speech_encoder,
    load_kinetics_i3d,
)

TINY_VIDEO = I3DConfig(stem_dim_out=8, input_frames=4, input_size=32, num_classes=5)
TINY_SPEECH = SpeechEncoderConfig(n_features=12, hidden=8, layers=2)
TINY = FMNConfig(video=TINY_VIDEO, speech=TINY_SPEECH, embed_dim=16, fusion_hidden=16, memory_capacity=4)


@pytest.fixture(autouse=True)
def _seeded_one_thread() -> Iterator[None]:
    """Tiny tensors: a second thread only adds synchronisation (and stalls on a busy machine)."""
    torch.manual_seed(0)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _clips(n: int, cfg: I3DConfig = TINY_VIDEO) -> torch.Tensor:
    return torch.randn(n, 3, cfg.input_frames, cfg.input_size, cfg.input_size)


def _hub_i3d(cfg: I3DConfig) -> torch.nn.Module:
    """pytorchvideo's own i3d_r50 builder (no download: pretrained=False) at ``cfg``'s size."""
    from pytorchvideo.models.hub.resnet import i3d_r50  # after fmn_core: its import quiets fvcore's warning

    return i3d_r50(
        pretrained=False,
        stem_dim_out=cfg.stem_dim_out,
        model_num_class=cfg.num_classes,
        dropout_rate=cfg.dropout,
        head_pool_kernel_size=cfg.head_pool_kernel,
    )


# -- video ------------------------------------------------------------------------------------


def test_i3d_shapes_and_features_precede_the_projection() -> None:
    enc = create_i3d(TINY_VIDEO).eval()
    x = _clips(2)
    feats, logits = enc.features(x), enc(x)
    assert enc.feature_dim == 256 and feats.shape == (2, 256) and logits.shape == (2, 5)
    assert (feats >= 0).all()  # pooled after a ReLU
    assert torch.allclose(enc.head.proj(feats), logits, atol=1e-5)
    with pytest.raises(ValueError, match="expected clips"):
        enc(torch.randn(1, 3, 8, 32, 32))


def test_i3d_is_built_exactly_as_the_hub_builder() -> None:
    assert repr(create_i3d(TINY_VIDEO).net) == repr(_hub_i3d(TINY_VIDEO))
    assert I3D_FULL.head_pool_kernel == (4, 7, 7)  # the hub's default for 8 x 224²
    assert I3D_FULL.feature_dim == 2048 and I3D_COMPACT.feature_dim == 512


def test_compact_i3d_size() -> None:
    enc = create_i3d(I3D_COMPACT)
    n_params = sum(p.numel() for p in enc.parameters())
    assert 1.6e6 < n_params < 1.8e6
    assert enc.feature_dim == 512


def _kinetics_style(cfg: I3DConfig) -> dict[str, object]:
    """A checkpoint as pytorchvideo writes it: ``model_state`` wrapper, DataParallel prefix."""
    state = _hub_i3d(cfg).state_dict()
    return {"model_state": {f"module.{k}": v + 0.5 for k, v in state.items()}, "epoch": 196}


def test_kinetics_keys_map_and_the_projection_is_skipped() -> None:
    checkpoint = _kinetics_style(dataclasses.replace(TINY_VIDEO, num_classes=400))
    enc = create_i3d(TINY_VIDEO)
    report = load_kinetics_i3d(enc, checkpoint)
    assert report.skipped == ["blocks.6.proj.bias", "blocks.6.proj.weight"]
    source = checkpoint["model_state"]
    assert torch.equal(enc.net.blocks[0].conv.weight, source["module.blocks.0.conv.weight"])
    assert enc.num_classes == 5  # kept its own head
    assert "blocks.0.conv.weight" in report.loaded and len(report.loaded) == len(source) - 2


def test_kinetics_same_classes_loads_everything() -> None:
    checkpoint = _kinetics_style(TINY_VIDEO)
    enc = create_i3d(TINY_VIDEO)
    report = load_kinetics_i3d(enc, {k.removeprefix("module."): v for k, v in checkpoint["model_state"].items()})
    assert report.skipped == []
    assert torch.equal(enc.net.blocks[6].proj.weight, checkpoint["model_state"]["module.blocks.6.proj.weight"])


def test_kinetics_mismatch_names_the_keys() -> None:
    checkpoint = _kinetics_style(dataclasses.replace(TINY_VIDEO, stem_dim_out=16))
    with pytest.raises(CheckpointError, match=r"shape mismatch: blocks\.0\.conv\.weight"):
        load_kinetics_i3d(create_i3d(TINY_VIDEO), checkpoint)
    state = dict(_kinetics_style(TINY_VIDEO)["model_state"])
    state["module.extra.weight"] = torch.zeros(1)
    del state["module.blocks.1.res_blocks.0.branch1_conv.weight"]
    with pytest.raises(CheckpointError, match="missing: blocks.1.res_blocks.0.branch1_conv.weight.*unexpected: extra"):
        load_kinetics_i3d(create_i3d(TINY_VIDEO), state)


# -- speech -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("pooling", "dim"), [("mean", 16), ("last", 16), ("mean+last", 32)])
def test_speech_encoder_shapes(pooling: str, dim: int) -> None:
    enc = create_speech_encoder(dataclasses.replace(TINY_SPEECH, pooling=pooling))
    out = enc(torch.randn(3, 9, 12), torch.tensor([9, 4, 1]))
    assert out.shape == (3, dim) and enc.output_dim == dim


@pytest.mark.parametrize("input_norm", ["affine", "layernorm", "none"])
def test_speech_encoder_ignores_padding(input_norm: str) -> None:
    enc = create_speech_encoder(dataclasses.replace(TINY_SPEECH, input_norm=input_norm)).eval()
    short = torch.randn(1, 5, 12)
    alone = enc(short, torch.tensor([5]))
    batch = torch.randn(3, 11, 12) * 10  # garbage everywhere, including after the short sequence
    batch[1, :5] = short[0]
    together = enc(batch, torch.tensor([11, 5, 8]))
    assert torch.allclose(alone[0], together[1], atol=1e-5)


def test_speech_encoder_refuses_bad_lengths() -> None:
    enc = create_speech_encoder(TINY_SPEECH)
    with pytest.raises(ValueError, match="lengths"):
        enc(torch.randn(2, 5, 12), torch.tensor([5, 0]))


# -- fusion and the whole network -------------------------------------------------------------


def test_fusion_pairwise_equals_looping_the_aligned_version() -> None:
    head = FusionHead(embed_dim=6, hidden=10, dropout=0.5).eval()
    v, a = torch.randn(5, 6), torch.randn(3, 6)
    pairwise = head.pairwise(v, a, chunk=2)
    looped = torch.stack([head(v[n].expand(3, 6), a) for n in range(5)])
    assert pairwise.shape == (5, 3) and torch.allclose(pairwise, looped, atol=1e-6)
    softmax = torch.softmax(head.out(torch.relu(head.hidden(torch.cat([v[:3], a], 1)))), dim=1)[:, 1]
    assert torch.allclose(head(v[:3], a), softmax, atol=1e-6)  # the 2-way softmax's match probability


def _with_memory(model: torch.nn.Module, v: torch.Tensor, a: torch.Tensor) -> None:
    model.confirm_match(v[:2], a[:2])


def test_fmn_encodes_into_a_normalised_common_space() -> None:
    model = create_fmn(TINY).eval()
    v = model.encode_video(_clips(2))
    a = model.encode_speech(torch.randn(2, 7, 12), torch.tensor([7, 3]))
    assert v.shape == a.shape == (2, 16)
    assert torch.allclose(v.norm(dim=1), torch.ones(2)) and torch.allclose(a.norm(dim=1), torch.ones(2))
    assert model.encode_video(_clips(1), normalize=False).norm() != 1


@pytest.mark.parametrize("combination", ["learned", "product", "ratio", "none"])
def test_score_pairwise_equals_aligned_scores(combination: str) -> None:
    model = create_fmn(dataclasses.replace(TINY, combination=combination), with_video_encoder=False).eval()
    v, a = torch.rand(4, 256), torch.randn(3, 32)
    _with_memory(model, v, a)
    grid = model.score_pairwise(v, a, chunk=3)
    assert grid.s.shape == grid.s1.shape == grid.memory.shape == grid.slot.shape == (4, 3)
    for n in range(4):
        row = model.score(v[n].expand(3, -1), a)
        for name in ("s", "s1", "memory"):
            assert torch.allclose(getattr(grid, name)[n], getattr(row, name), atol=1e-6), name
        assert torch.equal(grid.slot[n], row.slot)


def test_score_combinations_follow_their_formulas() -> None:
    v, a = torch.rand(3, 256), torch.randn(3, 32)
    outs = {}
    for combination in ("learned", "product", "ratio", "none"):
        torch.manual_seed(1)
        model = create_fmn(dataclasses.replace(TINY, combination=combination), with_video_encoder=False).eval()
        _with_memory(model, v, a)
        outs[combination] = model.score(v, a)
    s1, mem = outs["none"].s1, outs["none"].memory
    assert torch.allclose(outs["none"].s, s1) and torch.allclose(outs["learned"].s, s1)  # learned starts as S1
    assert torch.allclose(outs["product"].s, s1 * mem)
    assert torch.allclose(outs["ratio"].s, (s1 / mem.clamp(min=1e-3)).clamp(max=1))
    assert outs["product"].logit is None and outs["learned"].logit is not None
    assert (mem[:2] > 0.99).all()  # the two confirmed pairs are remembered


def test_fmn_without_video_encoder_says_so() -> None:
    model = create_fmn(TINY, with_video_encoder=False)
    with pytest.raises(FmnError, match="without its video encoder"):
        model.video_features(_clips(1))


# -- losses -----------------------------------------------------------------------------------


def _triplet_by_loops(v: torch.Tensor, a: torch.Tensor, y: torch.Tensor, margin: float, hard: bool) -> torch.Tensor:
    sim = F.normalize(a, dim=1) @ F.normalize(v, dim=1).T
    costs = []
    for s in (sim, sim.T):
        for i in range(len(y)):
            negs = [s[i, n] for n in range(len(y)) if y[n] != y[i]]
            for p in (p for p in range(len(y)) if y[p] == y[i]):
                chosen = [max(negs)] if hard and negs else negs
                costs += [torch.relu(margin + n - s[i, p]) for n in chosen]
    return torch.stack(costs).mean()


@pytest.mark.parametrize("hard", [False, True])
def test_triplet_loss_matches_its_definition(hard: bool) -> None:
    v, a = torch.randn(6, 5, requires_grad=True), torch.randn(6, 5)
    y = torch.tensor([0, 0, 1, 1, 2, 0])
    loss = TripletRankingLoss(margin=0.2, hard_negatives=hard)(v, a, y)
    assert torch.allclose(loss, _triplet_by_loops(v, a, y, 0.2, hard), atol=1e-6)
    loss.backward()
    assert v.grad is not None and v.grad.abs().sum() > 0


def test_triplet_loss_is_zero_when_classes_are_apart() -> None:
    v = torch.eye(3)
    assert TripletRankingLoss(margin=0.2)(v, v.clone(), torch.arange(3)) == 0
    assert TripletRankingLoss()(v, v, torch.zeros(3, dtype=torch.int64)) == 0  # no negatives: no triples


def test_match_bce_is_stable_on_logits_and_probabilities() -> None:
    logit, y = torch.tensor([-200.0, 0.0, 50.0]), torch.tensor([1, 0, 1])
    loss = MatchBCELoss()(torch.sigmoid(logit), y, logit)
    assert torch.isfinite(loss) and torch.allclose(loss, F.binary_cross_entropy_with_logits(logit, y.float()))
    assert torch.isfinite(MatchBCELoss()(torch.tensor([0.0, 1.0]), torch.tensor([1, 0])))


def test_gradient_reversal_passes_values_and_flips_the_gradient() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    y = reverse_gradient(x, 0.25)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    assert torch.equal(x.grad, -0.25 * torch.arange(3.0).expand(4, 3))
