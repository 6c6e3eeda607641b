"""Speech front end: load, trim silence, turn into frames, and batch variable lengths.

Two kinds of frames feed the Bi-LSTM (DESIGN §2.2): the paper's MFCCs with deltas, and the
frames of a frozen, pretrained Whisper encoder (``features/whisper.py``), which generalise to
voices the model never heard. Every query and training utterance goes through
:func:`speech_features` or :func:`wave_features`, so the app, the CLI and training see exactly
the same features. Bad input (silence, too short, not audio) is an error naming the file; very
long input is cut, with a warning, rather than refused.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from fmn_core.features import whisper
from fmn_core.media.audio_io import SAMPLE_RATE, load_audio
from fmn_core.media.errors import MediaError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeechFrontEndConfig:
    """How a wave becomes a frame sequence: MFCCs, or a pretrained encoder's frames."""

    # "mfcc" (the paper's), or a frozen Whisper encoder: "whisper-base" (English and Mandarin),
    # "whisper-tiny.en" (English only). The MFCC settings below apply to "mfcc" only.
    kind: str = "mfcc"
    # SHA-256 of the encoder's weights a model was trained on ("" for MFCC): a model refuses to
    # run on other weights, whose frames its Bi-LSTM has never seen.
    encoder_sha256: str = ""
    # Whisper only: pad the input with silence to this many seconds before encoding, as Whisper's
    # training always did, keeping the frames of the speech. 0 (default): the speech alone, 20x
    # cheaper for a 3 s phrase (docs/benchmarks.md measures both).
    context_seconds: float = 0.0
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
    max_seconds: float = 30.0  # longer speech is cut to its first max_seconds (Whisper reads at most 30 s)

    def __post_init__(self) -> None:
        if self.kind != "mfcc":
            whisper.model_info(self.kind)  # an unknown kind is an error here, not at the first query
            if self.max_seconds > whisper.MAX_SECONDS:
                raise ValueError(
                    f"{self.kind} reads at most {whisper.MAX_SECONDS:.0f} s; max_seconds={self.max_seconds}"
                )

    @property
    def n_features(self) -> int:
        """Features per frame: F in (L, F)."""
        if self.kind != "mfcc":
            return whisper.model_info(self.kind).dim
        return self.n_mfcc * (3 if self.deltas else 1)

    def check_installed(self) -> None:
        """Raise if this front end cannot run here, or would run other weights than the model's.

        Raises:
            FrontEndError: its packages are missing or damaged, or hold other weights than
                ``encoder_sha256``; the message says what differs and how to fix it.
        """
        if self.kind == "mfcc":
            return
        info = whisper.model_info(self.kind)
        if self.encoder_sha256 and self.encoder_sha256 != info.sha256:
            raise whisper.FrontEndError(
                f"this model was trained on {self.kind} weights with SHA-256 {self.encoder_sha256[:12]}..., "
                f"but the installed {self.kind} is {info.sha256[:12]}...: install the matching package or retrain"
            )
        whisper.model_dir(self.kind)

    def pinned(self) -> SpeechFrontEndConfig:
        """This configuration with the installed encoder's hash recorded (what training saves)."""
        if self.kind == "mfcc":
            return self
        return dataclasses.replace(self, encoder_sha256=whisper.model_info(self.kind).sha256)


FRONT_END_KINDS = ("mfcc", *whisper.MODELS)


def front_end_config(spec: str) -> SpeechFrontEndConfig:
    """A front end from its command-line name: ``mfcc``, ``whisper-base``, ``whisper-tiny.en``;
    ``KIND@30`` pads a Whisper input to 30 s.

    A Whisper encoder's frames are used as they come (its last layer is already normalised);
    MFCCs are normalised per utterance.

    Raises:
        FrontEndError: an unknown kind.
    """
    kind, _, context = spec.partition("@")
    kind = kind.strip()
    if kind == "mfcc":
        return SpeechFrontEndConfig()
    whisper.model_info(kind)
    return SpeechFrontEndConfig(kind=kind, utterance_norm=False, context_seconds=float(context or 0))


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


def wave_features(wave: np.ndarray, cfg: SpeechFrontEndConfig, device: str | None = None) -> torch.Tensor:
    """The ``(L, F)`` frames of a prepared 16 kHz wave (see :func:`prepare_wave`) under ``cfg``.

    Args:
        wave: float32 mono samples, already checked and trimmed.
        cfg: which front end.
        device: where a Whisper encoder runs ("cpu", "cuda"; None: CUDA when present). MFCCs ignore it.

    Raises:
        FrontEndError: a Whisper front end that is not installed or damaged.
    """
    if cfg.kind == "mfcc":
        return mfcc(wave, cfg)
    frames = whisper.encoder_frames(wave, cfg.kind, device, context_seconds=cfg.context_seconds)
    return normalize_utterance(frames) if cfg.utterance_norm else frames


def speech_features(
    path: str | os.PathLike[str],
    cfg: SpeechFrontEndConfig = SpeechFrontEndConfig(),
    device: str | None = None,
    segment: tuple[float, float | None] | None = None,
) -> torch.Tensor:
    """Load an audio file (or a ``(start, end)`` stretch of it) and compute its ``(L, F)`` frame sequence.

    Raises:
        MediaError: missing, empty, corrupt or non-audio file, silence, or too short.
        FrontEndError: a Whisper front end that is not installed or damaged.
    """
    return wave_features(prepare_wave(load_audio(path, segment=segment), cfg, name=str(path)), cfg, device)


def collate_speech(sequences: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad ``(L_i, F)`` sequences into ``(B, L_max, F)`` with their lengths ``(B,)`` (int64)."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    return torch.nn.utils.rnn.pad_sequence(list(sequences), batch_first=True), lengths
