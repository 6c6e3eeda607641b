"""A real ALSA capture device for tests on a machine without a sound card (DESIGN §6).

ALSA's ``file`` plugin, with a ``null`` slave, takes what it captures from ``infile``. Here
``infile`` is one end of a socket pair, and a thread writes 16 kHz samples into the other end in
real time, like a microphone hearing speech. The app records through PortAudio, ALSA's ``plug``
layer and the ``file`` plugin exactly as it would from hardware: the only stand-in is the sound
arriving at the device.

Why a socket and not a file or a FIFO: the ``null`` device never waits, so the input itself must
pace the reader, and the ``file`` plugin hands over a whole request even when ``read()`` returned
less (the rest would be stale memory). A socket whose receive low-water mark is "everything"
blocks each ``read()`` until the whole request has arrived: paced, and never short.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

RATE = 16000
TICK_FRAMES = 320  # written every 20 ms
BACKLOG_BYTES = 8192  # ~0.25 s: beyond this nobody is listening, and sound is not kept (as in a room)
_CONFIG = """
pcm.!default {{
  type plug
  slave {{
    pcm {{
      type file
      slave.pcm {{ type null }}
      file "/dev/null"
      infile {fd}
      format "raw"
    }}
    format S16_LE
    rate {rate}
    channels 1
  }}
}}
"""


class VirtualMicrophone:
    """The default ALSA capture device of this process once ``ALSA_CONFIG_PATH`` is :attr:`config`.

    Silence until :meth:`say` queues speech; speech is only used up while something records.
    """

    def __init__(self, folder: Path) -> None:
        self._device_end, self._sound_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._device_end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 2**31 - 1)
        self.config = folder / "asound.conf"
        # An integer infile is a descriptor of this process, which ALSA reads but never closes.
        self.config.write_text(_CONFIG.format(fd=self._device_end.fileno(), rate=RATE))
        self._pending: deque[np.ndarray] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="virtual-microphone", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sound_end.close()
        self._device_end.close()

    def say(self, wave: np.ndarray) -> None:
        """Queue float samples in [-1, 1] at 16 kHz; they reach the device in real time."""
        samples = np.round(np.clip(wave, -1.0, 1.0) * 32767).astype("<i2")
        with self._lock:
            self._pending.extend(samples[i : i + TICK_FRAMES] for i in range(0, len(samples), TICK_FRAMES))

    @property
    def speaking(self) -> bool:
        """Speech is still queued."""
        with self._lock:
            return bool(self._pending)

    def _unread(self) -> int:
        raw = fcntl.ioctl(self._device_end.fileno(), termios.FIONREAD, struct.pack("i", 0))
        return struct.unpack("i", raw)[0]

    def _next_tick(self) -> bytes:
        out = np.zeros(TICK_FRAMES, "<i2")
        with self._lock:
            if self._pending:
                part = self._pending.popleft()
                out[: len(part)] = part
        return out.tobytes()

    def _run(self) -> None:
        start, ticks = time.monotonic(), 0
        while not self._stop.is_set():
            if self._unread() < BACKLOG_BYTES:
                self._sound_end.sendall(self._next_tick())
            ticks += 1
            delay = start + ticks * TICK_FRAMES / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.1:  # the machine stalled us: carry on from now, as a microphone would
                start, ticks = time.monotonic(), 0
