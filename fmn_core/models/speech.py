"""The speech branch: MFCC sequences -> Bi-LSTM -> one utterance vector (paper §3.2, DESIGN §2.2).

The paper runs a Bi-LSTM (U per direction, U = 1024) over MFCCs and keeps a 2U-d vector of
forward and backward states. We pack the padded batch so padding never reaches the LSTM, and
pool the top layer either by the mean over valid frames, by the final states of both
directions (the paper's reading), or by both concatenated (the default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

POOLINGS = ("mean", "last", "mean+last")
INPUT_NORMS = ("affine", "layernorm", "none")


@dataclass(frozen=True)
class SpeechEncoderConfig:
    """Settings of the Bi-LSTM speech encoder."""

    n_features: int = 60  # F per frame: 20 MFCC x [static, delta, delta-delta] (the front end's n_features)
    hidden: int = 256  # U: LSTM state size per direction (paper: 1024)
    layers: int = 2  # stacked bidirectional LSTM layers
    dropout: float = 0.2  # between LSTM layers and on the pooled vector
    pooling: str = "mean+last"  # 'mean' over valid frames (2U), 'last' final fwd+bwd states (2U), or both (4U)
    input_norm: str = "affine"  # 'affine' learned per-feature scale/shift (identity at start), 'layernorm', 'none'
    # Consecutive frames joined into one LSTM step: k times fewer steps (the LSTM's cost), the
    # same information; 10 ms MFCC frames are finer than the words the encoder has to tell apart.
    frame_stack: int = 1

    def __post_init__(self) -> None:
        if self.frame_stack < 1:
            raise ValueError(f"frame_stack must be at least 1, got {self.frame_stack}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {self.input_norm!r}")

    @property
    def output_dim(self) -> int:
        """D of the utterance vector."""
        return (4 if self.pooling == "mean+last" else 2) * self.hidden


class FeatureAffine(nn.Module):
    """A learned per-feature scale and shift, identity at initialisation.

    The front end already normalises each utterance (mean 0, variance 1 per feature); this only
    lets training re-weight features without renormalising each frame as LayerNorm would.
    """

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_features))
        self.bias = nn.Parameter(torch.zeros(n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., F)`` -> ``(..., F)``."""
        return x * self.weight + self.bias


class SpeechEncoder(nn.Module):
    """Bi-LSTM over packed MFCC sequences, pooled to one vector per utterance.

    Args:
        input_norm: applied to every frame before the LSTM.
        lstm: a bidirectional, ``batch_first`` LSTM.
        pooling: one of ``POOLINGS``.
        dropout: applied to the pooled vector.
    """

    def __init__(
        self, input_norm: nn.Module, lstm: nn.LSTM, pooling: str, dropout: nn.Module, frame_stack: int = 1
    ) -> None:
        super().__init__()
        if not (lstm.bidirectional and lstm.batch_first):
            raise ValueError("the speech encoder needs a bidirectional, batch_first LSTM")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.input_norm = input_norm
        self.lstm = lstm
        self.pooling = pooling
        self.dropout = dropout
        self.frame_stack = frame_stack

    @property
    def output_dim(self) -> int:
        """D of :meth:`forward`'s output."""
        return (4 if self.pooling == "mean+last" else 2) * self.lstm.hidden_size

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Encode a padded batch of MFCC sequences.

        Args:
            feats: ``(B, L, F)`` features, zero-padded after each sequence's length.
            lengths: ``(B,)`` int64 valid frames per sequence, each in ``[1, L]``.

        Returns:
            ``(B, output_dim)`` utterance vectors; frames past ``lengths`` have no influence.
        """
        if feats.ndim != 3 or lengths.shape != feats.shape[:1]:
            raise ValueError(
                f"expected feats (B, L, F) and lengths (B,), got {tuple(feats.shape)} and {tuple(lengths.shape)}"
            )
        lengths = lengths.to("cpu", torch.int64)  # pack_padded_sequence wants lengths on the CPU
        if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > feats.shape[1]):
            raise ValueError(f"lengths must lie in [1, {feats.shape[1]}], got {lengths.tolist()}")
        feats = self.input_norm(feats)
        if self.frame_stack > 1:
            valid = torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths.to(feats.device)[:, None]
            feats, lengths = stack_frames(feats * valid.unsqueeze(-1), lengths, self.frame_stack)
        packed = pack_padded_sequence(feats, lengths, batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        parts = []
        if self.pooling in ("mean", "mean+last"):
            padded, _ = pad_packed_sequence(out, batch_first=True)  # zeros past each length
            parts.append(padded.sum(dim=1) / lengths.to(padded.device, padded.dtype).unsqueeze(1))
        if self.pooling in ("last", "mean+last"):
            # h_n is (layers * 2, B, U), already back in the batch's order; the top layer's
            # forward state has read the whole sequence, the backward one too (from the end).
            parts.append(torch.cat([h_n[-2], h_n[-1]], dim=1))
        pooled: torch.Tensor = self.dropout(torch.cat(parts, dim=1))
        return pooled


def stack_frames(feats: torch.Tensor, lengths: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Join every k consecutive frames: ``(B, L, F)`` -> ``(B, ceil(L / k), k F)``, lengths rounded up.

    Frames past each length must be zero, so a partly valid last group holds zeros after its
    real frames whatever the batch's padding.
    """
    b, length, f = feats.shape
    pad = (-length) % k
    if pad:
        feats = torch.nn.functional.pad(feats, (0, 0, 0, pad))
    steps = (length + pad) // k
    return feats.reshape(b, steps, k * f), (lengths + k - 1) // k


def _create_input_norm(cfg: SpeechEncoderConfig) -> nn.Module:
    if cfg.input_norm == "affine":
        return FeatureAffine(cfg.n_features)
    if cfg.input_norm == "layernorm":
        return nn.LayerNorm(cfg.n_features)
    return nn.Identity()


def create_speech_encoder(cfg: SpeechEncoderConfig) -> SpeechEncoder:
    """Build the Bi-LSTM speech encoder described by ``cfg``."""
    lstm = nn.LSTM(
        input_size=cfg.n_features * cfg.frame_stack,
        hidden_size=cfg.hidden,
        num_layers=cfg.layers,
        batch_first=True,
        bidirectional=True,
        dropout=cfg.dropout if cfg.layers > 1 else 0.0,
    )
    return SpeechEncoder(_create_input_norm(cfg), lstm, cfg.pooling, nn.Dropout(cfg.dropout), cfg.frame_stack)
