"""Training losses of the FMN: triplet ranking in the common space (paper §3.3) and BCE on S (§3.4.2).

The paper's formula (1) prints ``max(0, S(a, p) + S(a, n) + margin)``; with S a similarity the
standard form, used here, is ``max(0, margin + S(a, n) - S(a, p))`` (DESIGN §2.3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _direction_loss(sim: torch.Tensor, positive: torch.Tensor, margin: float, hard: bool) -> torch.Tensor:
    """Hinge costs with the rows of ``sim (A, K)`` as anchors and its columns as candidates.

    Returns the costs of every valid (anchor, positive, negative) triple, or of every valid
    (anchor, positive) pair against the anchor's hardest negative, flattened.
    """
    negative = ~positive
    if hard:
        hardest = sim.masked_fill(~negative, float("-inf")).max(dim=1, keepdim=True).values  # (A, 1)
        valid = positive & negative.any(dim=1, keepdim=True)
        cost = F.relu(margin + hardest - sim)  # (A, K): column k as the positive
        return cost[valid]
    cost = F.relu(margin + sim[:, None, :] - sim[:, :, None])  # (A, P, N): [i, p, n]
    valid = positive[:, :, None] & negative[:, None, :]
    return cost[valid]


class TripletRankingLoss(nn.Module):
    """Bidirectional triplet ranking loss on cosine similarity, positives by label.

    For every anchor (speech or video), every cross-modal item of the same label is a positive
    and every one of another label a negative: ``L = mean max(0, m + S(a, n) - S(a, p))`` over
    all such triples, in both directions. With ``hard_negatives`` only the hardest negative of
    each anchor counts (VSE++, Faghri et al. 2018).

    Args:
        margin: m.
        hard_negatives: use each anchor's hardest negative instead of all negatives.
    """

    def __init__(self, margin: float = 0.2, hard_negatives: bool = False) -> None:
        super().__init__()
        self.margin = margin
        self.hard_negatives = hard_negatives

    def forward(
        self,
        video: torch.Tensor,
        speech: torch.Tensor,
        video_labels: torch.Tensor,
        speech_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss of a batch.

        Args:
            video: ``(Bv, E)`` projected video vectors (normalised here).
            speech: ``(Ba, E)`` projected speech vectors (normalised here).
            video_labels: ``(Bv,)`` int class ids.
            speech_labels: ``(Ba,)`` int class ids; None when the batch is aligned (the same labels).

        Returns:
            A scalar; 0 (still differentiable) when the batch has no valid triple.
        """
        if speech_labels is None:
            speech_labels = video_labels
        sim = F.normalize(speech, dim=1) @ F.normalize(video, dim=1).T  # (Ba, Bv)
        positive = speech_labels[:, None] == video_labels[None, :]
        costs = torch.cat(
            [
                _direction_loss(sim, positive, self.margin, self.hard_negatives),  # speech -> video
                _direction_loss(sim.T, positive.T, self.margin, self.hard_negatives),  # video -> speech
            ]
        )
        return costs.mean() if costs.numel() else sim.sum() * 0.0


class MatchBCELoss(nn.Module):
    """Binary cross-entropy of the final score S against the match label y (paper formula (4)).

    Works on the logit of S when the score combination has one (``ScoreOutput.logit``), which is
    exact for any S; otherwise on S clipped to ``[eps, 1 - eps]`` so log never sees 0.

    Args:
        eps: the clip applied to probabilities.
    """

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, s: torch.Tensor, y: torch.Tensor, logit: torch.Tensor | None = None) -> torch.Tensor:
        """Mean BCE.

        Args:
            s: scores in [0, 1], any shape.
            y: labels (0 or 1) of the same shape.
            logit: the logit of ``s`` where known, same shape.
        """
        y = y.to(s.dtype)
        if logit is not None:
            return F.binary_cross_entropy_with_logits(logit, y)
        return F.binary_cross_entropy(s.clamp(self.eps, 1.0 - self.eps), y)


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale  # type: ignore[attr-defined]
        return x.view_as(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None  # type: ignore[attr-defined]


def reverse_gradient(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity forward; the gradient flowing back is multiplied by ``-scale`` (Ganin & Lempitsky 2015).

    A classifier trained on ``reverse_gradient(features)`` learns to predict its target while the
    network below it learns to make the features useless for that target.
    """
    reversed_grad: torch.Tensor = _GradientReversal.apply(x, scale)
    return reversed_grad
