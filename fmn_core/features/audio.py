"""Speech front end: load, trim silence, MFCC with deltas, and batch variable lengths.

Every query and training utterance goes through :func:`speech_features`, so the app, the CLI
and training see exactly the same features. Bad input (silence, too short, not audio) is an
error naming the file; very long input is cut, with a warning, rather than refused.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from fmn_core.media.audio_io import SAMPLE_RATE, load_audio
from fmn_core.media.errors import MediaError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeechFrontEndConfig:
    """How a wave becomes an MFCC sequence."""

    # Cepstral coefficients per frame. 20, not 40: the high coefficients follow the voice's pitch
    # harmonics more than the words, and test voices are new ones (docs/benchmarks.md).
    n_mfcc: int = 20
    n_mels: int = 64  # mel filters the MFCCs are taken from
    win_ms: float = 25.0  # analysis window
    hop_ms: float = 10.0  # frame step
    deltas: bool = True  # append first and second time derivatives (x3 features)
    utterance_norm: bool = True  # mean 0, variance 1 per feature over each utterance (False: raw MFCCs)
    trim_db: float = 40.0  # leading/trailing frames this far below the loudest frame are silence
    silence_peak: float = 1e-3  # a wave whose peak is below this is silent
    min_seconds: float = 0.3  # shorter speech (after trimming) is refused
    max_seconds: float = 30.0  # longer speech is cut to its first max_seconds

    @property
    def n_features(self) -> int:
        """Features per frame: F in (L, F)."""
        return self.n_mfcc * (3 if self.deltas else 1)


def trim_silence(wave: np.ndarray, cfg: SpeechFrontEndConfig, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Drop leading and trailing frames quieter than ``trim_db`` below the loudest frame."""
    hop = int(sr * cfg.hop_ms / 1000)
    n = len(wave) // hop
    if n < 2:
        return wave
    frames = wave[: n * hop].reshape(n, hop)
    db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(db > db.max() - cfg.trim_db)
    start, stop = loud[0] * hop, min(len(wave), (loud[-1] + 1) * hop)
    return wave[start:stop]


class _Mfcc:
    """torchaudio's MFCC transform, built once per configuration (building it allocates filter banks)."""

    _cache: dict[SpeechFrontEndConfig, torchaudio.transforms.MFCC] = {}

    @classmethod
    def get(cls, cfg: SpeechFrontEndConfig) -> torchaudio.transforms.MFCC:
        if cfg not in cls._cache:
            n_fft = int(SAMPLE_RATE * cfg.win_ms / 1000)
            cls._cache[cfg] = torchaudio.transforms.MFCC(
                sample_rate=SAMPLE_RATE,
                n_mfcc=cfg.n_mfcc,
                melkwargs={"n_fft": n_fft, "hop_length": int(SAMPLE_RATE * cfg.hop_ms / 1000), "n_mels": cfg.n_mels},
            )
        return cls._cache[cfg]


def mfcc(wave: np.ndarray, cfg: SpeechFrontEndConfig) -> torch.Tensor:
    """MFCC (+ deltas) of a 16 kHz wave, normalised per utterance (mean 0, variance 1 per feature) by default.

    Per-utterance normalisation removes the channel and level, which differ between voices,
    rooms and microphones far more than between words.

    Returns:
        ``(L, F)`` float32 tensor, F = ``cfg.n_features``.
    """
    with torch.no_grad():
        x = _Mfcc.get(cfg)(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)))  # (n_mfcc, L)
        if cfg.deltas:
            d1 = torchaudio.functional.compute_deltas(x)
            x = torch.cat([x, d1, torchaudio.functional.compute_deltas(d1)], dim=0)
        x = x.T.contiguous()
    return normalize_utterance(x) if cfg.utterance_norm else x


def normalize_utterance(x: torch.Tensor) -> torch.Tensor:
    """Per-utterance normalisation of an ``(L, F)`` sequence: mean 0, variance 1 per feature."""
    return (x - x.mean(dim=0, keepdim=True)) / (x.std(dim=0, keepdim=True) + 1e-5)


def prepare_wave(wave: np.ndarray, cfg: SpeechFrontEndConfig, name: str = "speech") -> np.ndarray:
    """Check and trim a 16 kHz wave: refuse silence and too-short speech, cut very long speech.

    Args:
        wave: float32 mono samples at 16 kHz.
        cfg: thresholds.
        name: what to call the input in messages (a file name, 'the recording').

    Raises:
        MediaError: the wave is silent or shorter than ``min_seconds`` once trimmed.
    """
    if wave.size == 0 or float(np.abs(wave).max()) < cfg.silence_peak:
        raise MediaError(f"{name}: silent (no speech found)")
    limit = int(cfg.max_seconds * SAMPLE_RATE)
    if len(wave) > limit:
        log.warning("%s: %.1f s long; using the first %.0f s", name, len(wave) / SAMPLE_RATE, cfg.max_seconds)
        wave = wave[:limit]
    trimmed = trim_silence(wave, cfg)
    if len(trimmed) < cfg.min_seconds * SAMPLE_RATE:
        raise MediaError(
            f"{name}: only {len(trimmed) / SAMPLE_RATE:.2f} s of sound; at least {cfg.min_seconds} s needed"
        )
    return trimmed


def speech_features(path: str | os.PathLike[str], cfg: SpeechFrontEndConfig = SpeechFrontEndConfig()) -> torch.Tensor:
    """Load an audio file and compute its ``(L, F)`` MFCC sequence.

    Raises:
        MediaError: missing, empty, corrupt or non-audio file, silence, or too short.
    """
    return mfcc(prepare_wave(load_audio(path), cfg, name=str(path)), cfg)


def collate_speech(sequences: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad ``(L_i, F)`` sequences into ``(B, L_max, F)`` with their lengths ``(B,)`` (int64)."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    return torch.nn.utils.rnn.pad_sequence(list(sequences), batch_first=True), lengths
