"""How labels, times and numbers are written in the window (one place, so every view agrees)."""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np
from PySide6.QtGui import QImage, QPixmap

from fmn_core.corpus.vocabulary import VocabularyError, parse_class


@lru_cache(maxsize=1024)
def class_title(label: str | None) -> str:
    """'cut the onion · 切洋葱' for a vocabulary class; a user's own label as it is; '' for none."""
    if not label:
        return ""
    try:
        cls = parse_class(label)
    except VocabularyError:
        return label
    return f"{cls.en} · {cls.zh}"


def clock(seconds: float) -> str:
    """'0:03.2'."""
    tenths = int(round(seconds * 10))
    return f"{tenths // 600}:{tenths // 10 % 60:02d}.{tenths % 10}"


def when(stamp: float | None) -> str:
    """A bank update's time: wall-clock seconds as local time, a small number as an update step."""
    if stamp is None:
        return "never"
    if stamp > 1e9:  # seconds since the epoch
        return time.strftime("%H:%M:%S", time.localtime(stamp))
    return f"step {int(stamp)}"


def voice_note(confirmed: int, shift: float) -> str:
    """What the speech bank learned of the user's voice, for the bank's heading."""
    if confirmed == 0:
        return "your voice: confirm a spoken query's match to teach it"
    phrases = f"{confirmed} confirmed phrase{'s' if confirmed != 1 else ''}"
    if shift <= 0:
        return f"your voice: {phrases}, no adjustment yet"
    return f"your voice: {phrases}, queries adjusted by {100 * shift:.0f} %"


def rgb_pixmap(rgb: np.ndarray) -> QPixmap:
    """A QPixmap of an ``(H, W, 3)`` uint8 RGB image."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width, _ = rgb.shape
    return QPixmap.fromImage(QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy())
