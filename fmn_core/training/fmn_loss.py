"""Stage 2's loss of one batch, as the forward of one module that holds everything it trains.

The network and its training-only heads (the auxiliary speech classifier, the adversarial speaker
head) are one module here because DistributedDataParallel averages the gradients of the module it
wraps, and learns which parameters a step used from that module's forward. In a distributed run
each rank encodes its share of the batch's speech, and the shares are gathered (with their
gradient) before any loss: the triplet loss ranks each clip against every video of the batch, the
BCE scores every pair of it, so each rank computes the loss of the whole batch, exactly as a single
process would.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fmn_core.losses import TripletRankingLoss, reverse_gradient
from fmn_core.models.fmn import FeatureMemoryNetwork
from fmn_core.training.distributed import Dist
from fmn_core.training.fmn_stage_config import FMNStageConfig


class BatchLoss(nn.Module):
    """The loss of a P x K batch: triplet ranking, the auxiliary classifier's and speaker head's terms, BCE on S1.

    Args:
        model: the FMN being trained.
        classifier: the auxiliary speech classifier (``(B, E)`` -> class logits), or None.
        speaker_head: the adversarial speaker classifier (``(B, E)`` -> speaker logits), or None.
        cfg: the stage's settings (the terms' weights, the triplet margin).
        dist: this process's place in a distributed run (``SINGLE``: the whole batch is its own).
    """

    def __init__(
        self,
        model: FeatureMemoryNetwork,
        classifier: nn.Module | None,
        speaker_head: nn.Module | None,
        cfg: FMNStageConfig,
        dist: Dist,
    ) -> None:
        super().__init__()
        self.model = model
        self.classifier = classifier
        self.speaker_head = speaker_head
        self.triplet = TripletRankingLoss(cfg.margin, cfg.hard_negatives)
        self.cfg = cfg
        self.dist = dist

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        v_raw: torch.Tensor,
        labels: tuple[torch.Tensor, torch.Tensor],
        speakers: torch.Tensor | None,
        ramp: float,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The batch's loss, and the speaker head's term in it (None when the head took no part).

        Args:
            x, lengths: this rank's share of the batch's speech frames ``(B_r, L, F)`` and lengths ``(B_r,)``.
            v_raw: ``(Bv, Dv)`` raw features of the batch's videos (every rank has them all).
            labels: ``(Ba,)`` speech and ``(Bv,)`` video class ids of the whole batch.
            speakers: ``(Ba,)`` the batch's speaker ids for the speaker head (-1: none), or None.
            ramp: the strength of the gradient reversal, 0 to 1.
        """
        cfg, model = self.cfg, self.model
        s_lab, v_lab = labels
        a_raw = model.speech_features(x, lengths)
        a = self.dist.gather(model.project_speech(a_raw), len(s_lab))  # the whole batch's, with its gradient
        v = model.project_video(v_raw)
        loss: torch.Tensor = self.triplet(v, a, v_lab, s_lab)
        if self.classifier is not None:
            # a is unit-length: the scale lets the softmax become confident, as in cosine classifiers
            loss = loss + cfg.class_weight * F.cross_entropy(16.0 * self.classifier(a), s_lab)
        speaker_loss = self._speaker_loss(a, speakers, ramp)
        if speaker_loss is not None:
            loss = loss + cfg.speaker_adversarial * speaker_loss
        if cfg.bce_weight > 0:
            logits = model.fusion.pairwise_logit(v, a)  # (Bv, Ba)
            target = (v_lab[:, None] == s_lab[None, :]).float()
            pos_weight = (target.numel() - target.sum()) / target.sum().clamp(min=1)  # balance 1 : (P - 1)
            loss = loss + cfg.bce_weight * F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
        return loss, speaker_loss

    def _speaker_loss(self, a: torch.Tensor, speakers: torch.Tensor | None, ramp: float) -> torch.Tensor | None:
        """The speaker head's cross-entropy on the batch's projected speech ``a`` (B, E), through gradient reversal.

        None without a head, or when no item of the batch has a known speaker.
        """
        if self.speaker_head is None or speakers is None:
            return None
        known = speakers >= 0  # items without a speaker take no part (a batch of none would give NaN)
        if not bool(known.any()):  # tested on the CPU: no wait for the device on every step
            return None
        logits = self.speaker_head(reverse_gradient(a[known.to(a.device)], ramp))
        return F.cross_entropy(logits, speakers[known].to(a.device))
