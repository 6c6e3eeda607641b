"""`fmn doctor`: one line per component, OK or missing with how to fix it."""

from __future__ import annotations

import importlib
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Check:
    """The outcome of checking one component."""

    name: str
    ok: bool
    detail: str  # version or what was found when ok; the fix when not

    def line(self) -> str:
        return f"{'OK ' if self.ok else 'MISSING'} {self.name:<16} {self.detail}"


def _python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("Python", ok, platform.python_version() + ("" if ok else " (needs 3.10 or newer)"))


def _module(name: str, fix: str) -> Callable[[], Check]:
    def check() -> Check:
        try:
            module = importlib.import_module(name)
        except Exception as e:  # a broken install raises more than ImportError (e.g. OSError on a missing .so)
            return Check(name, False, f"{type(e).__name__}: {str(e).splitlines()[0][:80]} -> {fix}")
        return Check(name, True, getattr(module, "__version__", "installed"))

    return check


def _torch() -> Check:
    try:
        import torch
    except Exception as e:
        return Check("torch", False, f"{e} -> pip install -e . (see README)")
    if torch.cuda.is_available():
        device = f"CUDA {torch.version.cuda} on {torch.cuda.get_device_name(0)}"
    else:
        device = "CPU only (no CUDA device found; training and search run on the CPU)"
    return Check("torch", True, f"{torch.__version__}, {device}")


def _pytorchvideo() -> Check:
    try:
        from pytorchvideo.models.resnet import create_resnet  # noqa: F401  (only the models part is used)
    except Exception as e:
        return Check("pytorchvideo", False, f"{e} -> pip install pytorchvideo==0.1.5")
    return Check("pytorchvideo", True, "models import")


def _qt() -> Check:
    try:
        import PySide6
        from PySide6 import QtMultimedia  # noqa: F401  (Addons: playback of previews)
    except Exception as e:
        return Check("Qt", False, f"{e} -> pip install PySide6-Essentials PySide6-Addons; apt-get install libpulse0")
    return Check("Qt", True, f"PySide6 {PySide6.__version__} with QtMultimedia")


def _loaded(name: str, load: Callable[[], Any], use: str) -> Check:
    """A package the core imports only when a run needs it, through its loader (whose error says
    what to install)."""
    try:
        module = load()
    except Exception as e:  # not installed, or a broken install
        return Check(name, False, f"{e}")
    return Check(name, True, f"{module.__version__} ({use})")


def _faiss() -> Check:
    from fmn_core.index.ann import load_faiss

    return _loaded("faiss", load_faiss, "approximate search in libraries of over 150,000 rows")


def _ray() -> Check:
    from fmn_core.index.ray_index import load_ray

    return _loaded("ray", load_ray, "fmn index --ray local|HOST:PORT")


def _portaudio() -> Check:
    try:
        import sounddevice as sd
    except Exception as e:
        return Check("PortAudio", False, f"{e} -> apt-get install libportaudio2")
    try:
        inputs = [d["name"] for d in sd.query_devices() if d["max_input_channels"] > 0]
    except Exception as e:
        return Check("PortAudio", False, f"cannot list devices: {e}")
    if not inputs:
        return Check("PortAudio", True, f"{sd.get_portaudio_version()[1]}; no input device (recording disabled)")
    return Check("PortAudio", True, f"{len(inputs)} input device(s): {', '.join(inputs[:3])}")


def _tts() -> list[Check]:
    from fmn_core.corpus import voice_catalogue

    status = voice_catalogue.engine_status()
    return [Check(f"TTS {engine}", fix is None, "usable" if fix is None else fix) for engine, fix in status.items()]


def _speech_encoders() -> list[Check]:
    from fmn_core.features import whisper

    checks = []
    for name, info in whisper.MODELS.items():
        fix = whisper.status(name)
        detail = f"{info.dim}-d frames, {'English and Mandarin' if info.multilingual else 'English only'}"
        checks.append(Check(name, fix is None, detail if fix is None else fix))
    return checks


def _disk(path: Path) -> Callable[[], Check]:
    def check() -> Check:
        free = shutil.disk_usage(path).free / 2**30
        return Check("free disk", free >= 2, f"{free:.1f} GiB at {path}" + ("" if free >= 2 else " (want >= 2 GiB)"))

    return check


def run_checks(where: Path | None = None) -> list[Check]:
    """Check every component; never raises."""
    checks: list[Callable[[], Check] | Callable[[], list[Check]]] = [
        _python,
        _torch,
        _module("torchaudio", "pip install torchaudio==2.11.0"),
        _pytorchvideo,
        _module("cv2", "pip install opencv-python-headless"),
        _module("av", "pip install av"),
        _module("soundfile", "pip install soundfile"),
        _qt,
        _portaudio,
        _module("ctranslate2", "pip install ctranslate2 (the Whisper speech front ends)"),
        _faiss,
        _ray,
        _speech_encoders,
        _tts,
        _disk(where or Path.cwd()),
    ]
    results: list[Check] = []
    for check in checks:
        outcome = check()
        results.extend(outcome if isinstance(outcome, list) else [outcome])
    return results
