"""Stage 2: the speech encoder, projections and fusion head, trained on frozen video features.

Each step takes P classes and K speech clips and K videos of each (``fmn_batches``; within-class
pairs are the positives, cross-class pairs the negatives). The loss is the triplet ranking loss in
the common space (paper §3.3) plus BCE on S1 over every pair of the batch (§3.4.2). The validation
split chooses the epoch. The memory banks are filled and tuned afterwards, with the finished
encoders (``fmn_memory``).
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from fmn_core.features.audio import collate_speech
from fmn_core.models.fmn import FeatureMemoryNetwork
from fmn_core.training.distributed import SINGLE, Dist, DistributedError
from fmn_core.training.fmn_batches import SpeechSet, VideoSet, pk_batches, spec_augment
from fmn_core.training.fmn_loss import BatchLoss
from fmn_core.training.fmn_stage_config import FMNStageConfig, Progress
from fmn_core.training.fmn_validation import _validate

log = logging.getLogger(__name__)
EpochEnd = Callable[[int, list[dict[str, float]], dict[str, torch.Tensor]], None]  # (epochs done, history, best state)


@dataclass
class _StageRun:
    """What every epoch of a run uses: the training data, the network, its optimisation, the training-only heads."""

    model: FeatureMemoryNetwork
    video: VideoSet
    speech: SpeechSet
    cfg: FMNStageConfig
    device: torch.device
    seed: int
    progress: Progress | None
    params: list[torch.nn.Parameter]  # what the optimizer trains: the network's and the heads'
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    # The network and its training-only heads as one module whose forward is a batch's loss
    # (``BatchLoss``), in DistributedDataParallel when distributed.
    loss: torch.nn.Module
    speaker_ids: torch.Tensor | None  # (N,) the training items' speakers for the speaker head, -1 for none
    steps_per_epoch: int
    weights: torch.Tensor | None  # (N,) speaker-balanced sampling weights of the training speech
    dist: Dist

    @property
    def total(self) -> int:
        return self.cfg.epochs * self.steps_per_epoch


@dataclass
class _Selection:
    """The epochs' history and what validation has chosen so far (a resumed run starts from its checkpoint's)."""

    history: list[dict[str, float]]
    best: float  # the validation figure of best_state
    best_state: dict[str, torch.Tensor] | None
    # The mean of the last epochs' weights, a candidate of its own. A resumed run averages only the
    # epochs it trains itself (the average is not checkpointed).
    averaged: dict[str, torch.Tensor] | None = None
    n_averaged: int = 0


def train_fmn_stage(
    model: FeatureMemoryNetwork,
    train: tuple[VideoSet, SpeechSet],
    val: tuple[VideoSet, SpeechSet],
    cfg: FMNStageConfig,
    device: torch.device,
    seed: int = 0,
    progress: Progress | None = None,
    resume: tuple[int, list[dict[str, float]], dict[str, torch.Tensor] | None] | None = None,
    on_epoch_end: EpochEnd | None = None,
    dist: Dist = SINGLE,
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
        dist: this process's place in a distributed run: every rank draws the same batches and
            encodes its share of each; rank 0 alone validates, chooses and calls ``on_epoch_end``.

    Returns:
        The model at its best epoch, in eval mode, and the per-epoch history (on ranks other than
        0: the last epoch's weights, no history).
    """
    start_epoch, history, best_state = resume or (0, [], None)
    run = _start(model, train, cfg, (device, dist), seed, progress, start_epoch)
    selection = _Selection(list(history), _best_of(history), best_state)
    has_val = len(val[0].labels) > 0 and len(val[1].labels) > 0
    for epoch in range(start_epoch, cfg.epochs):
        entry = _train_epoch(run, epoch)
        if dist.is_main:  # the others go on to the next epoch, and wait for rank 0 at its first step
            _end_epoch(run, selection, epoch, entry, val if has_val else None, on_epoch_end)
    if selection.averaged is not None and has_val:
        _judge_average(run, selection, selection.averaged, val, on_epoch_end)
    if selection.best_state is not None:
        model.load_state_dict(selection.best_state)
    return model.eval(), selection.history


def _start(
    model: FeatureMemoryNetwork,
    train: tuple[VideoSet, SpeechSet],
    cfg: FMNStageConfig,
    where: tuple[torch.device, Dist],
    seed: int,
    progress: Progress | None,
    start_epoch: int,
) -> _StageRun:
    """The network on the device with its training-only heads, optimizer and schedule (past ``start_epoch``).

    Raises:
        DistributedError: a batch has fewer speech clips than there are ranks to share them.
    """
    video_train, speech_train = train
    device, dist = where
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
    batches = pk_batches(speech_train.labels, video_train.labels, cfg, torch.Generator().manual_seed(seed))
    if len(batches[0][0]) < dist.world:
        raise DistributedError(
            f"a batch of {len(batches[0][0])} speech clips cannot be shared by {dist.world} processes: "
            "start fewer processes per batch (torchrun --nproc_per_node)"
        )
    scheduler = _one_cycle(optimizer, cfg, cfg.epochs * len(batches), start_epoch * len(batches))
    weights = speech_train.speaker_weights() if cfg.balance_speakers else None
    # The combiner never trains here, and the speaker head sits out batches without a known
    # speaker: DDP must look for the parameters a step did not use.
    loss = dist.wrap(BatchLoss(model, classifier, speaker_head, cfg, dist), find_unused_parameters=True)
    return _StageRun(
        model, video_train, speech_train, cfg, device, seed, progress, params, optimizer, scheduler, loss,
        speaker_ids if speaker_head is not None else None, len(batches), weights, dist,
    )  # fmt: skip


def _one_cycle(
    optimizer: torch.optim.Optimizer, cfg: FMNStageConfig, total: int, done: int
) -> torch.optim.lr_scheduler.OneCycleLR:
    """The one-cycle learning-rate schedule of ``total`` steps, moved on past the ``done`` steps already trained."""
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total, pct_start=0.1)
    with warnings.catch_warnings():  # stepping the schedule without the optimizer is the point here
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(done):
            scheduler.step()  # the schedule of the epochs already done (the optimizer's moments restart)
    return scheduler


def _train_epoch(run: _StageRun, epoch: int) -> dict[str, float]:
    """One pass over the training speech; returns its history entry (mean loss, the speaker head's mean loss)."""
    cfg = run.cfg
    # Every epoch draws from its own generator, so a resumed run draws the same batches and masks
    # as a straight run; the optimizer's moments and the training-only heads start afresh, so its
    # weights are close to, not identical with, those of a straight run.
    generator = torch.Generator().manual_seed(run.seed * 1009 + epoch)
    # Dropout: each rank masks its own clips with masks of its own (rank 0's are a single process's).
    torch.manual_seed(run.seed * 1009 + epoch + 7919 * run.dist.rank)
    run.loss.train()  # the network and its heads
    running, n = 0.0, 0
    adversary, n_adversary = 0.0, 0  # the speaker head's loss: near ln(speakers) when it cannot tell them apart
    batches = pk_batches(run.speech.labels, run.video.labels, cfg, generator, run.weights)
    for step, (s_idx, v_idx) in enumerate(batches):
        done = epoch * run.steps_per_epoch + step
        loss, speaker_loss = _step(run, s_idx, v_idx, generator, done)
        if speaker_loss is not None:
            adversary, n_adversary = adversary + speaker_loss, n_adversary + 1
        running, n = running + loss, n + 1
        if run.progress:
            run.progress(done + 1, run.total, f"fmn epoch {epoch + 1}/{cfg.epochs} loss {loss:.3f}")
    entry = {"epoch": epoch + 1, "loss": running / max(1, n)}  # the adversary's term included
    if n_adversary:
        entry["speaker_ce"] = adversary / n_adversary
    return entry


def _step(
    run: _StageRun, s_idx: torch.Tensor, v_idx: torch.Tensor, generator: torch.Generator, done: int
) -> tuple[float, float | None]:
    """One optimizer step on a batch (see ``_batch_loss``); returns its loss and the speaker head's term in it."""
    loss, speaker_loss = _batch_loss(run, s_idx, v_idx, generator, done)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
    torch.nn.utils.clip_grad_norm_(run.params, 5.0)  # LSTMs on short batches can spike
    run.optimizer.step()
    run.scheduler.step()
    return float(loss.detach()), speaker_loss


def _batch_loss(
    run: _StageRun, s_idx: torch.Tensor, v_idx: torch.Tensor, generator: torch.Generator, done: int
) -> tuple[torch.Tensor, float | None]:
    """The loss of one batch, and the speaker head's term in it (None when the head took no part).

    Args:
        run: the run.
        s_idx, v_idx: the batch's speech and video indices (``pk_batches``).
        generator: the epoch's generator (speed versions and SpecAugment masks).
        done: steps of the run before this one.
    """
    cfg, device = run.cfg, run.device
    # Every rank draws the versions and masks of the whole batch, so that its generator stays in
    # step with the others' (and with a single process's); it encodes only its share.
    items = [spec_augment(run.speech.pick(i, generator), cfg, generator) for i in s_idx.tolist()]
    x, lengths = collate_speech(items[run.dist.share(len(items))])
    v_raw = run.video.feats[v_idx].to(device)
    labels = (run.speech.labels[s_idx].to(device), run.video.labels[v_idx].to(device))
    # The reversal grows from 0 to 1 (Ganin's schedule), so that early on the speaker
    # head can learn to tell voices apart before the encoder is asked to hide them.
    ramp = 2 / (1 + math.exp(-10 * done / run.total)) - 1
    speakers = run.speaker_ids[s_idx] if run.speaker_ids is not None else None
    loss, speaker_loss = run.loss(x.to(device), lengths, v_raw, labels, speakers, ramp)
    return loss, None if speaker_loss is None else float(speaker_loss.detach())


def _end_epoch(
    run: _StageRun,
    selection: _Selection,
    epoch: int,
    entry: dict[str, float],
    val: tuple[VideoSet, SpeechSet] | None,
    on_epoch_end: EpochEnd | None,
) -> None:
    """Add the epoch to the weight average, validate it (``val`` None: no validation), log it, keep it if best."""
    cfg, model = run.cfg, run.model
    if cfg.average_last and epoch >= cfg.epochs - cfg.average_last:
        selection.n_averaged += 1
        selection.averaged = _running_average(selection.averaged, model.state_dict(), selection.n_averaged)
    if val is not None:
        entry["val_" + cfg.selection_metric] = _validate(model, val, cfg, run.device)
    selection.history.append(entry)
    log.info("fmn epoch %d: %s", epoch + 1, entry)
    value = entry.get("val_" + cfg.selection_metric, float("nan"))
    if selection.best_state is None or val is None or value >= selection.best:
        selection.best, selection.best_state = value, copy.deepcopy(model.state_dict())
        entry["best"] = 1.0
    if on_epoch_end:
        on_epoch_end(epoch + 1, selection.history, selection.best_state)


def _judge_average(
    run: _StageRun,
    selection: _Selection,
    averaged: dict[str, torch.Tensor],
    val: tuple[VideoSet, SpeechSet],
    on_epoch_end: EpochEnd | None,
) -> None:
    """Validate the average of the last epochs' weights; it becomes the choice when no epoch beats it."""
    assert selection.best_state is not None  # the averaged epochs ran in this call, and the first chose one
    cfg, model = run.cfg, run.model
    last = copy.deepcopy(model.state_dict())
    model.load_state_dict(averaged)
    value = _validate(model, val, cfg, run.device)
    entry = {"epoch": cfg.epochs, "averaged_epochs": selection.n_averaged, "val_" + cfg.selection_metric: value}
    selection.history.append(entry)
    log.info("fmn average of the last %d epochs: %s", selection.n_averaged, entry)
    if value >= selection.best:
        selection.best, selection.best_state = value, averaged
        entry["best"] = 1.0
    model.load_state_dict(last)
    if on_epoch_end:  # so that a rerun finds the choice made, not only the epochs
        on_epoch_end(cfg.epochs, selection.history, selection.best_state)


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
