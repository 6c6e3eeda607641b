"""Stage 2's training data: speech and video sets, SpecAugment, and P x K batches with background negatives.

A batch takes P classes and K speech clips and K videos of each (within-class pairs are the
positives, cross-class pairs the negatives), plus background videos (a label no speech has) that
are negatives for every spoken query. All draws come from a ``torch.Generator`` the caller seeds.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import torch

from fmn_core.training.fmn_stage_config import FMNStageConfig


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
