"""Colours of the renderer: the BGR type, shading and blending, and colours drawn from a seed.

Every drawing module leans on these, so they sit at the bottom of the package and import
nothing from it.
"""

from __future__ import annotations

import numpy as np

BGR = tuple[int, int, int]

_WHITE: BGR = (255, 255, 255)
_METAL: BGR = (196, 196, 202)


def _shade(c: BGR, f: float) -> BGR:
    """Colour ``c`` scaled by ``f`` (< 1 darker), clipped to 0..255."""
    return (min(255, int(c[0] * f)), min(255, int(c[1] * f)), min(255, int(c[2] * f)))


def _mix(a: BGR, b: BGR, t: float) -> BGR:
    """Linear blend from colour ``a`` (t=0) to ``b`` (t=1)."""
    return (int(a[0] + (b[0] - a[0]) * t), int(a[1] + (b[1] - a[1]) * t), int(a[2] + (b[2] - a[2]) * t))


def _jitter(rng: np.random.Generator, c: BGR, amount: int) -> BGR:
    """Colour ``c`` with each channel moved by up to ``amount``."""
    j = rng.integers(-amount, amount + 1, 3)
    return (int(np.clip(c[0] + j[0], 0, 255)), int(np.clip(c[1] + j[1], 0, 255)), int(np.clip(c[2] + j[2], 0, 255)))


def _random_color(rng: np.random.Generator, lo: int, hi: int) -> BGR:
    """A colour with every channel uniform in ``lo..hi``."""
    b, g, r = rng.integers(lo, hi, 3)
    return (int(b), int(g), int(r))
