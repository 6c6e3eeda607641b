"""Kitchen acoustics: make clean synthetic speech sound recorded in a kitchen.

DESIGN.md §3: leading and trailing silence, a room (most of the time), kitchen noise (coloured
noise, sometimes a fan hum, pot clatter and frying sizzle) at a random SNR, sometimes a telephone
channel (``voice_augment``), and a random level that never clips. Pure numpy/scipy: every random
draw comes from the caller's generator.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import fftconvolve

from fmn_core.corpus.voice_augment import channel_augment
from fmn_core.media.audio_io import SAMPLE_RATE

SNR_DB = (10.0, 30.0)  # speech-to-kitchen-noise ratio
SILENCE_S = (0.05, 0.6)  # leading and trailing silence, each
REVERB_PROB = 0.7  # share of utterances given a room
RT60_S = (0.15, 0.8)  # reverberation time of that room
DRR_DB = (0.0, 12.0)  # direct-to-reverberant ratio
PEAK_DBFS = (-20.0, 20 * math.log10(0.99))  # final peak level: random gain that never clips


def _active_power(wave: np.ndarray, frame: int = 320) -> float:
    """Mean power of the frames within 40 dB of the loudest: speech level without its pauses."""
    n = len(wave) // frame * frame
    frames = wave[:n].reshape(-1, frame) if n else wave[None, :]
    power = (frames.astype(np.float64) ** 2).mean(axis=1)
    return float(power[power >= power.max() * 1e-4].mean()) + 1e-12


def _coloured_noise(n: int, beta: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise with a 1/f^beta power spectrum (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)  # no DC blow-up
    noise = np.fft.irfft(spectrum * freqs ** (-beta / 2), n)
    unit: np.ndarray = noise / (noise.std() + 1e-12)  # numpy's stubs give Any here
    return unit


def _clatter(rng: np.random.Generator) -> np.ndarray:
    """A pot, lid or utensil knock: a click exciting a few decaying metallic partials."""
    t = np.arange(int(rng.uniform(0.08, 0.35) * SAMPLE_RATE)) / SAMPLE_RATE
    partials = sum(
        np.sin(2 * np.pi * rng.uniform(700, 6000) * t + rng.uniform(0, 2 * np.pi)) * np.exp(-t / rng.uniform(0.01, 0.1))
        for _ in range(rng.integers(3, 7))
    )
    click = rng.standard_normal(len(t)) * np.exp(-t / 0.004)
    burst = partials + 2 * click
    peak_normalised: np.ndarray = burst / (np.abs(burst).max() + 1e-12)  # numpy's stubs give Any here
    return peak_normalised


def _sizzle(rng: np.random.Generator) -> np.ndarray:
    """Frying: bright hiss whose level crackles with random pops."""
    n = int(rng.uniform(0.3, 1.5) * SAMPLE_RATE)
    hiss = np.diff(rng.standard_normal(n + 1))  # differencing tilts the spectrum up, as frying sounds
    pops = fftconvolve((rng.random(n) < 40 / SAMPLE_RATE).astype(float), np.exp(-np.arange(160) / 30.0))[:n]
    burst = hiss * (0.3 + pops) * np.hanning(n)
    peak_normalised: np.ndarray = burst / (np.abs(burst).max() + 1e-12)  # scipy's fftconvolve is untyped
    return peak_normalised


def _hum(n: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """An extractor fan or fridge: a low tone with a few harmonics."""
    f0 = rng.uniform(50, 150)
    t = np.arange(n) / SAMPLE_RATE
    tone = np.zeros(n)  # summed in a loop, not with sum(), so the type is an array and not "array or 0"
    for k in range(1, 5):
        tone += np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k
    unit: np.ndarray = tone / (np.std(tone) + 1e-12)
    return unit, float(f0)


def kitchen_noise(n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
    """Kitchen background of ``n`` samples at unit power, with what went into it.

    Coloured noise, sometimes a fan hum, and a random number of clatter and sizzle events.
    """
    beta = rng.uniform(0.0, 2.0)
    noise = _coloured_noise(n, beta, rng)
    hum_hz = 0.0
    if rng.random() < 0.3:
        hum, hum_hz = _hum(n, rng)
        noise += rng.uniform(0.2, 1.0) * hum
    counts = {"clatter": 0, "sizzle": 0}
    for _ in range(rng.poisson(0.6 * n / SAMPLE_RATE)):
        kind = "clatter" if rng.random() < 0.6 else "sizzle"
        burst = (_clatter if kind == "clatter" else _sizzle)(rng)[:n]
        start = rng.integers(0, n - len(burst) + 1)
        noise[start : start + len(burst)] += rng.uniform(2.0, 8.0) * burst
        counts[kind] += 1
    noise /= np.sqrt(np.mean(noise**2)) + 1e-12
    return noise, {
        "noise_beta": round(float(beta), 3),
        "hum_hz": round(hum_hz, 1),
        "clatters": counts["clatter"],
        "sizzles": counts["sizzle"],
    }


def _reverberate(x: np.ndarray, rt60: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room: direct path plus exponentially decaying noise (60 dB in rt60)."""
    t = np.arange(1, int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    tail = rng.standard_normal(len(t)) * np.exp(-math.log(1000) * t / rt60)
    tail *= 10 ** (-drr_db / 20) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    ir = np.concatenate([[1.0], tail])
    # The tail rings on into the trailing silence; what would spill past the end is cut.
    wet: np.ndarray = fftconvolve(x, ir)[: len(x)]  # scipy's fftconvolve is untyped
    return wet


def augment(wave: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
    """Make clean speech sound recorded in a kitchen.

    Adds leading and trailing silence, a room (most of the time), kitchen noise at a random SNR,
    sometimes a telephone channel, and sets a random level whose peak stays at or below 0.99.

    Args:
        wave: clean speech at ``SAMPLE_RATE``, shape (N,).
        rng: the source of every random choice.

    Returns:
        The augmented wave (float32, shape (M,), M > N) and the parameters applied.
    """
    wave = np.asarray(wave, dtype=np.float64)
    lead, trail = (round(float(s), 3) for s in rng.uniform(*SILENCE_S, size=2))
    x = np.concatenate([np.zeros(round(lead * SAMPLE_RATE)), wave, np.zeros(round(trail * SAMPLE_RATE))])
    rt60 = drr_db = 0.0
    if rng.random() < REVERB_PROB:
        rt60, drr_db = round(float(rng.uniform(*RT60_S)), 3), round(float(rng.uniform(*DRR_DB)), 2)
        x = _reverberate(x, rt60, drr_db, rng)
    noise, noise_params = kitchen_noise(len(x), rng)
    snr_db = round(float(rng.uniform(*SNR_DB)), 2)
    x = x + noise * math.sqrt(_active_power(wave) / 10 ** (snr_db / 10))
    x, channel = channel_augment(x, rng)  # the phone hears the room and the kitchen too
    peak_dbfs = round(float(rng.uniform(*PEAK_DBFS)), 2)
    x *= 10 ** (peak_dbfs / 20) / (np.abs(x).max() + 1e-12)
    params = {
        "lead_s": lead,
        "trail_s": trail,
        "rt60_s": rt60,
        "drr_db": drr_db,
        "snr_db": snr_db,
        "peak_dbfs": peak_dbfs,
        **noise_params,
        **channel,
    }
    return x.astype(np.float32), params
