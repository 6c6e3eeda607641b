"""How every object of the vocabulary looks: shape recipes, per-object details, :func:`_draw_object`.

Each shape recipe draws in local units where 1 = the object's size; long things lie along local
+x, standing things (bottle, shaker, can) have their top at -y. Objects that share a recipe
(lemon and lime, cucumber and carrot) are told apart by a :class:`_Look`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fmn_core.corpus.video.colours import _WHITE, BGR, _mix, _shade
from fmn_core.corpus.video.shapes import Point, _Pose, _unit
from fmn_core.corpus.vocabulary import CookingObject


@dataclass(frozen=True)
class _Look:
    """Per-object refinements of a shape recipe, so objects sharing a recipe still look distinct."""

    aspect: float = 1.0  # round things: minor/major axis ratio (lemons are oval)
    width: float = 0.13  # long things: half width at the thick end, in lengths
    taper: float = 0.0  # long things: how much thinner the tip is than the thick end (0..1)
    detail: str = ""  # extra marks drawn on top, see _DETAILS
    flesh: BGR | None = None  # colour inside (cut, peeled, grated); None: the object's accent


_LOOKS: dict[str, _Look] = {
    "onion": _Look(aspect=0.9, detail="onion"),
    "pineapple": _Look(aspect=0.66, detail="pineapple", flesh=(110, 215, 245)),
    "orange": _Look(detail="orange"),
    "apple": _Look(aspect=0.93, detail="apple"),
    "lemon": _Look(aspect=0.74, detail="tips"),
    "lime": _Look(aspect=0.84, detail="tips"),
    "cucumber": _Look(width=0.12, detail="cucumber"),
    "carrot": _Look(width=0.11, taper=0.78, detail="carrot", flesh=(110, 195, 255)),
}


def _look(obj: CookingObject) -> _Look:
    return _LOOKS.get(obj.key, _Look())


def _flesh(obj: CookingObject) -> BGR:
    look = _look(obj)
    return look.flesh if look.flesh is not None else obj.accent


def _half_width(obj: CookingObject, x: np.ndarray, remain: float = 1.0) -> np.ndarray:
    """Half width of a round or long object across its axis at local positions ``x`` ``(N,)``."""
    look = _look(obj)
    if obj.shape == "round":
        r = 0.5 * math.sqrt(remain)
        return r * look.aspect * np.sqrt(np.clip(1.0 - (x / r) ** 2, 0.0, 1.0))
    end = -0.5 + remain
    base = look.width * (1.0 - look.taper * (x + 0.5))
    cap = look.width * 0.9  # rounded ends: the width falls off within about one width of each end
    to_end = np.minimum(x + 0.5, end - x if remain >= 1.0 else cap)
    return base * np.sqrt(np.clip(to_end / cap, 0.0, 1.0))


def _end_x(obj: CookingObject, remain: float = 1.0) -> float:
    """Local x of the free end (the end that is cut or grated away)."""
    return 0.5 * math.sqrt(remain) if obj.shape == "round" else -0.5 + remain


def _draw_round(img: np.ndarray, obj: CookingObject, pose: _Pose, remain: float) -> None:
    look = _look(obj)
    r = 0.5 * math.sqrt(remain)
    pose.ellipse(img, (0, 0), (r, r * look.aspect), _shade(obj.color, 0.62))
    pose.ellipse(img, (0, 0), (r * 0.95, r * look.aspect * 0.95), obj.color)
    _DETAILS.get(look.detail, _no_detail)(img, obj, pose, r)
    pose.ellipse(
        img, (-0.4 * r, -0.35 * r * look.aspect), (0.22 * r, 0.12 * r), _mix(obj.color, _WHITE, 0.45), angle=-25
    )


def _long_outline(obj: CookingObject, remain: float) -> np.ndarray:
    """Closed outline ``(2N, 2)`` of a long object, local units."""
    xs = np.linspace(-0.5, -0.5 + remain, 14)
    hw = _half_width(obj, xs, remain)
    return np.concatenate([np.stack([xs, -hw], 1), np.stack([xs[::-1], hw[::-1]], 1)])


def _draw_long(img: np.ndarray, obj: CookingObject, pose: _Pose, remain: float) -> None:
    look = _look(obj)
    pose.fill(img, _long_outline(obj, remain), obj.color, outline=_shade(obj.color, 0.55))
    _DETAILS.get(look.detail, _no_detail)(img, obj, pose, remain)
    end = -0.5 + remain
    hw = float(_half_width(obj, np.array([end - 0.08]), remain)[0])
    pose.line(
        img,
        (-0.42, -0.45 * look.width),
        (end - 0.1, -0.45 * hw),
        _mix(obj.color, _WHITE, 0.4),
        max(1.0, 0.02 * pose.size),
    )
    if remain < 1.0:  # the cut face shows the flesh
        pose.ellipse(img, (end, 0), (0.025, hw * 1.05), _flesh(obj))


def _no_detail(img: np.ndarray, obj: CookingObject, pose: _Pose, r: float) -> None:
    """Objects whose shape recipe and colours say it all."""


def _detail_onion(img: np.ndarray, obj: CookingObject, pose: _Pose, r: float) -> None:
    a = _look(obj).aspect
    for k in (0.3, 0.62, 0.85):  # papery meridians converging at root and tip
        pose.ellipse(img, (0, 0), (r * 0.95, r * a * k), obj.accent, 1)
    pose.fill(img, [(0.9 * r, -0.12 * r), (1.25 * r, 0), (0.9 * r, 0.12 * r)], _shade(obj.color, 0.7))
    for dy in (-0.1, 0.0, 0.1):  # root hairs
        pose.line(img, (-0.95 * r, dy * r), (-1.12 * r, dy * 2 * r), _shade(obj.color, 0.5), 1)


def _detail_pineapple(img: np.ndarray, obj: CookingObject, pose: _Pose, r: float) -> None:
    a = _look(obj).aspect
    eye = _shade(obj.color, 0.55)
    for gx in np.linspace(-0.7, 0.7, 6):
        for gy in np.linspace(-0.6, 0.6, 4):
            if (gx / 0.85) ** 2 + (gy / 0.8) ** 2 < 1.0:
                pose.ellipse(img, (gx * r, gy * r * a + 0.08 * r * (gx * 4 % 2)), (0.07 * r, 0.05 * r), eye)
    for ang in (-40, -20, 0, 20, 40):  # the crown of leaves at the top end
        d = _unit(ang)
        pose.fill(
            img,
            [(0.9 * r, -0.07 * r), (0.9 * r + 0.75 * r * d[0], 0.75 * r * d[1]), (0.9 * r, 0.07 * r)],
            obj.accent,
            outline=_shade(obj.accent, 0.6),
        )


def _detail_orange(img: np.ndarray, obj: CookingObject, pose: _Pose, r: float) -> None:
    pose.ellipse(img, (0.1 * r, 0.05 * r), (0.09 * r, 0.08 * r), _shade(obj.color, 0.7))
    for gx, gy in ((-0.5, 0.3), (0.4, -0.5), (0.55, 0.45), (-0.2, -0.6), (-0.6, -0.2)):
        pose.ellipse(img, (gx * r, gy * r), (0.035 * r, 0.035 * r), _shade(obj.color, 0.85))


def _detail_apple(img: np.ndarray, obj: CookingObject, pose: _Pose, r: float) -> None:
    pose.ellipse(img, (0.05 * r, 0), (0.22 * r, 0.2 * r), _shade(obj.color, 0.75))
    pose.line(img, (0.05 * r, 0), (0.35 * r, -0.25 * r), (30, 60, 90), max(1.0, 0.05 * r * pose.size))
    pose.ellipse(img, (0.45 * r, -0.2 * r), (0.2 * r, 0.09 * r), (40, 150, 60), angle=30)


def _detail_tips(img: np.ndarray, obj: CookingObject, pose: _Pose, r: float) -> None:
    a = _look(obj).aspect
    for sx in (-1, 1):
        pose.ellipse(img, (sx * 0.97 * r, 0), (0.12 * r, 0.1 * r * a), obj.color)
        pose.ellipse(img, (sx * 1.05 * r, 0), (0.04 * r, 0.04 * r), _shade(obj.color, 0.7))


def _detail_cucumber(img: np.ndarray, obj: CookingObject, pose: _Pose, remain: float) -> None:
    end = -0.5 + remain
    for i, x in enumerate(np.linspace(-0.4, 0.4, 9)):
        if x < end - 0.04:
            pose.ellipse(img, (x, (-0.05, 0.04, -0.01)[i % 3]), (0.012, 0.008), obj.accent)
    pose.ellipse(img, (-0.5, 0), (0.015, 0.03), _shade(obj.color, 0.5))


def _detail_carrot(img: np.ndarray, obj: CookingObject, pose: _Pose, remain: float) -> None:
    end = -0.5 + remain
    for x in np.linspace(-0.3, 0.35, 6):
        if x < end - 0.04:
            hw = float(_half_width(obj, np.array([x]), remain)[0])
            pose.line(img, (x, -0.8 * hw), (x + 0.02, -0.2 * hw), _shade(obj.color, 0.75), 1)
    for ang in (-35, -10, 12, 38):  # leafy top at the thick end
        d = _unit(180 + ang)
        pose.line(img, (-0.5, 0), (-0.5 + 0.28 * d[0], 0.28 * d[1]), obj.accent, max(1.0, 0.025 * pose.size))


_DETAILS = {
    "onion": _detail_onion,
    "pineapple": _detail_pineapple,
    "orange": _detail_orange,
    "apple": _detail_apple,
    "tips": _detail_tips,
    "cucumber": _detail_cucumber,
    "carrot": _detail_carrot,
}

_BOTTLE = [
    (-0.15, 0.47),
    (-0.12, 0.5),
    (0.12, 0.5),
    (0.15, 0.47),
    (0.15, -0.05),
    (0.055, -0.25),
    (0.055, -0.43),
    (-0.055, -0.43),
    (-0.055, -0.25),
    (-0.15, -0.05),
]


def _draw_bottle(img: np.ndarray, obj: CookingObject, pose: _Pose, remain: float) -> None:
    pose.fill(img, _BOTTLE, obj.color, outline=_shade(obj.color, 0.55))
    pose.fill(img, [(-0.15, 0.1), (0.15, 0.1), (0.15, 0.32), (-0.15, 0.32)], obj.accent)
    pose.fill(
        img,
        [(-0.065, -0.5), (0.065, -0.5), (0.065, -0.42), (-0.065, -0.42)],
        obj.accent,
        outline=_shade(obj.accent, 0.6),
    )
    pose.line(img, (-0.09, -0.02), (-0.09, 0.08), _mix(obj.color, _WHITE, 0.6), max(1.0, 0.025 * pose.size))
    pose.line(img, (-0.09, 0.35), (-0.09, 0.45), _mix(obj.color, _WHITE, 0.6), max(1.0, 0.025 * pose.size))


def _draw_shaker(img: np.ndarray, obj: CookingObject, pose: _Pose, remain: float) -> None:
    body = [(-0.17, 0.46), (-0.14, 0.5), (0.14, 0.5), (0.17, 0.46), (0.17, -0.22), (-0.17, -0.22)]
    pose.fill(img, body, obj.color, outline=_shade(obj.color, 0.5))
    pose.fill(img, [(-0.19, -0.22), (0.19, -0.22), (0.19, -0.38), (-0.19, -0.38)], obj.accent)
    pose.ellipse(img, (0, -0.38), (0.19, 0.09), _mix(obj.accent, _WHITE, 0.25))
    for hx in (-0.08, 0.0, 0.08):
        pose.ellipse(img, (hx, -0.38), (0.022, 0.016), _shade(obj.accent, 0.4))
    pose.line(img, (-0.1, -0.15), (-0.1, 0.42), _mix(obj.color, _WHITE, 0.5), max(1.0, 0.03 * pose.size))


def _draw_can(img: np.ndarray, obj: CookingObject, pose: _Pose, remain: float) -> None:
    pose.ellipse(img, (0, 0.38), (0.3, 0.09), _shade(obj.accent, 0.7))
    pose.fill(img, [(-0.3, -0.33), (0.3, -0.33), (0.3, 0.38), (-0.3, 0.38)], obj.color)
    for y in (-0.2, 0.26):
        pose.line(img, (-0.3, y), (0.3, y), _mix(obj.color, _WHITE, 0.55), max(1.0, 0.03 * pose.size))
    pose.ellipse(img, (0, 0.05), (0.14, 0.1), _mix(obj.color, (40, 200, 240), 0.7))
    pose.ellipse(img, (0, -0.33), (0.3, 0.09), obj.accent)
    pose.ellipse(img, (0, -0.33), (0.25, 0.065), _shade(obj.accent, 0.8), 1)
    pose.ellipse(img, (0.12, -0.34), (0.06, 0.025), _shade(obj.accent, 0.6))
    pose.line(img, (-0.2, -0.28), (-0.2, 0.35), _mix(obj.color, _WHITE, 0.35), max(1.0, 0.03 * pose.size))


def _draw_bowl(img: np.ndarray, obj: CookingObject, pose: _Pose, remain: float) -> None:
    pose.ellipse(img, (0, 0.03), (0.5, 0.42), _shade(obj.color, 0.75))
    pose.ellipse(img, (0, 0), (0.49, 0.39), obj.color)
    ax, ay = _INTERIOR["bowl"]
    pose.ellipse(img, (0, 0.02), (ax, ay), _mix(obj.color, obj.accent, 0.55))
    pose.ellipse(img, (0, 0), (0.46, 0.36), _mix(obj.color, _WHITE, 0.5), 1, arc=(200, 300))


def _draw_pan(img: np.ndarray, obj: CookingObject, pose: _Pose, remain: float) -> None:
    handle = [(0.45, -0.05), (1.0, -0.06), (1.05, 0.0), (1.0, 0.06), (0.45, 0.05)]
    pose.fill(img, handle, obj.accent, outline=_shade(obj.color, 1.6))
    pose.ellipse(img, (0.95, 0), (0.025, 0.02), _shade(obj.color, 2.0))
    pose.ellipse(img, (0, 0), (0.5, 0.47), obj.color)
    ax, ay = _INTERIOR["pan"]
    pose.ellipse(img, (0, 0), (ax, ay), obj.accent)
    pose.ellipse(img, (0, 0), (0.47, 0.44), _shade(obj.color, 1.8), 1, arc=(190, 290))


def _draw_plate(img: np.ndarray, obj: CookingObject, pose: _Pose, remain: float) -> None:
    pose.ellipse(img, (0, 0.025), (0.5, 0.44), _shade(obj.color, 0.72))
    pose.ellipse(img, (0, 0), (0.5, 0.44), obj.color)
    pose.ellipse(img, (0, 0), (0.4, 0.35), obj.accent, max(1, round(0.015 * pose.size)))
    pose.ellipse(img, (0, 0.01), (0.34, 0.29), _shade(obj.color, 0.93))


# Inner (fillable) ellipse of the containers, local half axes.
_INTERIOR: dict[str, Point] = {"bowl": (0.41, 0.31), "pan": (0.43, 0.4)}

_SHAPES = {
    "round": _draw_round,
    "long": _draw_long,
    "bottle": _draw_bottle,
    "shaker": _draw_shaker,
    "bowl": _draw_bowl,
    "pan": _draw_pan,
    "plate": _draw_plate,
    "can": _draw_can,
}
# Standing things keep roughly upright on screen; the rest lie on the counter at any angle.
_STANDING = {"bottle", "shaker", "can"}


def _draw_object(img: np.ndarray, obj: CookingObject, pose: _Pose, remain: float = 1.0) -> None:
    """Draw a vocabulary object in place.

    Args:
        img: ``(H, W, 3)`` uint8 BGR canvas, drawn on in place.
        obj: the object; its shape recipe, colours and look decide the drawing.
        pose: where; ``pose.size`` is the object's size in pixels.
        remain: fraction left after grating (round and long objects shrink from their free end).
    """
    _SHAPES[obj.shape](img, obj, pose, remain)
