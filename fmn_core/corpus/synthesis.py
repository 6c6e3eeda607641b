"""Running the TTS engines: one text, one catalogue voice, a rate and a pitch -> a 16 kHz waveform.

espeak-ng, flite and festival (``text2wave``) run as programs writing a temporary WAV; Piper and
Kokoro run in-process (``piper_engine``, ``kokoro_engine``). Each engine gets the rate and pitch
in its own terms; a voice whose engine has no pitch setting (``Voice.native_pitch``) is
pitch-shifted by resampling instead. The engines are deterministic (Piper's noise is seeded), so
a waveform is a pure function of its arguments.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from fmn_core.corpus import kokoro_engine, piper_engine
from fmn_core.corpus.voice_catalogue import (
    ENGINE_TIMEOUT_S,
    ENGINES,
    SpeechError,
    Voice,
    festival_has_pitch_handle,
    run_engine,
)
from fmn_core.media.audio_io import SAMPLE_RATE, read_audio, resample
from fmn_core.media.errors import MediaError

_SILENT_PEAK = 1e-3  # an engine output quieter than this everywhere is a failure, not speech
_MIN_SPEECH_S = 0.1
_ESPEAK_WPM = 175  # espeak-ng's default speaking rate
# espeak-ng's -p (0-99, default 50) moves f0 about an octave per 65 steps (measured on en-us and f2).
_ESPEAK_PITCH_STEPS_PER_OCTAVE = 65


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
    """Scheme that scales a festival voice's pitch, or None for voice types without a known handle."""
    if festival_has_pitch_handle(name):
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


def _kokoro_wave(text: str, voice: Voice, rate: float) -> tuple[np.ndarray, int]:
    try:
        return kokoro_engine.synthesize(voice.name, text, rate), kokoro_engine.SAMPLE_RATE
    except kokoro_engine.KokoroUnavailable as exc:
        raise SpeechError(f"{_describe(voice, text)}: {exc}") from exc


def _engine_wave(text: str, voice: Voice, rate: float, pitch: float, seed: int) -> tuple[np.ndarray, int]:
    """Run the engine (into a temporary WAV for the programs) and return samples at its own rate."""
    if voice.engine == "piper":
        return _piper_wave(text, voice, rate, seed)
    if voice.engine == "kokoro":
        return _kokoro_wave(text, voice, rate)
    with tempfile.TemporaryDirectory(prefix="fmn-tts-") as tmp:
        out = Path(tmp) / "speech.wav"
        cmd, stdin = _COMMANDS[voice.engine](text, voice, rate, pitch, out)
        try:
            done = run_engine(cmd, stdin)
        except FileNotFoundError as exc:
            raise SpeechError(f"{_describe(voice, text)}: {ENGINES[voice.engine].install}") from exc
        except subprocess.TimeoutExpired as exc:
            raise SpeechError(f"{_describe(voice, text)}: no result after {ENGINE_TIMEOUT_S} s") from exc
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
