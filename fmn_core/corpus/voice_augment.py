"""Speaker and channel augmentation: make one synthetic voice sound like many people and devices.

DESIGN.md §3: on top of an engine's rate and pitch, every utterance gets a vocal-tract length of
its own (its formants move, its pitch does not), a random colouring (a few peaking and shelf
filters, as microphones and rooms colour a voice), and sometimes a telephone band. A TTS corpus
has a few dozen timbres; a model that hears each of them through many tracts and channels has
less reason to learn the timbres themselves. Everything is numpy/scipy and seeded by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_toeplitz
from scipy.signal import butter, istft, resample_poly, sosfilt, stft

from fmn_core.media.audio_io import SAMPLE_RATE


@dataclass(frozen=True)
class VoiceAugmentConfig:
    """Ranges of the speaker and channel augmentation, drawn per utterance."""

    warp_range: tuple[float, float] = (0.85, 1.15)  # vocal-tract-length factor: formants move by it
    eq_bands: tuple[int, int] = (1, 4)  # how many peaking filters (inclusive range)
    eq_gain_db: float = 8.0  # each peaking or shelf filter's gain is within +- this
    eq_q: tuple[float, float] = (0.5, 2.5)  # quality factor of the peaking filters
    eq_freq_hz: tuple[float, float] = (150.0, 6000.0)  # centre-frequency range (log-uniform)
    telephone_prob: float = 0.15  # share of utterances heard through a telephone
    telephone_band_hz: tuple[float, float] = (300.0, 3400.0)  # the telephone's pass band


_FRAME = 512  # STFT frame (32 ms at 16 kHz): resolves the harmonics of voices down to ~60 Hz
_HOP = 128
_LPC_ORDER = 18  # all-pole envelope order: about one pole pair per kHz at 16 kHz, plus two for the tilt
_WARP_KNEE = 0.8  # the warp is linear below this share of Nyquist, then bends to keep Nyquist fixed


def _warp_map(freqs: np.ndarray, alpha: float) -> np.ndarray:
    """Where each output frequency's envelope is read in the input (inverse piecewise-linear VTLP).

    As in Jaitly & Hinton's VTLP, frequencies scale by ``alpha`` up to a knee and then bend so
    that Nyquist stays Nyquist, so nothing is pushed out of (or pulled into) the band.
    """
    nyq = SAMPLE_RATE / 2
    knee = _WARP_KNEE * nyq * min(alpha, 1.0)  # in output frequency
    src_knee = knee / alpha
    above = src_knee + (freqs - knee) * (nyq - src_knee) / (nyq - knee)
    return np.where(freqs <= knee, freqs / alpha, above)


def _lpc_log_envelope(spec: np.ndarray) -> np.ndarray:
    """Log-magnitude all-pole (LPC) envelope of every STFT frame, shape as ``spec`` (bins, frames).

    LPC follows formant peaks and skips the harmonics between them; a cepstral envelope smooth
    enough to skip harmonics of a high voice (pitch period under 64 samples) blurs neighbouring
    formants (/a/'s 700 and 1200 Hz) into one hump, and then warping it moves nothing.
    """
    power = np.abs(spec) ** 2
    autocorr = np.fft.irfft(power, axis=0)[: _LPC_ORDER + 1]
    envelope = np.zeros(spec.shape)
    for t in range(spec.shape[1]):
        r = autocorr[:, t]
        if r[0] <= 1e-12:
            continue  # silence: a flat envelope, so the frame is left as it is
        r = r * np.exp(-0.5 * (0.002 * np.arange(len(r))) ** 2)  # a slight lag window keeps the poles stable
        r[0] *= 1 + 1e-6
        a = solve_toeplitz(r[:-1], -r[1:])
        envelope[:, t] = -np.log(np.abs(np.fft.rfft(np.concatenate([[1.0], a]), _FRAME)) + 1e-12)
    return envelope


def formant_warp(wave: np.ndarray, alpha: float) -> np.ndarray:
    """Move a voice's formants by ``alpha`` (> 1: a shorter vocal tract) and keep its pitch.

    The magnitude spectrum of each frame is split into its formant envelope (LPC) and the
    harmonic fine structure; only the envelope is warped, so the harmonics, and with them
    the pitch, stay where they were. The phase is kept.

    Args:
        wave: mono samples at ``SAMPLE_RATE``, shape (N,).
        alpha: warp factor; 1 returns the wave unchanged.

    Returns:
        float64 samples, shape (N,).
    """
    wave = np.asarray(wave, dtype=np.float64)
    if alpha == 1.0 or len(wave) < _FRAME:
        return wave
    _, _, spec = stft(wave, fs=SAMPLE_RATE, nperseg=_FRAME, noverlap=_FRAME - _HOP)
    envelope = _lpc_log_envelope(spec)
    freqs = np.fft.rfftfreq(_FRAME, 1 / SAMPLE_RATE)
    src_bins = _warp_map(freqs, alpha) / freqs[1]
    lo = np.clip(np.floor(src_bins).astype(int), 0, len(freqs) - 1)
    hi = np.clip(lo + 1, 0, len(freqs) - 1)
    frac = (src_bins - lo)[:, None]
    warped = envelope[lo] * (1 - frac) + envelope[hi] * frac
    _, out = istft(spec * np.exp(warped - envelope), fs=SAMPLE_RATE, nperseg=_FRAME, noverlap=_FRAME - _HOP)
    return out[: len(wave)] if len(out) >= len(wave) else np.pad(out, (0, len(wave) - len(out)))


def _peaking(freq: float, gain_db: float, q: float) -> np.ndarray:
    """RBJ audio-EQ-cookbook peaking filter as one second-order section."""
    a = 10 ** (gain_db / 40)
    w = 2 * math.pi * freq / SAMPLE_RATE
    alpha = math.sin(w) / (2 * q)
    b = [1 + alpha * a, -2 * math.cos(w), 1 - alpha * a]
    den = [1 + alpha / a, -2 * math.cos(w), 1 - alpha / a]
    return np.array([*b, *den]) / den[0]


def _shelf(freq: float, gain_db: float, high: bool) -> np.ndarray:
    """RBJ cookbook low or high shelf (slope 1) as one second-order section."""
    a = 10 ** (gain_db / 40)
    w = 2 * math.pi * freq / SAMPLE_RATE
    cos, alpha = math.cos(w), math.sin(w) / 2 * math.sqrt(2)
    sign = -1 if high else 1  # the high shelf is the low shelf with the cosine terms' signs swapped
    sq = 2 * math.sqrt(a) * alpha
    b = [a * ((a + 1) - sign * (a - 1) * cos + sq), sign * 2 * a * ((a - 1) - sign * (a + 1) * cos)]
    b.append(a * ((a + 1) - sign * (a - 1) * cos - sq))
    den = [(a + 1) + sign * (a - 1) * cos + sq, -sign * 2 * ((a - 1) + sign * (a + 1) * cos)]
    den.append((a + 1) + sign * (a - 1) * cos - sq)
    return np.array([*b, *den]) / den[0]


def random_eq(rng: np.random.Generator, cfg: VoiceAugmentConfig) -> tuple[np.ndarray, list[dict[str, float | str]]]:
    """A random colouring: a low shelf, a high shelf and a few peaking filters.

    Returns:
        Second-order sections, shape (K, 6), and each filter's settings.
    """
    lo_f, hi_f = (math.log(f) for f in cfg.eq_freq_hz)
    centres = [("low_shelf", rng.uniform(100, 400)), ("high_shelf", rng.uniform(2500, 6000))]
    centres += [("peak", math.exp(rng.uniform(lo_f, hi_f))) for _ in range(rng.integers(*cfg.eq_bands, endpoint=True))]
    sections, bands = [], []
    for kind, hz in centres:
        hz, db = round(float(hz), 1), round(float(rng.uniform(-cfg.eq_gain_db, cfg.eq_gain_db)), 2)
        band: dict[str, float | str] = {"kind": kind, "hz": hz, "db": db}
        if kind == "peak":
            q = round(float(rng.uniform(*cfg.eq_q)), 2)
            band["q"] = q
            sections.append(_peaking(hz, db, q))
        else:
            sections.append(_shelf(hz, db, high=kind == "high_shelf"))
        bands.append(band)
    return np.stack(sections), bands


def telephone(wave: np.ndarray, band_hz: tuple[float, float] = (300.0, 3400.0)) -> np.ndarray:
    """A telephone channel: down to 8 kHz and back (the codec's rate), then its pass band."""
    narrow = resample_poly(np.asarray(wave, dtype=np.float64), 1, 2)
    wide = resample_poly(narrow, 2, 1)[: len(wave)]
    sos = butter(4, band_hz, btype="bandpass", fs=SAMPLE_RATE, output="sos")
    narrowed: np.ndarray = sosfilt(sos, wide)  # scipy's sosfilt is untyped
    return narrowed


def speaker_augment(
    wave: np.ndarray, rng: np.random.Generator, cfg: VoiceAugmentConfig = VoiceAugmentConfig()
) -> tuple[np.ndarray, dict[str, float | str]]:
    """Give clean speech a vocal tract and a colouring of its own.

    Args:
        wave: clean speech at ``SAMPLE_RATE``, shape (N,).
        rng: the source of every random choice.
        cfg: the ranges drawn from.

    Returns:
        The changed wave (float64, shape (N,), its peak as before) and the parameters applied.
    """
    wave = np.asarray(wave, dtype=np.float64)
    alpha = round(float(rng.uniform(*cfg.warp_range)), 3)
    sos, bands = random_eq(rng, cfg)
    out = sosfilt(sos, formant_warp(wave, alpha))
    out *= (np.abs(wave).max() + 1e-12) / (np.abs(out).max() + 1e-12)
    params: dict[str, float | str] = {"vtlp": alpha, "eq_bands": len(bands)}
    for i, band in enumerate(bands):
        params.update({f"eq{i}_{k}": v for k, v in band.items()})
    return out, params


def channel_augment(
    x: np.ndarray, rng: np.random.Generator, cfg: VoiceAugmentConfig = VoiceAugmentConfig()
) -> tuple[np.ndarray, dict[str, float]]:
    """Sometimes pass a recording through a telephone; else leave it as it is.

    Returns:
        The wave (float64, shape (N,)) and ``{"telephone": 0 or 1}``.
    """
    if rng.random() < cfg.telephone_prob:
        return telephone(x, cfg.telephone_band_hz), {"telephone": 1}
    return np.asarray(x, dtype=np.float64), {"telephone": 0}
