"""The memory after stage 2: fill the banks by replaying training pairs, and let validation choose their settings.

The banks are filled with the finished encoders (features drift while the encoder trains, so slots
written early would describe an encoder that no longer exists) through the §2.6 update rule, and
the validation split chooses T1, T2, the slot averaging, the readout and how S1 and the memory make S.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from fmn_core.eval.scoring import pair_scores
from fmn_core.models.fmn import COMBINATIONS, FeatureMemoryNetwork, ScoreCombiner
from fmn_core.training.fmn_batches import SpeechSet, VideoSet, _pick
from fmn_core.training.fmn_stage_config import FMNStageConfig, Progress
from fmn_core.training.fmn_validation import _selection_value


@torch.no_grad()
def fill_memory(
    model: FeatureMemoryNetwork,
    video: VideoSet,
    speech_raw_feats: torch.Tensor,
    speech_labels: torch.Tensor,
    n_pairs: int,
    positive_fraction: float,
    seed: int,
    by_label: bool = False,
) -> list[str]:
    """Replay random training pairs through the §2.6 update rule; returns the update kinds, in order.

    With ``by_label`` every pair is a within-class pair, remembered whatever S1 says. Otherwise
    pairs are a mix of within-class (true matches) and cross-class pairs, as a stream of
    unlabelled data would be, and the rule itself decides (S1 > T1) which ones are remembered.
    """
    generator = torch.Generator().manual_seed(seed)
    model.memory.clear()
    kinds: list[str] = []
    classes = sorted(set(video.labels.tolist()) & set(speech_labels.tolist()))
    by_video = {c: torch.nonzero(video.labels == c).flatten() for c in classes}
    by_speech = {c: torch.nonzero(speech_labels == c).flatten() for c in classes}
    device = next(model.parameters()).device
    for _ in range(n_pairs):
        c = classes[int(torch.randint(len(classes), (1,), generator=generator))]
        vi = int(_pick(by_video[c], 1, generator))
        if by_label or float(torch.rand(1, generator=generator)) < positive_fraction:
            ai = int(_pick(by_speech[c], 1, generator))
        else:
            ai = int(torch.randint(len(speech_labels), (1,), generator=generator))
        v, a = video.feats[vi : vi + 1].to(device), speech_raw_feats[ai : ai + 1].to(device)
        # A training pair known to match is remembered as a match: one pair among the slot's others.
        records = model.memory.update(v, a, torch.ones(1, device=device)) if by_label else model.update_memory(v, a)
        kinds.extend(r.kind for r in records)
    return kinds


def fit_combiner(model: FeatureMemoryNetwork, v_raw: torch.Tensor, a_raw: torch.Tensor, match: torch.Tensor) -> None:
    """Fit the learned combination S = sigmoid(w1 logit S1 + w2 Max + b) to pairs by logistic regression.

    Args:
        model: an FMN whose combiner is 'learned' (its weights are replaced).
        v_raw, a_raw: ``(N, D)`` raw features of the videos and speech clips of a held-out split.
        match: ``(Nv, Na)`` bool, the pairs that match (same label).
    """
    device = next(model.parameters()).device
    with torch.no_grad():
        s1_logit = model.fusion.pairwise_logit(
            model.project_video(v_raw.to(device)), model.project_speech(a_raw.to(device))
        )
        memory, _ = model.memory.max_score_pairwise(v_raw.to(device), a_raw.to(device))
    x = torch.stack([s1_logit.flatten(), memory.flatten()], dim=1).double().cpu()
    y = match.flatten().double()
    weight = torch.where(y > 0, (len(y) - y.sum()) / y.sum().clamp(min=1), torch.ones_like(y))  # balance classes
    w = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64, requires_grad=True)  # start at S = S1
    optimizer = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logit = x @ w[:2] + w[2]
        loss = (F.binary_cross_entropy_with_logits(logit, y, reduction="none") * weight).mean() + 1e-4 * w[:2].pow(
            2
        ).sum()
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]  # torch leaves LBFGS.step unannotated
    with torch.no_grad():
        model.combiner.linear.weight.copy_(w[:2].float()[None])
        model.combiner.linear.bias.copy_(w[2:].float())


@dataclass(frozen=True)
class MemoryChoice:
    """The memory settings validation chose, and what each candidate scored."""

    combination: str
    t1: float
    t2: float
    value: float  # the validation figure of the choice
    table: list[dict[str, float | str]]  # every candidate: its settings, value and slots used
    averaging: str = "ema"
    readout: str = "max"
    temperature: float = 20.0


def choose_memory(
    model: FeatureMemoryNetwork,
    train: tuple[VideoSet, torch.Tensor, torch.Tensor],
    val: tuple[VideoSet, torch.Tensor, SpeechSet],
    cfg: FMNStageConfig,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[MemoryChoice, dict[str, torch.Tensor], torch.Tensor]:
    """Try every memory setting of the grids and every combination on validation; return the best.

    The banks are filled once per (T1, T2, averaging); each readout and combination is then
    judged on the same banks. With a label-driven replay T1 plays no part in the filling, so
    validation cannot judge it: T1 is then the grid's highest (a wrong memory costs more than a
    missed one when the banks learn at use).

    Args:
        model: the trained FMN with a 'learned' combiner.
        train: (training videos, raw training speech features, their labels): the replayed pairs.
        val: (validation videos, raw validation speech features, the validation speech set): the judge.
        cfg: grids and replay size.
        seed: the replay's randomness.
        progress: progress(done, total, message).

    Returns:
        The choice, the memory buffers to keep and the learned combiner's weights ``(3,)`` for it.
    """
    video_train, a_train, l_train = train
    video_val, a_val, speech_val = val
    match = video_val.labels[:, None] == speech_val.labels[None, :]
    t1s = (max(cfg.t1_grid),) if cfg.fill_by_label else cfg.t1_grid
    fills = [(t1, t2, avg) for t1 in t1s for t2 in cfg.t2_grid for avg in cfg.averaging_grid]
    readouts = [("max", model.memory.temperature)] + [("soft", t) for t in cfg.soft_temperatures]
    search = _Search()
    learned = model.combiner
    memory = model.memory
    for i, (t1, t2, averaging) in enumerate(fills):
        memory.t1, memory.t2, memory.averaging = t1, t2, averaging
        fill_memory(model, video_train, a_train, l_train, cfg.fill_pairs, cfg.fill_positive_fraction, seed,
                    by_label=cfg.fill_by_label)  # fmt: skip
        for readout, temperature in readouts:
            memory.readout, memory.temperature = readout, temperature
            fit_combiner(model, video_val.feats, a_val, match)
            _judge_combinations(model, learned, val, cfg, _BankSetting(t1, t2, averaging, readout, temperature), search)
        if progress:
            progress(i + 1, len(fills), f"memory T1={t1} T2={t2} {averaging}")
    assert search.best is not None
    _, choice, state, params = search.best
    return dataclasses.replace(choice, table=search.table), state, params


@dataclass(frozen=True)
class _BankSetting:
    """One candidate way of filling the banks (T1, T2, slot averaging) and of reading them."""

    t1: float
    t2: float
    averaging: str
    readout: str
    temperature: float


@dataclass
class _Search:
    """Every candidate judged so far, and the best: its figure, choice, banks and learned combiner's weights."""

    table: list[dict[str, float | str]] = field(default_factory=list)
    best: tuple[float, MemoryChoice, dict[str, torch.Tensor], torch.Tensor] | None = None


def _judge_combinations(
    model: FeatureMemoryNetwork,
    learned: ScoreCombiner,
    val: tuple[VideoSet, torch.Tensor, SpeechSet],
    cfg: FMNStageConfig,
    setting: _BankSetting,
    search: _Search,
) -> None:
    """Judge every combination of S1 and the memory on the banks as ``setting`` made them; keep the best so far.

    Args:
        learned: the model's 'learned' combiner, fitted to these banks; the model has it back afterwards.
    """
    video_val, a_val, speech_val = val
    device = next(model.parameters()).device
    memory = model.memory
    for combination in COMBINATIONS:
        if combination == "none" and any(row["combination"] == "none" for row in search.table):
            continue  # S = S1 does not depend on the memory settings
        model.combiner = learned if combination == "learned" else ScoreCombiner(combination).to(device)
        value = _selection_value(pair_scores(model, video_val.feats, a_val), video_val, speech_val, cfg)
        row: dict[str, float | str] = {
            "combination": combination, "t1": setting.t1, "t2": setting.t2, "averaging": setting.averaging,
            "readout": setting.readout, "temperature": setting.temperature, "value": value,
            "slots_used": memory.video.num_used,
        }  # fmt: skip
        search.table.append(row)
        if search.best is None or value > search.best[0]:
            params = torch.cat([learned.linear.weight.detach().flatten(), learned.linear.bias.detach()]).cpu()
            choice = MemoryChoice(
                combination, setting.t1, setting.t2, value, [], setting.averaging, setting.readout, setting.temperature
            )
            search.best = (value, choice, memory.snapshot(), params)
    model.combiner = learned
