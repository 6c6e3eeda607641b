"""Synthetic speech for the cooking corpus: one utterance, from a text and a voice to a recording.

DESIGN.md §3: every phrasing of a class is spoken by many voices of the installed engines
(``voice_catalogue``) at varied rate and pitch (``synthesis``), given a vocal tract and a colouring
of its own (``voice_augment``), then made to sound recorded in a kitchen (``kitchen_acoustics``:
noise, clatter, reverb, level, silences, sometimes a telephone). All output is 16 kHz float32
mono, and a rendering is a pure function of (text, voice, seed): the engines are deterministic
(Piper's noise is seeded) and every random draw comes from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fmn_core.corpus.kitchen_acoustics import augment
from fmn_core.corpus.synthesis import synthesize
from fmn_core.corpus.voice_augment import VoiceAugmentConfig, speaker_augment
from fmn_core.corpus.voice_catalogue import Voice

RATE_RANGE = (0.8, 1.25)  # speaking-rate factor drawn per utterance (1 = the engine's default)


@dataclass(frozen=True)
class SpeakerRanges:
    """How far an utterance's voice is moved from the engine's: pitch and vocal-tract length.

    Each is one uniform draw whatever its range, so the draws before the kitchen's (rate,
    colouring) are the same for one seed at any ranges.
    """

    pitch_semitones: float = 3.0  # pitch shift drawn in [-x, x] semitones
    warp: tuple[float, float] = VoiceAugmentConfig.warp_range  # vocal-tract-length factor: formants move by it

    def __post_init__(self) -> None:
        lo, hi = self.warp
        if not (0 <= self.pitch_semitones <= 12 and 0.5 <= lo <= hi <= 2.0):
            raise ValueError(
                f"speaker ranges: pitch shift 0-12 semitones and a warp within 0.5-2.0 (low <= high), "
                f"got {self.pitch_semitones} and {self.warp}"
            )


def render_utterance(
    text: str, voice: Voice, seed: int, ranges: SpeakerRanges = SpeakerRanges()
) -> tuple[np.ndarray, dict[str, float | str | int]]:
    """Speak a text as one corpus utterance: seeded rate, pitch, vocal tract, colouring and kitchen.

    The voice speaks at a drawn rate and pitch, ``voice_augment`` gives it a vocal tract and a
    colouring of its own, and ``augment`` makes it sound recorded in a kitchen.

    The result depends on nothing but (text, voice, seed).

    Args:
        text: what to say, in the voice's language.
        voice: a catalogue voice.
        seed: seeds every random choice (rate, pitch, augmentation).
        ranges: how far pitch and vocal tract are drawn from the voice's own.

    Returns:
        float32 wave at ``SAMPLE_RATE`` and its parameters (voice, seed, rate, pitch, vtlp, eq*,
        snr_db, telephone, ...).

    Raises:
        SpeechError: the engine fails or says nothing.
    """
    rng = np.random.default_rng(seed)
    rate = round(float(rng.uniform(*RATE_RANGE)), 3)
    pitch = round(float(2 ** (rng.uniform(-ranges.pitch_semitones, ranges.pitch_semitones) / 12)), 3)
    engine_seed = int(rng.integers(2**31))
    clean = synthesize(text, voice, rate, pitch, engine_seed)
    clean, speaker_params = speaker_augment(clean, rng, VoiceAugmentConfig(warp_range=ranges.warp))
    wave, params = augment(clean, rng)
    return wave, {"voice": voice.id, "seed": seed, "rate": rate, "pitch": pitch, **speaker_params, **params}
