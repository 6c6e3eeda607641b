"""Synthetic speech for the cooking corpus: TTS voices, rendering and kitchen augmentation.

DESIGN.md §3: every phrasing of a class is spoken by many voices of the installed engines
(espeak-ng dialects × variants, flite and festival voices, Piper neural voices) at varied rate
and pitch, given a vocal tract and a colouring of its own (``voice_augment``), then made to
sound recorded in a kitchen (noise, clatter, reverb, level, silences, sometimes a telephone).
All output is 16 kHz float32 mono, and a rendering is a pure function of (text, voice, seed):
the engines are deterministic (Piper's noise is seeded) and every random draw comes from the seed.

Every voice belongs to a *family*, the unit a held-out split keeps whole: a synthesis method
(espeak-ng's formant voices, its Klatt voices, diphone concatenation, statistical parametric
voices, a neural voice). Families are drawn so that no recorded speaker is in two of them: kal
is a diphone voice in flite and in festival, slt a parametric one in both (flite's clustergen,
festival's HTS), so a split can hold a family out without hearing its speakers elsewhere.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from fmn_core.corpus import piper_engine
from fmn_core.corpus.voice_augment import channel_augment, speaker_augment
from fmn_core.errors import FmnError
from fmn_core.media.audio_io import SAMPLE_RATE, read_audio, resample
from fmn_core.media.errors import MediaError

LANGS = ("en", "zh")
RATE_RANGE = (0.8, 1.25)  # speaking-rate factor drawn per utterance (1 = the engine's default)
PITCH_SEMITONES = (-3.0, 3.0)  # pitch shift drawn per utterance, in semitones
SNR_DB = (10.0, 30.0)  # speech-to-kitchen-noise ratio
SILENCE_S = (0.05, 0.6)  # leading and trailing silence, each
REVERB_PROB = 0.7  # share of utterances given a room
RT60_S = (0.15, 0.8)  # reverberation time of that room
DRR_DB = (0.0, 12.0)  # direct-to-reverberant ratio
PEAK_DBFS = (-20.0, 20 * math.log10(0.99))  # final peak level: random gain that never clips
_SILENT_PEAK = 1e-3  # an engine output quieter than this everywhere is a failure, not speech
_MIN_SPEECH_S = 0.1
_TIMEOUT_S = 60


class SpeechError(FmnError):
    """A TTS engine that failed or produced silence; the message names engine, voice and text."""


@dataclass(frozen=True)
class Engine:
    """A TTS program and how to get it."""

    name: str  # the engine's key in voice ids: "espeak", "flite", "festival", "piper"
    program: str  # the executable run for synthesis; "" for an engine run in-process
    install: str  # one line telling a user how to install it
    langs: tuple[str, ...]  # languages its catalogue covers


@dataclass(frozen=True)
class Voice:
    """One voice of the catalogue: an engine, its own voice name, and the language it speaks."""

    id: str  # stable catalogue key "engine:name", e.g. "espeak:en-us+m3", "flite:slt"
    engine: str  # key of ENGINES
    lang: str  # "en" or "zh"
    name: str  # the engine's own name: "gmw/en-US+m3", "slt", "kal_diphone"
    speaker: str  # the timbre behind it: voices sharing one should not straddle train and test
    native_pitch: bool = True  # False: the engine ignores pitch settings; pitch is shifted by resampling
    family: str = ""  # the voice family a held-out split keeps whole (see FAMILIES)


ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        Engine("espeak", "espeak-ng", "apt-get install espeak-ng", ("en", "zh")),
        Engine("flite", "flite", "apt-get install flite", ("en",)),
        Engine(
            "festival",
            "text2wave",
            "apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
            ("en",),
        ),
        Engine("piper", "", piper_engine.INSTALL, ("en",)),
    )
}

# The voice families and what each is. Mandarin has only espeak-ng's cmn voices, so its families
# are that one engine's voice lines (male timbres, female timbres, Klatt): Mandarin can hold out
# new voice lines of a known engine, never a new engine.
FAMILIES = {
    "espeak": "espeak-ng formant voices, male and female timbres (m1-m7, f1-f4), every English dialect",
    "espeak-klatt": "espeak-ng's Klatt synthesizer voices (klatt, klatt2, klatt3), every English dialect",
    "diphone": "diphone concatenation of recorded speech: flite kal, kal16; festival kal, ked (rab, don)",
    "parametric": "statistical parametric voices: flite clustergen awb, rms, slt; festival HTS slt",
    "piper": "Piper neural (VITS) voices: joe",
    "espeak-zh-m": "espeak-ng Mandarin, male timbres m1-m7",
    "espeak-zh-f": "espeak-ng Mandarin, female timbres f1-f4",
    "espeak-zh-klatt": "espeak-ng Mandarin, Klatt voices",
}

# Variants are espeak-ng's timbres (a dialect changes only pronunciation); these are its natural-
# sounding ones, the rest of its list being novelty voices (robots, whispers, characters).
_ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt2", "klatt3")
# espeak-ng 1.51's "cmn" spells the pinyin of Han characters with English letter rules; only voices
# that say this probe without switching to English ("(en)" in the phonemes) count as Mandarin.
_ESPEAK_ZH_CANDIDATES = ("cmn", "cmn-latn-pinyin")
_ZH_PROBE = "切洋葱"
_ESPEAK_WPM = 175  # espeak-ng's default speaking rate
# espeak-ng's -p (0-99, default 50) moves f0 about an octave per 65 steps (measured on en-us and f2).
_ESPEAK_PITCH_STEPS_PER_OCTAVE = 65
# flite's clustergen voice rms ignores f0_shift (measured), so its pitch is shifted by resampling.
_FLITE_FIXED_F0 = frozenset({"rms"})
_FESTIVAL_VOICE_ROOTS = (Path("/usr/share/festival/voices"), Path("/usr/local/share/festival/voices"))
_FESTIVAL_EN_FOLDERS = frozenset({"english", "us", "british"})
# The same recorded speaker packaged for several engines or rates.
_SPEAKER_ALIASES = {
    "kal16": "kal",
    "kal_diphone": "kal",
    "ked_diphone": "ked",
    "rab_diphone": "rab",
    "don_diphone": "don",
    "cmu_us_slt_arctic_hts": "slt",
}
# flite's diphone voices; its others (awb, rms, slt) are clustergen, a statistical parametric method.
_FLITE_DIPHONE = frozenset({"kal", "kal16"})


def _run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a program without a shell; UTF-8 text on stdin, output captured."""
    data = stdin.encode("utf-8") if stdin is not None else None
    return subprocess.run(cmd, input=data, capture_output=True, timeout=_TIMEOUT_S, check=False)


def _probe(cmd: list[str], stdin: str | None = None) -> str:
    """Stdout of a detection command, or "" when it cannot run: detection never raises."""
    try:
        done = _run(cmd, stdin)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else ""


# --- catalogue ------------------------------------------------------------------------------


@functools.cache
def _espeak_variants() -> tuple[str, ...]:
    listing = _probe(["espeak-ng", "--voices=variant"])
    files = {cols[4] for cols in (line.split() for line in listing.splitlines()[1:]) if len(cols) >= 5}
    return tuple(v for v in _ESPEAK_VARIANTS if f"!v/{v}" in files)


@functools.cache
def _espeak_dialects(query: str) -> dict[str, str]:
    """espeak-ng's own voices for a language query: language code -> voice file, e.g. en-gb -> gmw/en."""
    dialects: dict[str, str] = {}
    for cols in (line.split() for line in _probe(["espeak-ng", f"--voices={query}"]).splitlines()[1:]):
        # mb/ voices need the separate MBROLA synthesizer and its databases.
        if len(cols) >= 5 and not cols[4].startswith("mb/") and cols[4] not in dialects.values():
            dialects.setdefault(cols[1], cols[4])
    return dialects


def _speaks_mandarin(voice_file: str) -> bool:
    phonemes = _probe(["espeak-ng", "-q", "-x", "-b", "1", "--stdin", "-v", voice_file], _ZH_PROBE)
    return bool(phonemes.strip()) and "(en)" not in phonemes


@functools.cache
def _espeak_voices() -> tuple[Voice, ...]:
    if shutil.which(ENGINES["espeak"].program) is None:
        return ()
    en = [("en", code, file) for code, file in _espeak_dialects("en").items() if code.startswith("en")]
    zh = [
        ("zh", code, file)
        for code, file in _espeak_dialects("cmn").items()
        if code in _ESPEAK_ZH_CANDIDATES and _speaks_mandarin(file)
    ]
    # Voices are named by file: espeak-ng 1.51 drops a variant appended to a language alias
    # ("en-gb+f2" sounds like plain en-gb), but not one appended to the file ("gmw/en+f2").
    return tuple(
        Voice(f"espeak:{code}+{v}", "espeak", lang, f"{file}+{v}", f"espeak+{v}", family=_espeak_family(lang, v))
        for lang, code, file in sorted(en + zh)
        for v in _espeak_variants()
    )


def _espeak_family(lang: str, variant: str) -> str:
    line = "klatt" if variant.startswith("klatt") else variant[0]  # "m", "f" or "klatt"
    if lang == "zh":
        return f"espeak-zh-{line}"
    return "espeak-klatt" if line == "klatt" else "espeak"


@functools.cache
def _flite_voices() -> tuple[Voice, ...]:
    listing = _probe(["flite", "-lv"])
    names = listing.partition(":")[2].split()
    # *_time voices are limited-domain: they can only say the time of day.
    return tuple(
        Voice(
            f"flite:{n}",
            "flite",
            "en",
            n,
            _SPEAKER_ALIASES.get(n, n),
            native_pitch=n not in _FLITE_FIXED_F0,
            family="diphone" if n in _FLITE_DIPHONE else "parametric",
        )
        for n in sorted(names)
        if not n.endswith("_time")
    )


def _festival_voice_names() -> list[str]:
    """Installed festival voices: <root>/<language folder>/<name>/festvox/<name>.scm."""
    return sorted(
        {
            scm.stem
            for root in _FESTIVAL_VOICE_ROOTS
            for scm in root.glob("*/*/festvox/*.scm")
            if scm.stem == scm.parent.parent.name and scm.parent.parent.parent.name in _FESTIVAL_EN_FOLDERS
        }
    )


@functools.cache
def _festival_voices() -> tuple[Voice, ...]:
    if shutil.which(ENGINES["festival"].program) is None:
        return ()
    return tuple(
        Voice(
            f"festival:{n}",
            "festival",
            "en",
            n,
            _SPEAKER_ALIASES.get(n, n),
            native_pitch=_festival_pitch_expr(n, 1.0) is not None,
            family=_festival_family(n),
        )
        for n in _festival_voice_names()
    )


def _festival_family(name: str) -> str:
    if name.endswith("_diphone"):
        return "diphone"
    if name.endswith("_hts"):
        return "parametric"
    # Unit-selection (clunits, multisyn) voices are a method of their own.
    return f"festival-{name}"


@functools.cache
def _piper_voices() -> tuple[Voice, ...]:
    # Piper's VITS takes no pitch setting; pitch is shifted by resampling.
    return tuple(
        Voice(f"piper:{m.name}", "piper", m.lang, m.name, m.name, native_pitch=False, family="piper")
        for m in piper_engine.installed_models()
    )


_CATALOGUES: dict[str, Callable[[], tuple[Voice, ...]]] = {
    "espeak": _espeak_voices,
    "flite": _flite_voices,
    "festival": _festival_voices,
    "piper": _piper_voices,
}


@functools.cache
def engine_status() -> dict[str, str | None]:
    """Which TTS engines are usable here.

    Returns:
        engine name -> None when it is installed and has voices, else a one-line how-to-install.
    """
    status: dict[str, str | None] = {}
    for name, engine in ENGINES.items():
        what = engine.program or name
        if engine.program and shutil.which(engine.program) is None:
            status[name] = f"{engine.program} not found: {engine.install}"
        elif not engine.program and piper_engine.missing():
            status[name] = piper_engine.missing()
        elif not _CATALOGUES[name]():
            status[name] = f"{what} has no usable voices: {engine.install}"
        else:
            status[name] = None
    return status


def voices(lang: str) -> list[Voice]:
    """The usable voices of a language on this machine, sorted by id.

    Args:
        lang: "en" or "zh".

    Raises:
        ValueError: an unknown language.
    """
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: valid languages are {', '.join(LANGS)}")
    return sorted((v for catalogue in _CATALOGUES.values() for v in catalogue() if v.lang == lang), key=lambda v: v.id)


def find_voice(voice_id: str) -> Voice:
    """The catalogue voice with this id (as stored in a manifest's ``voice`` column).

    Raises:
        SpeechError: no usable voice has that id; the message says what its engine needs.
    """
    for catalogue in _CATALOGUES.values():
        for voice in catalogue():
            if voice.id == voice_id:
                return voice
    engine = voice_id.partition(":")[0]
    if engine not in ENGINES:
        raise SpeechError(f"unknown voice {voice_id!r}: voice ids start with one of {', '.join(ENGINES)}")
    hint = engine_status()[engine] or f"{engine} is installed but has no such voice"
    raise SpeechError(f"unknown voice {voice_id!r}: {hint}")


# --- synthesis ------------------------------------------------------------------------------


def _espeak_command(text: str, voice: Voice, rate: float, pitch: float, out: Path) -> tuple[list[str], str | None]:
    wpm = round(_ESPEAK_WPM * rate)
    steps = round(50 + _ESPEAK_PITCH_STEPS_PER_OCTAVE * math.log2(pitch))
    # Text goes through stdin as UTF-8 (-b 1) so neither the locale nor a leading "-" can garble it.
    cmd = ["espeak-ng", "-b", "1", "--stdin", "-v", voice.name, "-s", str(wpm), "-p", str(min(max(steps, 0), 99))]
    return [*cmd, "-w", str(out)], text


def _flite_command(text: str, voice: Voice, rate: float, pitch: float, out: Path) -> tuple[list[str], str | None]:
    settings = ["--setf", f"duration_stretch={1 / rate:.4f}", "--setf", f"f0_shift={pitch:.4f}"]
    return ["flite", "-voice", voice.name, *settings, "-t", text, "-o", str(out)], None


def _festival_pitch_expr(name: str, pitch: float) -> str | None:
    """Scheme that scales a festival voice's pitch, or None for voice types without a known handle.

    Festival 2.5's HTS front end passes only -m and -r to the engine (no half-tone shift), so HTS
    voices have no pitch handle.
    """
    if name.endswith("_diphone"):
        # Diphone voices place f0 targets by linear regression towards these mean and spread (Hz).
        scaled = " ".join(
            f"(list '{key} (* {pitch:.4f} (car (cdr (assoc '{key} int_lr_params)))))"
            for key in ("target_f0_mean", "target_f0_std")
        )
        kept = "(assoc 'model_f0_mean int_lr_params) (assoc 'model_f0_std int_lr_params)"
        return f"(set! int_lr_params (list {scaled} {kept}))"
    return None


def _festival_command(text: str, voice: Voice, rate: float, pitch: float, out: Path) -> tuple[list[str], str | None]:
    evals = [f"(voice_{voice.name})"]
    if voice.name.endswith("_hts"):  # the HTS engine ignores Duration_Stretch and has its own speed
        evals.append(f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {rate:.4f}))))')
    else:
        evals.append(f"(Parameter.set 'Duration_Stretch {1 / rate:.4f})")
    pitch_expr = _festival_pitch_expr(voice.name, pitch)
    if pitch_expr is not None:
        evals.append(pitch_expr)
    return ["text2wave", "-o", str(out), *(arg for e in evals for arg in ("-eval", e))], text


_COMMANDS = {"espeak": _espeak_command, "flite": _flite_command, "festival": _festival_command}


def _describe(voice: Voice, text: str) -> str:
    return f"{voice.engine} voice {voice.name!r} saying {text!r}"


def _piper_wave(text: str, voice: Voice, rate: float, seed: int) -> tuple[np.ndarray, int]:
    try:
        model = piper_engine.find_model(voice.name)
        return piper_engine.synthesize(model, text, 1 / rate, seed), model.sample_rate
    except piper_engine.PiperUnavailable as exc:
        raise SpeechError(f"{_describe(voice, text)}: {exc}") from exc


def _engine_wave(text: str, voice: Voice, rate: float, pitch: float, seed: int) -> tuple[np.ndarray, int]:
    """Run the engine (into a temporary WAV for the programs) and return samples at its own rate."""
    if voice.engine == "piper":
        return _piper_wave(text, voice, rate, seed)
    with tempfile.TemporaryDirectory(prefix="fmn-tts-") as tmp:
        out = Path(tmp) / "speech.wav"
        cmd, stdin = _COMMANDS[voice.engine](text, voice, rate, pitch, out)
        try:
            done = _run(cmd, stdin)
        except FileNotFoundError as exc:
            raise SpeechError(f"{_describe(voice, text)}: {ENGINES[voice.engine].install}") from exc
        except subprocess.TimeoutExpired as exc:
            raise SpeechError(f"{_describe(voice, text)}: no result after {_TIMEOUT_S} s") from exc
        if done.returncode != 0 or not out.is_file():
            err = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SpeechError(f"{_describe(voice, text)} failed (exit {done.returncode}): {' / '.join(err[-3:])}")
        try:
            return read_audio(out)
        except MediaError as exc:
            raise SpeechError(f"{_describe(voice, text)}: unreadable output ({exc})") from exc


def synthesize(text: str, voice: Voice, rate: float = 1.0, pitch: float = 1.0, seed: int = 0) -> np.ndarray:
    """Speak a text with a voice.

    Args:
        text: what to say, in the voice's language (UTF-8 Han characters for Mandarin).
        voice: a catalogue voice (see ``voices``).
        rate: speaking-rate factor; 1 is the engine's default, 1.2 is 20 % faster.
        pitch: f0 factor; 1 is the voice's own pitch.
        seed: seeds the engines that draw noise (Piper); the others ignore it.

    Returns:
        float32 samples in [-1, 1] at ``SAMPLE_RATE``, shape (N,).

    Raises:
        SpeechError: the engine is missing, fails, or says nothing; the message names engine,
            voice and text.
    """
    if not text.strip():
        raise SpeechError(f"{_describe(voice, text)}: there is nothing to say")
    if rate <= 0 or pitch <= 0:
        raise ValueError(f"rate and pitch must be positive, got rate={rate}, pitch={pitch}")
    if voice.native_pitch:
        wave, sr = _engine_wave(text, voice, rate, pitch, seed)
        wave = resample(wave, sr, SAMPLE_RATE)
    else:
        # Played back faster by `pitch`, the wave rises in pitch and tempo alike; asking the engine
        # for rate / pitch first leaves the tempo at `rate`.
        wave, sr = _engine_wave(text, voice, rate / pitch, 1.0, seed)
        wave = resample(wave, round(sr * pitch / 100) * 100, SAMPLE_RATE)
    if len(wave) < _MIN_SPEECH_S * SAMPLE_RATE or np.abs(wave).max() < _SILENT_PEAK:
        raise SpeechError(f"{_describe(voice, text)} produced silence ({len(wave) / SAMPLE_RATE:.2f} s)")
    clipped: np.ndarray = np.clip(wave, -1.0, 1.0)  # numpy's stubs give Any for a dtype-less array
    return clipped


# --- augmentation ---------------------------------------------------------------------------


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


def render_utterance(text: str, voice: Voice, seed: int) -> tuple[np.ndarray, dict[str, float | str | int]]:
    """Speak a text as one corpus utterance: seeded rate, pitch, vocal tract, colouring and kitchen.

    The voice speaks at a drawn rate and pitch, ``voice_augment`` gives it a vocal tract and a
    colouring of its own, and ``augment`` makes it sound recorded in a kitchen.

    The result depends on nothing but (text, voice, seed).

    Args:
        text: what to say, in the voice's language.
        voice: a catalogue voice.
        seed: seeds every random choice (rate, pitch, augmentation).

    Returns:
        float32 wave at ``SAMPLE_RATE`` and its parameters (voice, seed, rate, pitch, vtlp, eq*,
        snr_db, telephone, ...).

    Raises:
        SpeechError: the engine fails or says nothing.
    """
    rng = np.random.default_rng(seed)
    rate = round(float(rng.uniform(*RATE_RANGE)), 3)
    pitch = round(float(2 ** (rng.uniform(*PITCH_SEMITONES) / 12)), 3)
    engine_seed = int(rng.integers(2**31))
    clean = synthesize(text, voice, rate, pitch, engine_seed)
    clean, speaker_params = speaker_augment(clean, rng)
    wave, params = augment(clean, rng)
    return wave, {"voice": voice.id, "seed": seed, "rate": rate, "pitch": pitch, **speaker_params, **params}
