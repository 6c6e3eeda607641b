"""Recording a spoken query through a real ALSA capture device, push-to-talk, and life without a microphone."""

from __future__ import annotations

import ctypes.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from scipy.signal import correlate

from app.main_window import MainWindow
from app.recorder import Recorder
from fmn_core.manifest import read_manifest
from fmn_core.media.audio_io import SAMPLE_RATE, load_audio
from tests.app.virtual_mic import VirtualMicrophone


def _speech(library: Path) -> np.ndarray:
    manifest = read_manifest(library / "manifest.csv")
    row = next(r for r in manifest.rows if r.modality == "speech" and r.label == "pour_milk")
    return load_audio(manifest.resolve(row))


def _says_and_waits(qtbot, window: MainWindow, mic: VirtualMicrophone, wave: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    mic.say(wave)
    seconds = len(wave) / SAMPLE_RATE + 0.4  # all of it, and a little silence after
    qtbot.waitUntil(lambda: not mic.speaking and window.recorder.elapsed > seconds, timeout=20000)


def test_recording_from_a_capture_device_gives_a_query_and_results(
    qtbot, virtual_mic: VirtualMicrophone, opened: MainWindow, library: Path
) -> None:  # type: ignore[no-untyped-def]
    panel = opened.query
    panel.refresh_devices()
    assert panel.can_record, panel.availability.text()
    assert "default" in panel.devices.currentText()
    wave = _speech(library)
    recordings: list[np.ndarray] = []
    panel.recorded.connect(recordings.append)

    qtbot.mouseClick(panel.record_button, Qt.MouseButton.LeftButton)
    assert opened.recorder.recording and panel.record_button.text() == "■ Stop"
    mic_level = []
    panel._ticker.timeout.connect(lambda: mic_level.append(panel.meter.peak_db))
    _says_and_waits(qtbot, opened, virtual_mic, wave)
    assert max(mic_level) > -30  # the meter heard the speech (it peaks at -18 dBFS)
    assert panel.elapsed.text() != "0:00.0"
    with qtbot.waitSignal(opened.session.ranked, timeout=20000):
        qtbot.mouseClick(panel.record_button, Qt.MouseButton.LeftButton)

    # The recording is what was said, sample for sample (16-bit rounding aside), after some silence.
    (recorded,) = recordings
    assert recorded.dtype == np.float32 and len(recorded) > len(wave)
    lag = int(np.argmax(correlate(recorded, wave, mode="valid", method="fft")))
    np.testing.assert_allclose(recorded[lag : lag + len(wave)], wave, atol=2e-4)
    # ... and it was searched with: the window shows the core's ranking of that query.
    hits = opened.results.hits
    assert len(hits) == 9 and opened.session.last.query.source == "recording"
    expected = opened.session.retriever.search(opened.session.last.query).hits
    assert [h.item.id for h in hits] == [h.item.id for h in expected]
    assert panel.replay_button.isEnabled()  # the recording can be played back
    assert "recording" in panel.query_label.text()


def test_holding_t_records_and_releasing_it_searches(
    qtbot, virtual_mic: VirtualMicrophone, opened: MainWindow, library: Path
) -> None:  # type: ignore[no-untyped-def]
    opened.query.refresh_devices()
    opened.results.list.setFocus()
    target = opened.windowHandle()  # key events enter the window as the window system delivers them
    qtbot.keyPress(target, Qt.Key.Key_T)
    assert opened.recorder.recording
    _says_and_waits(qtbot, opened, virtual_mic, _speech(library))
    with qtbot.waitSignal(opened.session.ranked, timeout=20000):
        qtbot.keyRelease(target, Qt.Key.Key_T)
    assert not opened.recorder.recording and len(opened.results.hits) == 9

    opened.library.filter.setFocus()  # in a text field, T is a letter
    qtbot.keyClick(target, Qt.Key.Key_T)
    assert opened.library.filter.text() == "t" and not opened.recorder.recording


def test_without_a_microphone_recording_is_disabled_with_the_reason(qtbot, opened: MainWindow) -> None:  # type: ignore[no-untyped-def]
    panel = opened.query
    panel.refresh_devices()  # this machine has no sound card
    assert not panel.can_record
    assert "no microphone" in panel.record_button.toolTip()
    assert panel.availability.text() == panel.record_button.toolTip()
    qtbot.keyPress(opened.windowHandle(), Qt.Key.Key_T)  # push-to-talk does nothing, says nothing
    qtbot.keyRelease(opened.windowHandle(), Qt.Key.Key_T)
    assert not opened.recorder.recording and opened.messages.text == ""


def test_without_portaudio_recording_is_disabled_and_the_rest_works(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # PortAudio missing, as sounddevice finds it: no shared library by that name
    real = ctypes.util.find_library
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None if "portaudio" in name else real(name))
    monkeypatch.delitem(sys.modules, "sounddevice")
    recorder = Recorder()
    assert "PortAudio is not installed" in recorder.unavailable_reason
    assert recorder.devices == [] and not recorder.start()
