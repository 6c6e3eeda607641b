"""Speech for the corpus: voices, synthesis, augmentation, rendering, and the audio files under them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fmn_core.corpus import kitchen_acoustics, speech, synthesis, voice_catalogue
from fmn_core.media.audio_io import SAMPLE_RATE, load_audio, resample, write_wav
from fmn_core.media.errors import MediaError

STATUS = voice_catalogue.engine_status()


def _needs(engine: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(STATUS[engine] is not None, reason=f"TTS engine {engine} missing: {STATUS[engine]}")


def _first_voice(engine: str, lang: str = "en") -> voice_catalogue.Voice:
    return next(v for v in voice_catalogue.voices(lang) if v.engine == engine)


def _fake_speech(seconds: float = 1.0) -> np.ndarray:
    """A voiced-looking test signal: a 150 Hz buzz with a syllable-rate envelope."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.5 * np.sign(np.sin(2 * np.pi * 150 * t)) * np.sin(np.pi * 4 * t) ** 2).astype(np.float32)


# --- catalogue --------------------------------------------------------------------------------


def test_engine_status_covers_every_engine() -> None:
    assert set(STATUS) == set(voice_catalogue.ENGINES)
    assert all(fix is None or "apt-get install" in fix for fix in STATUS.values())


@_needs("espeak")
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_voices_exist_sorted_and_unique(lang: str) -> None:
    voices = voice_catalogue.voices(lang)
    ids = [v.id for v in voices]
    assert len(voices) >= 10
    assert ids == sorted(set(ids))
    assert all(v.lang == lang and v.id.startswith(f"{v.engine}:") for v in voices)
    assert voice_catalogue.find_voice(ids[0]) == voices[0]


def test_unknown_language_and_voice_are_refused() -> None:
    with pytest.raises(ValueError, match="fr"):
        voice_catalogue.voices("fr")
    with pytest.raises(voice_catalogue.SpeechError, match="espeak:nobody"):
        voice_catalogue.find_voice("espeak:nobody")


@_needs("espeak")
def test_mandarin_voices_read_han_characters_as_mandarin() -> None:
    for voice in voice_catalogue.voices("zh"):
        if voice.engine == "kokoro":  # misaki's pinyin IPA: every syllable carries a tone mark
            phonemes = voice_catalogue.kokoro_engine.phonemes("往煎锅里倒油")
            assert sum(ch in "→↗↓↘" for ch in phonemes) == 6, phonemes
            continue
        phonemes = subprocess.run(
            ["espeak-ng", "-q", "-x", "-b", "1", "--stdin", "-v", voice.name],
            input="往煎锅里倒油".encode(),
            capture_output=True,
            check=True,
        ).stdout.decode()
        assert "(en)" not in phonemes, f"{voice.id} spells Han characters as English: {phonemes}"


# --- synthesis --------------------------------------------------------------------------------


def _assert_speech(wave: np.ndarray, min_s: float, max_s: float) -> None:
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert min_s < len(wave) / SAMPLE_RATE < max_s
    assert np.sqrt(np.mean(wave**2)) > 0.01 and np.abs(wave).max() <= 1.0


@pytest.mark.parametrize("engine", [pytest.param(e, marks=_needs(e)) for e in voice_catalogue.ENGINES])
def test_synthesis_per_engine(engine: str) -> None:
    lang = voice_catalogue.ENGINES[engine].langs[0]
    text = "cut the onion" if lang == "en" else "切洋葱"
    _assert_speech(synthesis.synthesize(text, _first_voice(engine, lang)), 0.4, 3.0)


@_needs("espeak")
def test_mandarin_synthesis_has_a_plausible_length() -> None:
    # Seven syllables: about 0.15-0.5 s each when spoken as Mandarin.
    _assert_speech(synthesis.synthesize("现在我在切洋葱", _first_voice("espeak", "zh")), 1.0, 3.5)


@_needs("espeak")
def test_rate_and_pitch_are_applied() -> None:
    voice = _first_voice("espeak")
    slow = synthesis.synthesize("pour the oil into the frying pan", voice, rate=0.8)
    fast = synthesis.synthesize("pour the oil into the frying pan", voice, rate=1.25)
    assert len(fast) < 0.85 * len(slow)
    higher = synthesis.synthesize("cut the onion", voice, pitch=1.2)
    assert not np.array_equal(higher, synthesis.synthesize("cut the onion", voice))


@_needs("espeak")
def test_nothing_to_say_is_a_speech_error() -> None:
    with pytest.raises(voice_catalogue.SpeechError, match="espeak"):
        synthesis.synthesize("   ", _first_voice("espeak"))


# --- augmentation and rendering ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_augment_lengthens_never_clips_and_reports(seed: int) -> None:
    clean = _fake_speech()
    wave, params = kitchen_acoustics.augment(clean, np.random.default_rng(seed))
    assert wave.dtype == np.float32 and len(wave) >= len(clean)
    assert np.isfinite(wave).all() and np.abs(wave).max() <= 0.99 + 1e-6
    assert kitchen_acoustics.SNR_DB[0] <= params["snr_db"] <= kitchen_acoustics.SNR_DB[1]
    expected = len(clean) + round(params["lead_s"] * SAMPLE_RATE) + round(params["trail_s"] * SAMPLE_RATE)
    assert len(wave) == expected


@_needs("espeak")
def test_render_utterance_is_deterministic_and_seeded() -> None:
    voice = _first_voice("espeak")
    first, params = speech.render_utterance("stir in the bowl", voice, seed=5)
    again, params_again = speech.render_utterance("stir in the bowl", voice, seed=5)
    other, params_other = speech.render_utterance("stir in the bowl", voice, seed=6)
    assert np.array_equal(first, again) and params == params_again
    assert params != params_other and (len(first) != len(other) or not np.array_equal(first, other))
    assert params["voice"] == voice.id and speech.RATE_RANGE[0] <= params["rate"] <= speech.RATE_RANGE[1]


def test_wider_speaker_ranges_move_pitch_and_vocal_tract_further() -> None:
    """Same seed, wider ranges: the rate and colouring drawn before are the same, pitch and vocal
    tract are drawn in the wider ranges."""
    voice = _first_voice("espeak")
    _, plain = speech.render_utterance("stir in the bowl", voice, seed=5)
    _, wide = speech.render_utterance("stir in the bowl", voice, seed=5, ranges=speech.SpeakerRanges(7.0, (0.8, 1.2)))
    same = [k for k in plain if k == "rate" or k.startswith("eq")]
    assert same and all(plain[k] == wide[k] for k in same)
    assert plain["pitch"] != wide["pitch"] and plain["vtlp"] != wide["vtlp"]
    assert 2 ** (-7 / 12) <= float(wide["pitch"]) <= 2 ** (7 / 12) and 0.8 <= float(wide["vtlp"]) <= 1.2
    with pytest.raises(ValueError, match="speaker ranges"):
        speech.SpeakerRanges(3.0, (1.2, 0.9))


# --- audio files ------------------------------------------------------------------------------


def test_load_audio_downmixes_and_resamples(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 440 * t)], axis=1)
    sf.write(tmp_path / "a.wav", stereo, 44100)
    wave = load_audio(tmp_path / "a.wav")
    assert wave.dtype == np.float32 and wave.shape == (SAMPLE_RATE,)
    assert np.argmax(np.abs(np.fft.rfft(wave))) == 440  # 1 s long: bin k is k Hz
    assert np.abs(wave).max() == pytest.approx(0.4, abs=0.01)


def test_write_wav_round_trips_atomically(tmp_path: Path) -> None:
    wave = _fake_speech(0.5)
    write_wav(tmp_path / "sub" / "b.wav", wave)
    info = sf.info(tmp_path / "sub" / "b.wav")
    assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
    assert np.allclose(load_audio(tmp_path / "sub" / "b.wav"), wave, atol=1e-4)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["b.wav"]


def test_resample_length() -> None:
    assert len(resample(np.zeros(22050, dtype=np.float32), 22050, SAMPLE_RATE)) == SAMPLE_RATE


@pytest.mark.parametrize(
    ("sr_in", "sr_out", "n"),
    [
        (22050, 16000, 22050),
        (48000, 16000, 4801),
        (44100, 16000, 999),
        (8000, 16000, 8000),
        (16000, 22050, 7),
        (11025, 16000, 1),
    ],
)
def test_resample_is_scipys_polyphase_filter_without_scipy(sr_in: int, sr_out: int, n: int) -> None:
    from scipy.signal import resample_poly  # the reference (resample itself must not import scipy.signal)

    wave = np.random.default_rng(n).uniform(-1, 1, n).astype(np.float32)
    g = np.gcd(sr_in, sr_out)
    expected = resample_poly(wave, sr_out // g, sr_in // g)
    got = resample(wave, sr_in, sr_out)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected).max() < 5e-6


@pytest.mark.parametrize("content", [b"", b"this is not audio at all" * 10, None, "zero frames"])
def test_load_audio_refuses_bad_files_naming_them(tmp_path: Path, content: bytes | str | None) -> None:
    path = tmp_path / "broken.wav"
    if content == "zero frames":
        sf.write(path, np.zeros(0), SAMPLE_RATE)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(MediaError, match="broken.wav"):
        load_audio(path)
