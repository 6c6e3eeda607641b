"""Hands, arms and the tools they hold (knife, peeler, spoon or spatula), seen from above.

Kept apart from the objects because every action draws the same hands whatever it holds; the
scene decides their skin, sleeve and size.
"""

from __future__ import annotations

import math

import numpy as np

from fmn_core.corpus.video.colours import _METAL, BGR, _shade
from fmn_core.corpus.video.shapes import XY, _line, _Pose


def _draw_hand(
    img: np.ndarray, pos: XY, angle: float, size: float, skin: BGR, grip: float = 0.0, mirror: bool = False
) -> None:
    """A hand seen from above: palm, four fingers pointing at ``angle``, a thumb.

    ``grip`` in 0..1 curls the fingers (shorter as seen from above).
    """
    pose = _Pose(float(pos[0]), float(pos[1]), size, angle)
    edge = _shade(skin, 0.72)
    side = -1.0 if mirror else 1.0
    finger_len = 0.4 * (1.0 - 0.5 * grip)
    width = 0.12 * size
    for off, k in ((-0.16, 0.8), (-0.055, 1.0), (0.055, 0.97), (0.16, 0.78)):
        base, tip = (0.15, off * side), (0.15 + finger_len * k, off * 1.15 * side)
        pose.line(img, base, tip, edge, width + 2)
        pose.line(img, base, tip, skin, width)
    thumb = ((0.0, -0.2 * side), (0.18 + 0.1 * grip, -0.38 * side))
    pose.line(img, *thumb, edge, width * 1.15 + 2)
    pose.line(img, *thumb, skin, width * 1.15)
    pose.ellipse(img, (0, 0), (0.3, 0.26), edge)
    pose.ellipse(img, (0, 0), (0.28, 0.24), skin)


def _draw_arm(img: np.ndarray, wrist: np.ndarray, toward: np.ndarray, size: float, skin: BGR, sleeve: BGR) -> None:
    """Forearm from the wrist towards ``toward`` (off screen), then a sleeve."""
    d = toward - wrist
    d = d / max(1e-6, float(np.hypot(*d)))
    cuff = wrist + d * 0.8 * size
    _line(img, cuff, toward, _shade(sleeve, 0.75), 0.62 * size + 2)
    _line(img, cuff, toward, sleeve, 0.62 * size)
    _line(img, wrist, cuff + d * 2, _shade(skin, 0.72), 0.45 * size + 2)
    _line(img, wrist, cuff + d * 2, skin, 0.45 * size)


def _draw_knife(img: np.ndarray, pose: _Pose, handle: BGR) -> None:
    """Chef's knife, junction of blade and handle at the pose centre, tip towards +x."""
    pose.fill(
        img, [(0, -0.07), (0.8, -0.07), (1.0, 0.0), (0.86, 0.075), (0, 0.08)], _METAL, outline=_shade(_METAL, 0.55)
    )
    pose.line(img, (0.02, 0.068), (0.84, 0.066), (240, 240, 245), max(1.0, 0.012 * pose.size))
    pose.fill(
        img, [(-0.42, -0.05), (-0.02, -0.055), (-0.02, 0.055), (-0.42, 0.05)], handle, outline=_shade(handle, 0.5)
    )
    for x in (-0.32, -0.14):
        pose.ellipse(img, (x, 0), (0.014, 0.014), (210, 210, 215))


def _draw_peeler(img: np.ndarray, pose: _Pose, handle: BGR) -> None:
    """Y-peeler, blade crossbar at local x=0.22, handle towards -x."""
    pose.fill(img, [(-0.62, -0.07), (-0.05, -0.06), (-0.05, 0.06), (-0.62, 0.07)], handle, outline=_shade(handle, 0.5))
    for s in (-1, 1):
        pose.line(img, (-0.06, 0.04 * s), (0.24, 0.19 * s), _shade(_METAL, 0.8), max(1.0, 0.04 * pose.size))
    pose.line(img, (0.22, -0.2), (0.22, 0.2), _METAL, max(2.0, 0.07 * pose.size))
    pose.line(img, (0.22, -0.17), (0.22, 0.17), (90, 90, 95), 1)


def _draw_stirrer(img: np.ndarray, tip: np.ndarray, grip: np.ndarray, spatula: bool, color: BGR, size: float) -> None:
    """Wooden spoon (or flat spatula) from the hand at ``grip`` to its head at ``tip``."""
    d = tip - grip
    pose = _Pose(float(tip[0]), float(tip[1]), size, math.degrees(math.atan2(d[1], d[0])))
    length = float(np.hypot(*d)) / size
    pose.line(img, (-length - 0.05, 0), (-0.1, 0), _shade(color, 0.7), 0.06 * size + 2)
    pose.line(img, (-length - 0.05, 0), (-0.1, 0), color, 0.06 * size)
    if spatula:
        pose.fill(img, [(-0.14, -0.05), (0.12, -0.13), (0.14, 0.13), (-0.14, 0.05)], color, outline=_shade(color, 0.6))
        for y in (-0.05, 0.0, 0.05):
            pose.line(img, (-0.02, y * 1.6), (0.1, y * 2.1), _shade(color, 0.6), 1)
    else:
        pose.ellipse(img, (0, 0), (0.14, 0.09), _shade(color, 0.65))
        pose.ellipse(img, (0, 0), (0.12, 0.07), color)


def _upward(axis_angle: float) -> float:
    """Of the two directions perpendicular to an axis, the one pointing up the image (away from the cook)."""
    a = axis_angle - 90.0
    return a if math.sin(math.radians(a)) <= 0 else a + 180.0
