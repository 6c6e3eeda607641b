"""Recorder: microphone capture through PortAudio (sounddevice) into a 16 kHz mono float32 wave.

Capture runs on PortAudio's own thread: its callback only copies the block and its level; the
UI polls :attr:`Recorder.level` and :attr:`Recorder.elapsed` with a timer. Without PortAudio
or without an input device the recorder is *unavailable* and says why; the rest of the app
works without it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from fmn_core.media.audio_io import SAMPLE_RATE, resample

log = logging.getLogger(__name__)

BLOCK_FRAMES = 512  # frames per callback: 32 ms at 16 kHz, a level-meter update every other frame
MAX_SECONDS = 30.0  # the speech front end uses at most 30 s of an utterance


@dataclass(frozen=True)
class InputDevice:
    """A capture device as PortAudio lists it."""

    index: int
    name: str
    host_api: str
    default_rate: float
    is_default: bool

    def __str__(self) -> str:
        return f"{self.name} ({self.host_api})"


def _load_sounddevice() -> tuple[ModuleType | None, str]:
    """The sounddevice module, or None and why it cannot be used."""
    try:
        import sounddevice
    except OSError as e:  # sounddevice raises OSError when libportaudio is missing
        return None, f"Recording is unavailable: PortAudio is not installed ({e}). Install libportaudio2."
    except ImportError as e:
        return None, f"Recording is unavailable: the sounddevice package is missing ({e})."
    return sounddevice, ""


class Recorder(QObject):
    """Records from one input device at a time.

    Signals:
        started(): capture began.
        stopped(object): the recording, float32 mono at 16 kHz (possibly empty).
        failed(str): the device could not be opened or stopped working.
    """

    started = Signal()
    stopped = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._sd, self._backend_error = _load_sounddevice()
        self._stream: Any = None
        self._rate = SAMPLE_RATE
        self._blocks: list[np.ndarray] = []
        self._frames = 0
        self._lock = threading.Lock()
        self._level = (0.0, 0.0)
        self._started_at = 0.0
        self._devices: list[InputDevice] = []
        self._list_error = ""
        self._scan()

    # -- devices ------------------------------------------------------------------------------

    @property
    def devices(self) -> list[InputDevice]:
        """Input devices found at start-up or at the last :meth:`refresh`."""
        return list(self._devices)

    @property
    def unavailable_reason(self) -> str:
        """Why recording is impossible ('' when a device is there)."""
        if self._backend_error:
            return self._backend_error
        if self._list_error:
            return self._list_error
        if not self._devices:
            return "Recording is unavailable: no microphone (no audio input device) was found."
        return ""

    def refresh(self) -> list[InputDevice]:
        """List the devices again, e.g. after a microphone was plugged in (not while recording)."""
        if self._sd is not None and not self.recording:
            # PortAudio lists devices only when it initialises; re-initialising is its documented
            # way to see hot-plugged ones (sounddevice exposes it only as these private calls).
            self._sd._terminate()
            self._sd._initialize()
        self._scan()
        return self.devices

    def _scan(self) -> None:
        self._devices, self._list_error = [], ""
        if self._sd is None:
            return
        try:
            apis = self._sd.query_hostapis()
            default_in = self._sd.default.device[0]
            for index, info in enumerate(self._sd.query_devices()):
                if info["max_input_channels"] > 0:
                    self._devices.append(
                        InputDevice(
                            index,
                            info["name"],
                            apis[info["hostapi"]]["name"],
                            float(info["default_samplerate"]),
                            index == default_in,
                        )
                    )
        except self._sd.PortAudioError as e:
            self._list_error = f"Recording is unavailable: cannot list audio devices ({e})."

    # -- capture ------------------------------------------------------------------------------

    @property
    def recording(self) -> bool:
        return self._stream is not None

    @property
    def level(self) -> tuple[float, float]:
        """RMS and peak (0..1) of the latest block."""
        return self._level

    @property
    def rate(self) -> int:
        """Sample rate of the current (or last) capture; 16 kHz unless the device refused it."""
        return self._rate

    @property
    def elapsed(self) -> float:
        """Seconds of audio captured so far in this recording."""
        return self._frames / self._rate

    def current_wave(self) -> np.ndarray:
        """What has been captured so far (at the device's rate), for a live waveform."""
        with self._lock:
            return np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32)

    def start(self, device: int | None = None) -> bool:
        """Open ``device`` (PortAudio index; None: the default input) and start capturing.

        Returns False, after emitting ``failed``, when it cannot be opened.
        """
        if self.recording:
            return True
        if self._sd is None or not self._devices:
            self.failed.emit(self.unavailable_reason)
            return False
        with self._lock:
            self._blocks, self._frames, self._level = [], 0, (0.0, 0.0)
        try:
            self._stream = self._open(device, SAMPLE_RATE)
        except self._sd.PortAudioError:
            # Some devices refuse 16 kHz: record at the device's own rate and resample at the end.
            try:
                rate = self._device_rate(device)
                self._stream = self._open(device, rate)
            except self._sd.PortAudioError as e:
                self._stream = None
                self.failed.emit(f"Cannot record from the microphone: {e}")
                return False
        self._started_at = time.monotonic()
        self.started.emit()
        return True

    def _device_rate(self, device: int | None) -> int:
        info = self._sd.query_devices(device if device is not None else self._sd.default.device[0])
        return int(info["default_samplerate"])

    def _open(self, device: int | None, rate: int) -> Any:
        stream = self._sd.InputStream(
            samplerate=rate,
            channels=1,
            # 16-bit: what capture devices deliver natively, so no converter sits between the
            # device and us; the callback makes floats.
            dtype="int16",
            blocksize=BLOCK_FRAMES,
            device=device,
            callback=self._on_block,
        )
        self._rate = rate
        stream.start()
        return stream

    def _on_block(self, data: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
        # PortAudio's thread: convert and measure only; no Qt calls here.
        block = data[:, 0].astype(np.float32) / 32768.0
        level = (float(np.sqrt(np.mean(block.astype(np.float64) ** 2))), float(np.abs(block).max(initial=0.0)))
        with self._lock:
            self._blocks.append(block)
            self._frames += frames
            self._level = level

    def stop(self) -> np.ndarray:
        """Stop capturing; returns (and emits) the recording as float32 mono at 16 kHz."""
        stream, self._stream = self._stream, None
        if stream is None:
            return np.zeros(0, np.float32)
        try:
            stream.abort()  # abort, not stop: nothing is left to drain and stop() can wait a whole buffer
            stream.close()
        except self._sd.PortAudioError as e:
            log.warning("closing the input stream: %s", e)
        with self._lock:
            wave = np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32)
            self._blocks, self._level = [], (0.0, 0.0)
        if self._rate != SAMPLE_RATE and wave.size:
            wave = resample(wave, self._rate, SAMPLE_RATE)
        wave = np.clip(wave, -1.0, 1.0).astype(np.float32)
        self.stopped.emit(wave)
        return wave
