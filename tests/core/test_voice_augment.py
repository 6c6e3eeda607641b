"""Speaker and channel augmentation move formants (not pitch), colour the spectrum, and are seeded."""

from __future__ import annotations

import numpy as np
from scipy.signal import sosfreqz, welch

from fmn_core.corpus import voice_augment
from fmn_core.corpus.voice_augment import VoiceAugmentConfig, formant_warp, random_eq, speaker_augment, telephone

SR = 16000


def _vowel(
    f0: float = 120.0, formants: tuple[float, ...] = (700.0, 1200.0, 2600.0), seconds: float = 1.0
) -> np.ndarray:
    """A steady synthetic vowel: a harmonic pulse train through formant resonances."""
    t = np.arange(int(seconds * SR)) / SR
    wave = np.zeros_like(t)
    for k in range(1, int(7000 / f0)):
        gain = sum(1 / (1 + ((k * f0 - f) / 90) ** 2) for f in formants)
        wave += gain * np.sin(2 * np.pi * k * f0 * t)
    return wave / np.abs(wave).max()


def _spectrum(wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return welch(wave, fs=SR, nperseg=2048)


def _first_formant(wave: np.ndarray) -> float:
    freqs, power = _spectrum(wave)
    band = (freqs > 300) & (freqs < 1000)
    envelope = np.convolve(power[band], np.ones(15) / 15, mode="same")  # smooth over harmonics
    return float(freqs[band][np.argmax(envelope)])


def _f0(wave: np.ndarray) -> float:
    freqs, power = _spectrum(wave)
    band = (freqs > 60) & (freqs < 300)
    return float(freqs[band][np.argmax(power[band])])


def test_formant_warp_moves_formants_and_keeps_pitch() -> None:
    vowel = _vowel()
    f1 = _first_formant(vowel)
    up, down = formant_warp(vowel, 1.15), formant_warp(vowel, 0.87)
    assert _first_formant(up) > f1 * 1.07
    assert _first_formant(down) < f1 * 0.93
    for warped in (up, down):
        assert abs(_f0(warped) - _f0(vowel)) < 10  # the harmonics stayed put
        assert len(warped) == len(vowel)
    assert np.allclose(formant_warp(vowel, 1.0), vowel)


def test_random_eq_shapes_the_spectrum_as_it_reports() -> None:
    sos, bands = random_eq(np.random.default_rng(4), VoiceAugmentConfig())
    assert [b["kind"] for b in bands[:2]] == ["low_shelf", "high_shelf"] and len(bands) >= 3
    for section, band in zip(sos, bands, strict=True):
        # a peaking filter has its gain at its centre; a shelf reaches its gain far past its corner
        at = float(band["hz"]) if band["kind"] == "peak" else 20.0 if band["kind"] == "low_shelf" else 7900.0
        _, response = sosfreqz(section[None, :], worN=[at], fs=SR)
        assert np.isclose(20 * np.log10(abs(response[0])), float(band["db"]), atol=0.6), band


def test_telephone_keeps_only_its_band() -> None:
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(SR * 2)
    freqs, before = _spectrum(noise)
    _, after = _spectrum(telephone(noise))
    gain = 10 * np.log10(after / before)
    assert np.median(gain[(freqs > 600) & (freqs < 3000)]) > -3
    assert np.median(gain[freqs > 4200]) < -30 and np.median(gain[freqs < 120]) < -20


def test_speaker_augment_is_seeded_and_reports_its_settings() -> None:
    vowel = _vowel()
    a, pa = speaker_augment(vowel, np.random.default_rng(7))
    b, pb = speaker_augment(vowel, np.random.default_rng(7))
    c, pc = speaker_augment(vowel, np.random.default_rng(8))
    assert np.array_equal(a, b) and pa == pb
    assert not np.allclose(a, c) and pa != pc
    assert 0.85 <= float(pa["vtlp"]) <= 1.15 and pa["eq_bands"] == sum(k.endswith("_kind") for k in pa)
    assert np.isclose(np.abs(a).max(), np.abs(vowel).max())  # level is left to the kitchen augmentation


def test_channel_augment_uses_the_telephone_sometimes() -> None:
    cfg = VoiceAugmentConfig()
    used = [
        voice_augment.channel_augment(np.ones(800), np.random.default_rng(s), cfg)[1]["telephone"] for s in range(400)
    ]
    assert 0.08 < np.mean(used) < 0.22
