"""Stage 1: train the compact I3D on the videos' class labels (the paper's fine-tuning step, §3.1).

The paper fine-tunes a Kinetics I3D on MPII Cooking 2 and then freezes it as the video feature
extractor. No weights can be downloaded here, so the compact I3D learns from scratch on the
training split; the validation split chooses the epoch. Clips are decoded once, a little larger
and longer than the encoder's input, so every epoch can crop, shift and flip them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fmn_core.features.video import normalize_clip
from fmn_core.models.i3d import VideoEncoder
from fmn_core.training.distributed import SINGLE, Dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoStageConfig:
    """Settings of stage 1."""

    epochs: int = 20  # passes over the training clips (from scratch it underfits before ~15)
    batch_size: int = 16  # clips per step
    lr: float = 3e-3  # AdamW peak learning rate (one-cycle schedule)
    weight_decay: float = 1e-4  # AdamW weight decay
    store_factor: int = 2  # clips are decoded with this many times the encoder's frames ...
    store_margin: float = 8 / 7  # ... and this much larger frames, to crop and shift from
    flip: bool = True  # random horizontal flips (no action here depends on left or right)
    label_smoothing: float = 0.1  # softens the targets; the features generalise better


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (B, 3, T, H, W) float clips to (B, 3, T, size, size)."""
    b, c, t, h, w = x.shape
    frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return frames.reshape(b, t, c, size, size).permute(0, 2, 1, 3, 4)


def augment(
    clips: torch.Tensor, frames: int, size: int, flip: bool, generator: torch.Generator, keep: slice | None = None
) -> torch.Tensor:
    """Random temporal phase, crop (scale 0.7-1.0) and flip of stored uint8 clips.

    Args:
        clips: (B, 3, T_store, S_store, S_store) uint8.
        frames: T of the encoder input (T_store must be a multiple of it).
        size: S of the encoder input.
        flip: allow horizontal flips.
        generator: the source of randomness (training is deterministic under a seed).
        keep: only these clips are made (a rank's share of a batch); the draws of every clip are
            taken all the same, so that each rank's generator stays where the others' are.

    Returns:
        (B', 3, frames, size, size) normalised float32, B' the clips kept.
    """
    b, _, t_store, side, _ = clips.shape
    step = t_store // frames
    kept = range(b)[keep] if keep is not None else range(b)
    out = []
    for i in range(b):
        phase = int(torch.randint(step, (1,), generator=generator))
        crop = int(side * (0.7 + 0.3 * float(torch.rand(1, generator=generator))))
        y, x = (int(torch.randint(side - crop + 1, (1,), generator=generator)) for _ in range(2))
        flipped = flip and float(torch.rand(1, generator=generator)) < 0.5
        if i not in kept:
            continue
        clip = clips[i : i + 1, :, phase::step][:, :, :frames, y : y + crop, x : x + crop]
        clip = _resize(normalize_clip(clip), size)
        out.append(clip.flip(-1) if flipped else clip)
    return torch.cat(out)


def center(clips: torch.Tensor, frames: int, size: int) -> torch.Tensor:
    """The evaluation view of stored uint8 clips: middle temporal phase, whole frame, no flip."""
    step = clips.shape[2] // frames
    return _resize(normalize_clip(clips[:, :, step // 2 :: step][:, :, :frames]), size)


@torch.no_grad()
def accuracy(encoder: VideoEncoder, clips: torch.Tensor, labels: torch.Tensor, frames: int, size: int,
             device: torch.device, batch_size: int = 32) -> float:  # fmt: skip
    """Top-1 accuracy of the encoder's classifier on stored clips."""
    encoder.eval()
    correct = 0
    for i in range(0, len(clips), batch_size):
        x = center(clips[i : i + batch_size], frames, size).to(device)
        correct += int((encoder(x).argmax(1).cpu() == labels[i : i + batch_size]).sum())
    return correct / max(1, len(clips))


def train_video_encoder(
    encoder: VideoEncoder,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    cfg: VideoStageConfig,
    frames: int,
    size: int,
    device: torch.device,
    seed: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
    dist: Dist = SINGLE,
) -> tuple[VideoEncoder, list[dict[str, float]]]:
    """Train the encoder's classifier on stored clips; keep the epoch with the best validation accuracy.

    Args:
        encoder: a fresh (or Kinetics-initialised) video encoder whose head has num_classes outputs.
        train: (clips (N, 3, T_store, S_store, S_store) uint8, labels (N,) int64).
        val: the same for the validation split (may be empty: then the last epoch is kept).
        cfg: stage settings.
        frames, size: the encoder's input T and S.
        device: where to train.
        seed: makes batches and augmentation deterministic.
        progress: called as progress(step, total_steps, message).
        dist: this process's place in a distributed run: every rank draws the same batches and
            trains on its share of each under DDP (batch norm synced across GPUs, per rank on CPUs);
            rank 0 validates and chooses, and every rank ends with its choice.

    Returns:
        The encoder at its best epoch (in eval mode) and the per-epoch history (rank 0's; empty on the others).
    """
    encoder.to(device)
    if dist.active and device.type == "cuda":
        # in place: the I3D's children are replaced (torch leaves this call unannotated)
        nn.SyncBatchNorm.convert_sync_batchnorm(encoder)  # type: ignore[no-untyped-call]
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = (len(train[0]) + cfg.batch_size - 1) // cfg.batch_size
    total = cfg.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total, pct_start=0.15)
    loop = _Loop(
        dist.wrap(encoder), train, cfg, frames, size, device, torch.Generator().manual_seed(seed), optimizer,
        scheduler, nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), total, progress, dist,
    )  # fmt: skip
    history: list[dict[str, float]] = []
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    for epoch in range(cfg.epochs):
        loss = _video_epoch(loop, epoch)
        if not dist.is_main:
            continue  # rank 0 alone validates and chooses
        val_acc = accuracy(encoder, *val, frames, size, device) if len(val[0]) else float("nan")
        history.append({"epoch": epoch + 1, "loss": loss, "val_accuracy": val_acc})
        log.info("video epoch %d: loss %.3f, val accuracy %.3f", epoch + 1, loss, val_acc)
        if best is None or not len(val[0]) or val_acc >= best[0]:
            best = (val_acc, copy.deepcopy(encoder.state_dict()))
    if best is not None:
        encoder.load_state_dict(best[1])
    dist.broadcast_module(encoder)  # every rank goes on with rank 0's choice
    return encoder.eval(), history


@dataclass
class _Loop:
    """What every epoch of stage 1 uses: the encoder as trained (in DDP when distributed), its data and optimisation."""

    trained: nn.Module
    train: tuple[torch.Tensor, torch.Tensor]
    cfg: VideoStageConfig
    frames: int
    size: int
    device: torch.device
    generator: torch.Generator
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loss_fn: nn.Module
    total: int
    progress: Callable[[int, int, str], None] | None
    dist: Dist
    step: int = 0


def _video_epoch(loop: _Loop, epoch: int) -> float:
    """One pass over the training clips; returns the mean loss (over every rank's clips)."""
    cfg, dist, clips, labels = loop.cfg, loop.dist, *loop.train
    loop.trained.train()
    order = torch.randperm(len(clips), generator=loop.generator)
    running = 0.0
    for i in range(0, len(order), cfg.batch_size):
        idx = order[i : i + cfg.batch_size]
        if len(idx) < dist.world:
            continue  # a last batch too small to give every rank a clip (distributed runs only)
        mine = dist.share(len(idx))
        x = augment(clips[idx], loop.frames, loop.size, cfg.flip, loop.generator, keep=mine).to(loop.device)
        # Each rank's mean is weighted by its share of the batch (1 in a single process), so that
        # DDP's average over the ranks is the batch's mean.
        share = len(x) * dist.world / len(idx)
        loss = loop.loss_fn(loop.trained(x), labels[idx[mine]].to(loop.device)) * share
        loop.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        loop.optimizer.step()
        loop.scheduler.step()
        running += float(loss.detach()) * len(idx) / dist.world
        loop.step += 1
        if loop.progress:
            message = f"video epoch {epoch + 1}/{cfg.epochs} loss {float(loss.detach()):.3f}"
            loop.progress(loop.step, loop.total, message)
    return dist.sum([running])[0] / len(order)
