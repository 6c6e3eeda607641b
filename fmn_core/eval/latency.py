"""Per-query encoding latency of a model: a 3 s spoken phrase and a 4 s clip, file to common-space vector.

Measured end to end through :class:`~fmn_core.inference.FMNModel` (decode, front end, encoder,
projection), after warm-up runs, as the median and 95th percentile of repeated runs. The inputs
are made by the corpus generator, so the figures need nothing but the model.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fmn_core.inference import FMNModel


@dataclass(frozen=True)
class Latency:
    """Seconds per call."""

    p50: float
    p95: float
    runs: int

    def to_dict(self) -> dict[str, float]:
        return {"p50_ms": 1000 * self.p50, "p95_ms": 1000 * self.p95, "runs": self.runs}


def measure(fn: Callable[[], object], runs: int = 20, warmup: int = 3) -> Latency:
    """Time ``fn`` ``runs`` times after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    return Latency(statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))], runs)


def _sample_media(folder: Path) -> tuple[Path, Path]:
    """A 4 s rendered clip and a spoken phrase padded or cut to 3 s, written into ``folder``."""
    from fmn_core.corpus.synthesis import synthesize
    from fmn_core.corpus.video import RenderSettings, write_clip
    from fmn_core.corpus.voice_catalogue import voices
    from fmn_core.media.audio_io import SAMPLE_RATE, write_wav

    clip = folder / "clip.mp4"
    write_clip("cut_onion", 1, clip, RenderSettings(min_seconds=4.0, max_seconds=4.0))
    wave = synthesize("now I am cutting the onion", voices("en")[0])
    wave = np.resize(wave, 3 * SAMPLE_RATE) if len(wave) < 3 * SAMPLE_RATE else wave[: 3 * SAMPLE_RATE]
    speech = folder / "phrase.wav"
    write_wav(speech, wave)
    return clip, speech


def encode_latency(model: FMNModel, runs: int = 20) -> dict[str, dict[str, float]]:
    """Median and p95 latency of encoding one speech query and one video query, in ms."""
    with tempfile.TemporaryDirectory() as tmp:
        clip, speech = _sample_media(Path(tmp))
        return {
            "speech_3s_file_to_vector": measure(
                lambda: model.embed_speech(model.speech_raw(speech)[None]), runs
            ).to_dict(),
            "video_4s_file_to_vector": measure(lambda: model.embed_video(model.video_raw(clip)[None]), runs).to_dict(),
        }
