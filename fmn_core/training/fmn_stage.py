"""Stage 2: the speech encoder, projections, fusion head and memory banks on frozen video features.

Each step takes P classes and K speech clips and K videos of each (within-class pairs are the
positives, cross-class pairs the negatives). The loss is the triplet ranking loss in the common
space (paper §3.3) plus BCE on S1 over every pair of the batch (§3.4.2). The validation split
chooses the epoch. The banks are then filled by replaying training pairs through the §2.6 rule
with the finished encoders (features drift while the encoder trains, so slots written early
would describe an encoder that no longer exists), and the validation split chooses T1, T2 and
how S1 and the memory make S.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fmn_core.eval.metrics import metrics_by_group
from fmn_core.eval.scoring import pair_scores
from fmn_core.features.audio import collate_speech
from fmn_core.losses import TripletRankingLoss, reverse_gradient
from fmn_core.models.fmn import COMBINATIONS, FeatureMemoryNetwork, ScoreCombiner

log = logging.getLogger(__name__)
Progress = Callable[[int, int, str], None]
SELECTION_GROUPS = ("family", "speaker", "clip")  # what the validation figure can be a mean over


@dataclass(frozen=True)
class FMNStageConfig:
    """Settings of stage 2."""

    epochs: int = 60  # passes over the training speech (validation still gained up to ~50)
    classes_per_batch: int = 10  # P
    per_class: int = 4  # K speech clips and K videos of each class in a batch
    # Background videos (a label no speech has, e.g. the idle stretches of a recipe) added to each
    # batch: negatives for every spoken query there, in the triplet loss and the BCE.
    background_per_batch: int = 4
    lr: float = 4e-3  # AdamW peak learning rate (one-cycle schedule)
    weight_decay: float = 1e-4
    margin: float = 0.2  # triplet margin on cosine similarity
    hard_negatives: bool = False  # VSE++'s hardest negative instead of all negatives
    bce_weight: float = 1.0  # weight of the BCE on S1 beside the triplet loss
    # Weight of an auxiliary cross-entropy that classifies each projected speech clip by its label
    # (a training-only linear head). It gives the speech branch a direct, per-clip signal of what
    # was said, besides the relative one of the triplet; 0 turns it off.
    class_weight: float = 1.0
    # Weight of an adversarial speaker classifier on the projected speech (through gradient
    # reversal, Ganin & Lempitsky 2015), meant to push the encoder to forget who is speaking so
    # that a new voice lands where known voices saying the same words do. 0 turns it off. Run N:
    # validation 0.885 against 0.882 without it (0.876 against 0.863 with S = S1); 1.0 gave
    # 0.872 and 0.25 gave 0.875. But the head stayed at chance and a fresh probe finds as much
    # speaker identity as without it, so the gain is not speaker invariance (docs/benchmarks.md).
    speaker_adversarial: float = 0.5
    time_masks: int = 2  # SpecAugment: time spans zeroed per training utterance ...
    time_mask_fraction: float = 0.1  # ... each up to this share of its length
    feature_masks: int = 4  # feature bands zeroed per utterance (run M: 0.882 against 0.876 for 2) ...
    feature_mask_width: int = 8  # ... each up to this many features wide
    # Training speech is also seen at these speeds (needs 1.0): tempo, pitch and formants move
    # together, as between speakers. 0.8-1.25 beat 0.85-1.17 on validation (0.914 against 0.899,
    # docs/benchmarks.md): the wider range covers more of the voices training never hears.
    speed_perturb: tuple[float, ...] = (0.8, 0.87, 0.93, 1.0, 1.07, 1.15, 1.25)
    fill_pairs: int = 4000  # training pairs replayed through the bank update rule
    # The replay's pairs: True, within-class pairs only, each remembered whatever S1 says
    # (training knows which pairs match, as a user confirming a result does); False, a mix of
    # within- and cross-class pairs that the rule's own S1 > T1 test lets in (the paper's reading).
    fill_by_label: bool = True
    fill_positive_fraction: float = 0.5  # share of within-class pairs in an S1-gated replay
    t1_grid: tuple[float, ...] = (0.5, 0.7, 0.9)  # T1 values tried on validation (S1-gated replay only)
    t2_grid: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9)  # T2 values tried on validation
    averaging_grid: tuple[str, ...] = ("mean", "ema")  # slot averagings tried on validation
    soft_temperatures: tuple[float, ...] = (10.0, 20.0)  # 'soft' readouts tried beside 'max'
    selection_metric: str = "map"  # validation figure that chooses epoch and memory settings
    # What the figure is a mean over: 'family' (validation voice families, each one's figure),
    # 'speaker' (validation speakers) or 'clip' (utterances). Not utterances: validation is mostly
    # espeak-ng timbres, and one voice of another kind (slt, 24 of 200 utterances) would otherwise
    # barely count, though new kinds of voice are what the test and users bring (docs/benchmarks.md,
    # "How the shipped model was chosen"). Families rather than speakers, since whole families are
    # held out of training: a dozen timbres of one synthesizer should not outvote the other kinds.
    selection_by: str = "family"
    # Draw a class's training utterances so that each of its speakers is equally likely, rather
    # than each utterance: for data where some voices have far fewer recordings than others (the
    # built-in corpus deals its speech evenly over speakers, so there it changes nothing).
    balance_speakers: bool = False
    # Also try the average of the weights of the last N epochs (stochastic weight averaging,
    # Izmailov et al. 2018) as a candidate for the kept model: validation decides. 0: off.
    average_last: int = 15

    def __post_init__(self) -> None:
        if self.selection_by not in SELECTION_GROUPS:
            raise ValueError(f"selection_by must be one of {', '.join(SELECTION_GROUPS)}, got {self.selection_by!r}")


@dataclass
class SpeechSet:
    """MFCC sequences with integer class ids (and languages, for reports)."""

    feats: list[torch.Tensor]
    labels: torch.Tensor
    langs: list[str]
    variants: list[list[torch.Tensor]] | None = None  # per item, its speed-perturbed versions (training only)
    speakers: list[str] | None = None  # per item, who speaks it (for speaker-balanced sampling)
    families: list[str] | None = None  # per item, its voice family (for the validation figure)

    def speaker_weights(self) -> torch.Tensor:
        """``(N,)`` sampling weights: 1 / (utterances of the same speaker in the same class)."""
        if not self.speakers:
            return torch.ones(len(self.feats))
        keys = list(zip(self.labels.tolist(), self.speakers, strict=True))
        counts = Counter(keys)
        return torch.tensor([1.0 / counts[k] for k in keys])

    def pick(self, i: int, generator: torch.Generator) -> torch.Tensor:
        """Item ``i`` as training sees it: one of its versions at random, or the item itself."""
        if not self.variants:
            return self.feats[i]
        versions = self.variants[i]
        return versions[int(torch.randint(len(versions), (1,), generator=generator))]


@dataclass
class VideoSet:
    """Raw (frozen I3D) video features with integer class ids."""

    feats: torch.Tensor
    labels: torch.Tensor


def spec_augment(x: torch.Tensor, cfg: FMNStageConfig, generator: torch.Generator) -> torch.Tensor:
    """Zero random time spans and feature bands of one ``(L, F)`` sequence (Park et al. 2019)."""
    x = x.clone()
    length, n_feat = x.shape
    for _ in range(cfg.time_masks):
        width = int(torch.randint(max(1, int(length * cfg.time_mask_fraction)) + 1, (1,), generator=generator))
        start = int(torch.randint(max(1, length - width + 1), (1,), generator=generator))
        x[start : start + width] = 0
    for _ in range(cfg.feature_masks):
        width = int(torch.randint(cfg.feature_mask_width + 1, (1,), generator=generator))
        start = int(torch.randint(max(1, n_feat - width + 1), (1,), generator=generator))
        x[:, start : start + width] = 0
    return x


def _pick(pool: torch.Tensor, k: int, generator: torch.Generator, weights: torch.Tensor | None = None) -> torch.Tensor:
    """k indices from ``pool`` without repeats when it is big enough, with repeats otherwise.

    ``weights`` (over every index, not only the pool's) make some indices likelier than others.
    """
    if weights is not None:
        return pool[torch.multinomial(weights[pool], k, replacement=len(pool) < k, generator=generator)]
    if len(pool) >= k:
        return pool[torch.randperm(len(pool), generator=generator)[:k]]
    return pool[torch.randint(len(pool), (k,), generator=generator)]


def pk_batches(
    speech_labels: torch.Tensor,
    video_labels: torch.Tensor,
    cfg: FMNStageConfig,
    generator: torch.Generator,
    speech_weights: torch.Tensor | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of (speech indices, video indices) batches of P classes x K items each.

    Only classes with both speech and video take part; videos of a label no speech has are
    background, ``cfg.background_per_batch`` of them added to each batch's videos. An epoch has as
    many batches as it takes to show every training utterance once on average. ``speech_weights`` ``(N,)``, when given,
    make a class's utterances unequally likely (``FMNStageConfig.balance_speakers``).
    """
    classes = sorted(set(speech_labels.tolist()) & set(video_labels.tolist()))
    if not classes:
        raise ValueError("no class has both training speech and training video")
    by_speech = {c: torch.nonzero(speech_labels == c).flatten() for c in classes}
    by_video = {c: torch.nonzero(video_labels == c).flatten() for c in classes}
    background = torch.nonzero(~torch.isin(video_labels, torch.tensor(classes))).flatten()
    p = min(cfg.classes_per_batch, len(classes))
    n_batches = max(1, math.ceil(sum(len(v) for v in by_speech.values()) / (p * cfg.per_class)))
    batches = []
    for _ in range(n_batches):
        chosen = [classes[i] for i in torch.randperm(len(classes), generator=generator)[:p].tolist()]
        s = torch.cat([_pick(by_speech[c], cfg.per_class, generator, speech_weights) for c in chosen])
        v = torch.cat([_pick(by_video[c], cfg.per_class, generator) for c in chosen])
        if len(background) and cfg.background_per_batch:  # (no draw without: batches stay as they were)
            v = torch.cat([v, _pick(background, cfg.background_per_batch, generator)])
        batches.append((s, v))
    return batches


def speech_raw(
    model: FeatureMemoryNetwork, feats: Sequence[torch.Tensor], device: torch.device, batch_size: int = 64
) -> torch.Tensor:
    """Raw speech features ``(N, Da)`` on the CPU, in eval mode, batched by similar length."""
    model.eval()
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]))
    out = torch.zeros(len(feats), model.speech_encoder.output_dim)
    with torch.no_grad():
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            x, lengths = collate_speech([feats[j] for j in idx])
            out[idx] = model.speech_features(x.to(device), lengths).float().cpu()
    return out


def _selection_value(scores: np.ndarray, video: VideoSet, speech: SpeechSet, cfg: FMNStageConfig) -> float:
    """The validation figure ('map' or 'r1'), the mean over both directions.

    With ``cfg.selection_by`` 'family' or 'speaker' (and those known) it is averaged over the
    groups (``metrics_by_group``), each group's clips being its speech queries and its
    video→speech gallery; with 'clip', or when no item has a group, it is the figure over all clips.
    """
    named = {"family": speech.families, "speaker": speech.speakers}.get(cfg.selection_by) or []
    groups = named if any(named) else ["all"] * len(speech.labels)
    metrics = metrics_by_group(scores, video.labels.numpy(), speech.labels.numpy(), groups, ks=(1,))
    metric = cfg.selection_metric
    values = [m.map if metric == "map" else m.recall_at[1] for by_dir in metrics.values() for m in by_dir.values()]
    return float(np.mean(values))


def train_fmn_stage(
    model: FeatureMemoryNetwork,
    train: tuple[VideoSet, SpeechSet],
    val: tuple[VideoSet, SpeechSet],
    cfg: FMNStageConfig,
    device: torch.device,
    seed: int = 0,
    progress: Progress | None = None,
    resume: tuple[int, list[dict[str, float]], dict[str, torch.Tensor] | None] | None = None,
    on_epoch_end: Callable[[int, list[dict[str, float]], dict[str, torch.Tensor]], None] | None = None,
) -> tuple[FeatureMemoryNetwork, list[dict[str, float]]]:
    """Train the speech branch, projections and fusion head; keep the best validation epoch.

    Args:
        model: an FMN without a video encoder (video features are cached raw features).
        train: training videos and speech.
        val: validation videos and speech (chooses the epoch; may be empty: then the last is kept).
        cfg: stage settings.
        device: where to train.
        seed: makes batches, masks and dropout deterministic.
        progress: called as progress(step, total_steps, message).
        resume: (epochs done, their history, the best state so far) of an interrupted run whose
            last state ``model`` holds; the optimizer's moments start afresh.
        on_epoch_end: called after each epoch with (epochs done, history, best state), to checkpoint.

    Returns:
        The model at its best epoch, in eval mode, and the per-epoch history.
    """
    video_train, speech_train = train
    model.to(device)
    params = [p for name, p in model.named_parameters() if not name.startswith(("video_encoder.", "combiner."))]
    classifier = None  # the auxiliary speech classifier: training only, never saved
    if cfg.class_weight > 0:
        n_classes = int(max(speech_train.labels.max(), video_train.labels.max())) + 1
        torch.manual_seed(seed)  # its initial weights
        classifier = torch.nn.Linear(model.speech_proj.out_features, n_classes).to(device)
        params += list(classifier.parameters())
    speaker_head, speaker_ids = _speaker_head(model, speech_train, cfg, seed, device)
    if speaker_head is not None:
        params += list(speaker_head.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    triplet = TripletRankingLoss(cfg.margin, cfg.hard_negatives)
    start_epoch, history, best_state = resume or (0, [], None)
    history = list(history)
    has_val = len(val[0].labels) > 0 and len(val[1].labels) > 0
    # Every epoch draws from its own generator, so a resumed run draws the same batches and masks
    # as a straight run; the optimizer's moments and the training-only heads start afresh, so its
    # weights are close to, not identical with, those of a straight run.
    steps_per_epoch = len(pk_batches(speech_train.labels, video_train.labels, cfg, torch.Generator().manual_seed(seed)))
    total = cfg.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total, pct_start=0.1)
    with warnings.catch_warnings():  # stepping the schedule without the optimizer is the point here
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(start_epoch * steps_per_epoch):
            scheduler.step()  # the schedule of the epochs already done (the optimizer's moments restart)
    best = _best_of(history)
    weights = speech_train.speaker_weights() if cfg.balance_speakers else None
    # A resumed run averages only the epochs it trains itself (the average is not checkpointed).
    averaged: dict[str, torch.Tensor] | None = None
    n_averaged = 0
    for epoch in range(start_epoch, cfg.epochs):
        generator = torch.Generator().manual_seed(seed * 1009 + epoch)
        torch.manual_seed(seed * 1009 + epoch)  # dropout
        model.train()
        running, n = 0.0, 0
        adversary, n_adversary = 0.0, 0  # the speaker head's loss: near ln(speakers) when it cannot tell them apart
        batches = pk_batches(speech_train.labels, video_train.labels, cfg, generator, weights)
        for step, (s_idx, v_idx) in enumerate(batches):
            x, lengths = collate_speech(
                [spec_augment(speech_train.pick(i, generator), cfg, generator) for i in s_idx.tolist()]
            )
            a_raw = model.speech_features(x.to(device), lengths)
            v_raw = video_train.feats[v_idx].to(device)
            a, v = model.project_speech(a_raw), model.project_video(v_raw)
            s_lab, v_lab = speech_train.labels[s_idx].to(device), video_train.labels[v_idx].to(device)
            loss = triplet(v, a, v_lab, s_lab)
            if classifier is not None:
                # a is unit-length: the scale lets the softmax become confident, as in cosine classifiers
                loss = loss + cfg.class_weight * F.cross_entropy(16.0 * classifier(a), s_lab)
            if speaker_head is not None:
                # The reversal grows from 0 to 1 (Ganin's schedule), so that early on the speaker
                # head can learn to tell voices apart before the encoder is asked to hide them.
                ramp = 2 / (1 + math.exp(-10 * (epoch * steps_per_epoch + step) / total)) - 1
                spk = speaker_ids[s_idx]
                known = spk >= 0  # items without a speaker take no part (a batch of none would give NaN)
                if bool(known.any()):  # tested on the CPU: no wait for the device on every step
                    logits = speaker_head(reverse_gradient(a[known.to(device)], ramp))
                    speaker_loss = F.cross_entropy(logits, spk[known].to(device))
                    loss = loss + cfg.speaker_adversarial * speaker_loss
                    adversary, n_adversary = adversary + float(speaker_loss.detach()), n_adversary + 1
            if cfg.bce_weight > 0:
                logits = model.fusion.pairwise_logit(v, a)  # (Bv, Ba)
                target = (v_lab[:, None] == s_lab[None, :]).float()
                pos_weight = (target.numel() - target.sum()) / target.sum().clamp(min=1)  # balance 1 : (P - 1)
                loss = loss + cfg.bce_weight * F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)  # LSTMs on short batches can spike
            optimizer.step()
            scheduler.step()
            running, n = running + float(loss.detach()), n + 1
            if progress:
                progress(
                    epoch * steps_per_epoch + step + 1,
                    total,
                    f"fmn epoch {epoch + 1}/{cfg.epochs} loss {float(loss.detach()):.3f}",
                )
        if cfg.average_last and epoch >= cfg.epochs - cfg.average_last:
            n_averaged += 1
            averaged = _running_average(averaged, model.state_dict(), n_averaged)
        entry = {"epoch": epoch + 1, "loss": running / max(1, n)}  # the adversary's term included
        if n_adversary:
            entry["speaker_ce"] = adversary / n_adversary
        if has_val:
            entry["val_" + cfg.selection_metric] = _validate(model, val, cfg, device)
        history.append(entry)
        log.info("fmn epoch %d: %s", epoch + 1, entry)
        value = entry.get("val_" + cfg.selection_metric, float("nan"))
        if best_state is None or not has_val or value >= best:
            best, best_state = value, copy.deepcopy(model.state_dict())
            entry["best"] = 1.0
        if on_epoch_end:
            on_epoch_end(epoch + 1, history, best_state)
    if averaged is not None and has_val:
        last = copy.deepcopy(model.state_dict())
        model.load_state_dict(averaged)
        value = _validate(model, val, cfg, device)
        entry = {"epoch": cfg.epochs, "averaged_epochs": n_averaged, "val_" + cfg.selection_metric: value}
        history.append(entry)
        log.info("fmn average of the last %d epochs: %s", n_averaged, entry)
        if value >= best:
            best, best_state = value, averaged
            entry["best"] = 1.0
        model.load_state_dict(last)
        if on_epoch_end:  # so that a rerun finds the choice made, not only the epochs
            on_epoch_end(cfg.epochs, history, best_state)
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval(), history


def _speaker_head(
    model: FeatureMemoryNetwork, speech: SpeechSet, cfg: FMNStageConfig, seed: int, device: torch.device
) -> tuple[torch.nn.Module | None, torch.Tensor]:
    """The adversarial speaker classifier (training only, never saved) and each item's speaker id.

    Returns:
        The head, mapping ``(B, E)`` common-space vectors to ``(B, speakers)`` logits, and
        ``(N,)`` speaker ids of the training items (-1 for an item without a speaker); the head is
        None when ``cfg.speaker_adversarial`` is 0 or the training speech has fewer than two speakers.
    """
    names = sorted(set(speech.speakers or []) - {""})
    if cfg.speaker_adversarial <= 0 or len(names) < 2:
        return None, torch.zeros(0, dtype=torch.int64)
    index = {name: i for i, name in enumerate(names)}
    ids = torch.tensor([index.get(s, -1) for s in speech.speakers or []], dtype=torch.int64)  # -1: no speaker
    dim = model.speech_proj.out_features
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, the global random state untouched
        torch.manual_seed(seed + 1)
        head = torch.nn.Sequential(torch.nn.Linear(dim, dim), torch.nn.ReLU(), torch.nn.Linear(dim, len(names)))
    return head.to(device), ids


def _validate(
    model: FeatureMemoryNetwork, val: tuple[VideoSet, SpeechSet], cfg: FMNStageConfig, device: torch.device
) -> float:
    """The selection figure of S = S1 on the validation split."""
    a_val = speech_raw(model, val[1].feats, device)
    scores = pair_scores(model, val[0].feats, a_val, combination="none")
    return _selection_value(scores, val[0], val[1], cfg)


def _running_average(
    average: dict[str, torch.Tensor] | None, state: dict[str, torch.Tensor], n: int
) -> dict[str, torch.Tensor]:
    """The mean of ``n`` states given the mean of the first ``n - 1``; non-float tensors keep the latest."""
    if average is None:
        return {k: v.detach().clone() for k, v in state.items()}
    for k, v in state.items():
        if v.is_floating_point():
            average[k] += (v.detach() - average[k]) / n
        else:
            average[k] = v.detach().clone()
    return average


def _best_of(history: list[dict[str, float]]) -> float:
    values = [e[k] for e in history for k in e if k.startswith("val_") and not math.isnan(e[k])]
    return max(values) if values else float("-inf")


# -- memory ------------------------------------------------------------------------------------


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
    kinds = []
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
        loss.backward()
        return loss

    optimizer.step(closure)
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
    l_val = speech_val.labels
    match = video_val.labels[:, None] == l_val[None, :]
    t1s = (max(cfg.t1_grid),) if cfg.fill_by_label else cfg.t1_grid
    fills = [(t1, t2, avg) for t1 in t1s for t2 in cfg.t2_grid for avg in cfg.averaging_grid]
    readouts = [("max", model.memory.temperature)] + [("soft", t) for t in cfg.soft_temperatures]
    table: list[dict[str, float | str]] = []
    best: tuple[float, MemoryChoice, dict[str, torch.Tensor], torch.Tensor] | None = None
    device = next(model.parameters()).device
    learned = model.combiner
    memory = model.memory
    for i, (t1, t2, averaging) in enumerate(fills):
        memory.t1, memory.t2, memory.averaging = t1, t2, averaging
        fill_memory(model, video_train, a_train, l_train, cfg.fill_pairs, cfg.fill_positive_fraction, seed,
                    by_label=cfg.fill_by_label)  # fmt: skip
        for readout, temperature in readouts:
            memory.readout, memory.temperature = readout, temperature
            fit_combiner(model, video_val.feats, a_val, match)
            for combination in COMBINATIONS:
                if combination == "none" and any(row["combination"] == "none" for row in table):
                    continue  # S = S1 does not depend on the memory settings
                model.combiner = learned if combination == "learned" else ScoreCombiner(combination).to(device)
                value = _selection_value(pair_scores(model, video_val.feats, a_val), video_val, speech_val, cfg)
                row = {"combination": combination, "t1": t1, "t2": t2, "averaging": averaging, "readout": readout,
                       "temperature": temperature, "value": value, "slots_used": memory.video.num_used}  # fmt: skip
                table.append(row)
                if best is None or value > best[0]:
                    params = torch.cat([learned.linear.weight.detach().flatten(), learned.linear.bias.detach()]).cpu()
                    choice = MemoryChoice(combination, t1, t2, value, [], averaging, readout, temperature)
                    best = (value, choice, memory.snapshot(), params)
            model.combiner = learned
        if progress:
            progress(i + 1, len(fills), f"memory T1={t1} T2={t2} {averaging}")
    assert best is not None
    _, choice, state, params = best
    return dataclasses.replace(choice, table=table), state, params
