"""App fixtures: a small random model, an indexed copy of the tiny corpus per test, a window on it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from app.main_window import MainWindow
from tests.app.virtual_mic import VirtualMicrophone


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised, small FMN saved as a model folder (rankings are arbitrary but fixed)."""
    import torch

    from fmn_core.inference import FMNModel
    from fmn_core.models import FMNConfig, create_fmn
    from fmn_core.models.speech import SpeechEncoderConfig

    torch.manual_seed(0)
    cfg = FMNConfig(
        speech=SpeechEncoderConfig(hidden=32, frame_stack=3), embed_dim=32, fusion_hidden=32, memory_capacity=8
    )
    folder = tmp_path_factory.mktemp("tiny_model") / "model"
    FMNModel(create_fmn(cfg).eval(), cfg).save(folder)
    return folder


@pytest.fixture(scope="session")
def indexed_library(tiny_corpus: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny corpus, indexed once with the tiny model (tests copy it, so each starts fresh)."""
    from fmn_core.index.retriever import Retriever

    folder = tmp_path_factory.mktemp("indexed") / "library"
    shutil.copytree(tiny_corpus, folder, ignore=shutil.ignore_patterns(".fmn-index"))
    Retriever.open(folder, tiny_model, device="cpu", jobs=1).close()
    return folder


@pytest.fixture()
def library(indexed_library: Path, tmp_path: Path) -> Path:
    """This test's own copy of the indexed library (its memory banks may change)."""
    folder = tmp_path / "library"
    shutil.copytree(indexed_library, folder)
    return folder


@pytest.fixture()
def window(qtbot, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    """A main window with its own settings file, not yet on a library."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings, device="cpu")
    qtbot.addWidget(w)
    w.show()
    return w


@pytest.fixture()
def opened(qtbot, window: MainWindow, library: Path, tiny_model: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    """The window with the test's library open and its banks shown."""
    with qtbot.waitSignals([window.session.opened, window.session.banksChanged], timeout=60000):
        assert window.open_library(library, tiny_model)
    return window


@pytest.fixture()
def virtual_mic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualMicrophone]:
    """A real ALSA capture device (see virtual_mic.py) as the default input; call the recorder's refresh()."""
    import sounddevice

    mic = VirtualMicrophone(tmp_path)
    mic.start()
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(mic.config))
    yield mic
    monkeypatch.delenv("ALSA_CONFIG_PATH")
    # PortAudio lists devices when it initialises: start it again without the virtual device, so
    # later tests see this machine as it is (the device is fed until then: PortAudio probes devices).
    sounddevice._terminate()
    sounddevice._initialize()
    mic.stop()
