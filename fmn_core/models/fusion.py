"""Fusion of the projected video and speech vectors into the match score S1 (paper §3.3, DESIGN §2.4).

The paper concatenates the two projected vectors and feeds them to a softmax layer. We use a
small MLP ending in a 2-way softmax; its match probability equals the sigmoid of the difference
of the two logits, which is how it is computed (stable, and it gives the logit to the loss).
Because the first layer acts on a concatenation, it splits into a video half and a speech half,
so all N x M pairs of two sets are scored by broadcasting instead of a loop over pairs.
"""

from __future__ import annotations

import torch
from torch import nn


class FusionHead(nn.Module):
    """Concatenate ``(v, a)`` -> Linear -> ReLU -> Dropout -> Linear -> 2-way softmax.

    Args:
        embed_dim: E, the width of each projected vector.
        hidden: width of the hidden layer.
        dropout: dropout on the hidden layer (training only).
    """

    def __init__(self, embed_dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.hidden = nn.Linear(2 * embed_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 2)  # [no match, match]

    def _halves(self, v: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """First-layer pre-activations of each side: ``(N, H)`` (with the bias) and ``(M, H)``."""
        w = self.hidden.weight
        return v @ w[:, : self.embed_dim].T + self.hidden.bias, a @ w[:, self.embed_dim :].T

    def _match_logit(self, h: torch.Tensor) -> torch.Tensor:
        """Hidden activations ``(..., H)`` -> logit of "match" ``(...)``: z_match - z_no_match."""
        w = self.out.weight[1] - self.out.weight[0]
        b = self.out.bias[1] - self.out.bias[0]
        hidden: torch.Tensor = self.dropout(torch.relu(h))
        return hidden @ w + b

    def logit(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Match logits of aligned pairs.

        Args:
            v: ``(B, E)`` projected video vectors.
            a: ``(B, E)`` projected speech vectors.

        Returns:
            ``(B,)`` logits; ``sigmoid`` of them is S1.
        """
        return self._match_logit(self.hidden(torch.cat([v, a], dim=1)))

    def forward(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """S1 ``(B,)``: probability that aligned pairs ``v (B, E)``, ``a (B, E)`` match."""
        return torch.sigmoid(self.logit(v, a))

    def pairwise_logit(self, v: torch.Tensor, a: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """Match logits of every pair of two sets.

        Args:
            v: ``(N, E)`` projected video vectors.
            a: ``(M, E)`` projected speech vectors.
            chunk: rows of ``v`` scored at once; bounds memory to ``chunk x M x H`` floats.

        Returns:
            ``(N, M)`` logits; entry ``[n, m]`` equals ``logit(v[n:n+1], a[m:m+1])``.
        """
        hv, ha = self._halves(v, a)
        rows = [self._match_logit(hv[i : i + chunk, None, :] + ha[None, :, :]) for i in range(0, len(hv), chunk)]
        return torch.cat(rows, dim=0) if rows else hv.new_zeros((0, len(ha)))

    def pairwise(self, v: torch.Tensor, a: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """S1 ``(N, M)`` for every pair of ``v (N, E)`` and ``a (M, E)``."""
        return torch.sigmoid(self.pairwise_logit(v, a, chunk))
