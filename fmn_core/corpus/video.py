"""Procedural kitchen-scene renderer: the video half of the built-in corpus (DESIGN.md §3).

A clip shows one action on one object of the vocabulary, seen from above the counter at a
slight angle: a knife cutting, a peeler peeling, a bottle pouring, a shaker sprinkling, a hand
squeezing, a spoon stirring, an object taken out of a cupboard, water washing, a grater
grating. Everything else is nuisance drawn from the seed (counter, wall, lighting, camera,
shake, object pose, skin tone, strokes and speed, duration, idle distractor objects, sensor
noise) and sampled *before* anything that depends on the class, so that a given seed gives the
same nuisance whatever the class: only the action and the object identify it.

Speed matters (the default corpus is ~100k frames): the static part of a clip (counter,
distractors, sink, grater...) is drawn once, each frame copies it and draws the moving parts
with OpenCV primitives, then one affine warp (camera + shake), a lookup table and a gain map
(lighting) and a cycled noise tile finish it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from fmn_core.corpus.vocabulary import OBJECTS, CookingClass, CookingObject, parse_class
from fmn_core.media.video_io import write_mp4

BGR = tuple[int, int, int]
Point = tuple[float, float]


@dataclass(frozen=True)
class RenderSettings:
    """Size, rate and duration range of rendered clips."""

    width: int = 320  # frame width in pixels (even: H.264 with yuv420p needs it)
    height: int = 240  # frame height in pixels (even); drawing scales with it
    fps: int = 25  # frames per second
    min_seconds: float = 2.0  # shortest clip duration
    max_seconds: float = 6.0  # longest clip duration

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or min(self.width, self.height) < 32:
            raise ValueError(f"width and height must be even and at least 32, got {self.width}x{self.height}")
        if self.fps <= 0 or not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError(f"need fps > 0 and 0 < min_seconds <= max_seconds, got {self}")


DEFAULT_SETTINGS = RenderSettings()  # the paper-size corpus: 320x240 at 25 fps, 2-6 s


@dataclass(frozen=True)
class ClipInfo:
    """What a rendered clip is: its class, size, timing and the nuisance drawn from its seed."""

    class_key: str  # the class rendered, e.g. 'cut_onion'
    seed: int  # the seed that fixed every random choice
    n_frames: int  # number of frames
    duration_s: float  # n_frames / fps
    fps: int  # frames per second
    width: int  # frame width in pixels
    height: int  # frame height in pixels
    nuisance: dict[str, Any] = field(default_factory=dict)  # sampled nuisance parameters (JSON-able)


def render_clip(class_key: str, seed: int, settings: RenderSettings = DEFAULT_SETTINGS) -> Iterator[np.ndarray]:
    """Render one clip frame by frame.

    The class is parsed and the scene planned immediately (so an unknown class raises here, not
    on the first frame); frames are drawn lazily.

    Args:
        class_key: an (action, object) class of the vocabulary, e.g. 'peel_carrot'.
        seed: fixes every random choice; the same (class_key, seed, settings) gives identical pixels.
        settings: frame size, rate and duration range.

    Returns:
        An iterator of ``(H, W, 3)`` uint8 BGR frames.

    Raises:
        VocabularyError: ``class_key`` is not a sensible class of the vocabulary.
    """
    return _plan(class_key, seed, settings).frames()


def describe_clip(class_key: str, seed: int, settings: RenderSettings = DEFAULT_SETTINGS) -> ClipInfo:
    """The ClipInfo that :func:`write_clip` would return, without rendering any frame."""
    return _plan(class_key, seed, settings).info


def write_clip(
    class_key: str, seed: int, out_path: str | os.PathLike[str], settings: RenderSettings = DEFAULT_SETTINGS
) -> ClipInfo:
    """Render one clip and encode it as H.264 MP4 at ``out_path`` (written atomically).

    Raises:
        VocabularyError: unknown class.
        MediaError: the file could not be written.
    """
    plan = _plan(class_key, seed, settings)
    write_mp4(out_path, plan.frames(), fps=settings.fps)
    return plan.info


# --------------------------------------------------------------------------------------------
# Drawing primitives. Coordinates are float pixels; OpenCV gets them as fixed point (4 fractional
# bits) so that slow motions move smoothly instead of jumping whole pixels.

_SHIFT = 4
_FIX = 1 << _SHIFT
_WHITE: BGR = (255, 255, 255)
_METAL: BGR = (196, 196, 202)


def _fx(v: float) -> int:
    return int(round(v * _FIX))


def _shade(c: BGR, f: float) -> BGR:
    """Colour ``c`` scaled by ``f`` (< 1 darker), clipped to 0..255."""
    return (min(255, int(c[0] * f)), min(255, int(c[1] * f)), min(255, int(c[2] * f)))


def _mix(a: BGR, b: BGR, t: float) -> BGR:
    """Linear blend from colour ``a`` (t=0) to ``b`` (t=1)."""
    return (int(a[0] + (b[0] - a[0]) * t), int(a[1] + (b[1] - a[1]) * t), int(a[2] + (b[2] - a[2]) * t))


def _fill(img: np.ndarray, pts: np.ndarray, color: BGR, outline: BGR | None = None) -> None:
    """Fill the polygon ``pts`` ``(N, 2)`` px, optionally with a 1-px outline."""
    ipts = np.round(pts * _FIX).astype(np.int32)
    cv2.fillPoly(img, [ipts], color, cv2.LINE_AA, _SHIFT)
    if outline is not None:
        cv2.polylines(img, [ipts], True, outline, 1, cv2.LINE_AA, _SHIFT)


def _darken(img: np.ndarray, pts: np.ndarray, factor: float) -> None:
    """Darken what lies under the polygon ``pts`` ``(N, 2)`` px: a shadow, not a grey shape."""
    h, w = img.shape[:2]
    x0, y0 = np.clip(np.floor(pts.min(axis=0)).astype(int), 0, (w, h))
    x1, y1 = np.clip(np.ceil(pts.max(axis=0)).astype(int) + 1, 0, (w, h))
    if x1 <= x0 or y1 <= y0:
        return
    roi = img[y0:y1, x0:x1]
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round((pts - (x0, y0)) * _FIX).astype(np.int32)], 255, cv2.LINE_8, _SHIFT)
    np.copyto(roi, (roi * factor).astype(np.uint8), where=mask[..., None] > 0)


def _line(img: np.ndarray, p0: Sequence[float], p1: Sequence[float], color: BGR, thickness: float) -> None:
    cv2.line(
        img, (_fx(p0[0]), _fx(p0[1])), (_fx(p1[0]), _fx(p1[1])), color, max(1, round(thickness)), cv2.LINE_AA, _SHIFT
    )


def _polyline(img: np.ndarray, pts: np.ndarray, color: BGR, thickness: float) -> None:
    cv2.polylines(
        img, [np.round(pts * _FIX).astype(np.int32)], False, color, max(1, round(thickness)), cv2.LINE_AA, _SHIFT
    )


def _circle(img: np.ndarray, c: Sequence[float], r: float, color: BGR, thickness: int = -1) -> None:
    cv2.circle(img, (_fx(c[0]), _fx(c[1])), max(1, _fx(r)), color, thickness, cv2.LINE_AA, _SHIFT)


def _ellipse(
    img: np.ndarray,
    c: Sequence[float],
    axes: Sequence[float],
    angle: float,
    color: BGR,
    thickness: int = -1,
    arc: tuple[float, float] = (0.0, 360.0),
) -> None:
    cv2.ellipse(
        img,
        (_fx(c[0]), _fx(c[1])),
        (max(1, _fx(axes[0])), max(1, _fx(axes[1]))),
        angle,
        arc[0],
        arc[1],
        color,
        thickness,
        cv2.LINE_AA,
        _SHIFT,
    )


def _unit(angle: float) -> np.ndarray:
    """Unit vector at ``angle`` degrees, clockwise on screen from +x (image y points down)."""
    a = math.radians(angle)
    return np.array([math.cos(a), math.sin(a)])


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True)
class _Pose:
    """Where a drawing sits: local unit coordinates -> pixels (scale ``size``, rotation ``angle``)."""

    x: float  # centre, px
    y: float  # centre, px
    size: float  # pixels per local unit
    angle: float = 0.0  # degrees, clockwise on screen

    def px(self, pts: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
        """Local points ``(N, 2)`` -> pixel points ``(N, 2)``."""
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        a = math.radians(self.angle)
        c, s = math.cos(a), math.sin(a)
        return np.stack(
            [self.x + self.size * (p[:, 0] * c - p[:, 1] * s), self.y + self.size * (p[:, 0] * s + p[:, 1] * c)], axis=1
        )

    def pt(self, lx: float, ly: float) -> np.ndarray:
        """One local point -> pixel point ``(2,)``."""
        a = math.radians(self.angle)  # plain math: this runs thousands of times per clip, numpy's overhead shows
        c, s = math.cos(a), math.sin(a)
        return np.array((self.x + self.size * (lx * c - ly * s), self.y + self.size * (lx * s + ly * c)))

    def ellipse(
        self,
        img: np.ndarray,
        c: Point,
        axes: Point,
        color: BGR,
        thickness: int = -1,
        angle: float = 0.0,
        arc: tuple[float, float] = (0.0, 360.0),
    ) -> None:
        """Draw an ellipse given in local units."""
        _ellipse(
            img, self.pt(*c), (axes[0] * self.size, axes[1] * self.size), self.angle + angle, color, thickness, arc
        )

    def fill(self, img: np.ndarray, pts: Sequence[Sequence[float]], color: BGR, outline: BGR | None = None) -> None:
        """Fill a polygon given in local units."""
        _fill(img, self.px(pts), color, outline)

    def line(self, img: np.ndarray, p0: Point, p1: Point, color: BGR, thickness: float) -> None:
        """Draw a line between two local points; ``thickness`` in pixels."""
        _line(img, self.pt(*p0), self.pt(*p1), color, thickness)


# --------------------------------------------------------------------------------------------
# Objects. Each shape recipe of the vocabulary draws in local units where 1 = the object's size;
# long things lie along local +x, standing things (bottle, shaker, can) have their top at -y.


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


# --------------------------------------------------------------------------------------------
# Hands and tools.


def _draw_hand(
    img: np.ndarray, pos: Sequence[float], angle: float, size: float, skin: BGR, grip: float = 0.0, mirror: bool = False
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


# --------------------------------------------------------------------------------------------
# The scene: nuisance parameters of one clip and the state every action shares.

_SKINS: tuple[BGR, ...] = (
    (190, 215, 245),
    (160, 195, 235),
    (130, 170, 220),
    (100, 140, 195),
    (70, 105, 160),
    (50, 75, 115),
)
_FOOD: tuple[BGR, ...] = (
    (40, 50, 200),
    (50, 160, 60),
    (60, 200, 230),
    (150, 170, 190),
    (60, 80, 140),
    (140, 205, 235),
    (90, 40, 80),
    (35, 110, 40),
    (170, 215, 240),
)
_TOOL_HANDLES: tuple[BGR, ...] = (
    (30, 30, 30),
    (40, 60, 100),
    (40, 40, 180),
    (60, 140, 40),
    (160, 90, 30),
    (30, 120, 230),
    (90, 140, 190),
)


@dataclass
class _Scene:
    """Everything an action needs to draw one clip: class, size, timing, sampled nuisance."""

    cls: CookingClass  # the class drawn
    width: int  # frame width, px
    height: int  # frame height, px (sizes are fractions of it)
    n_frames: int  # frames in the clip
    active: tuple[float, float]  # fractions of the clip between which the action happens
    strokes: int  # repetitions of the action's motion (cuts, shakes, circles...)
    centre: Point  # where the action happens, px
    scale: float  # object scale factor
    angle: float  # object rotation, degrees
    skin: BGR  # skin tone of the hands
    sleeve: BGR  # sleeve colour of the arms
    tool: BGR  # handle colour of knives, peelers...
    hand_size: float  # palm-to-fingertip length, px
    food: tuple[BGR, ...]  # colours of food in containers (stirring, sprinkling), clip-specific
    seed: int  # the clip's seed, for per-frame randomness

    @property
    def obj(self) -> CookingObject:
        return OBJECTS[self.cls.obj]

    @property
    def receiver(self) -> CookingObject:
        return OBJECTS[self.cls.receiver or self.cls.obj]

    @property
    def unit(self) -> float:
        """Pixels per pixel of the 240-line reference frame (line widths scale with it)."""
        return self.height / 240.0

    def size(self, obj: CookingObject) -> float:
        """Drawn size of an object in this clip, px."""
        return obj.size * self.height * self.scale

    def phase(self, t: int) -> float:
        """Progress of the action at frame ``t``, 0 before it starts .. 1 after it ends."""
        u = t / max(1, self.n_frames - 1)
        return min(1.0, max(0.0, (u - self.active[0]) / (self.active[1] - self.active[0])))

    def stroke(self, t: int) -> tuple[int, float]:
        """(index of the current stroke, fraction of it done) at frame ``t``."""
        v = self.phase(t) * self.strokes
        k = min(int(v), self.strokes - 1)
        return k, min(1.0, v - k)

    def phase_per_frame(self) -> float:
        """How much :meth:`phase` advances per frame (to express falling times in frames)."""
        return 1.0 / max(1.0, (self.active[1] - self.active[0]) * (self.n_frames - 1))

    def frame_rng(self, t: int) -> np.random.Generator:
        """Randomness of one frame (splashes, stream wobble), independent of frame order."""
        return np.random.default_rng([self.seed, 7, t])

    def hand(
        self,
        img: np.ndarray,
        pos: Sequence[float],
        angle: float,
        grip: float = 0.0,
        arm_to: Sequence[float] | None = None,
        mirror: bool = False,
    ) -> None:
        """A hand at ``pos``, fingers towards ``angle``, its arm reaching off screen (default: down, to the cook)."""
        p = np.asarray(pos, dtype=np.float64)
        if arm_to is None:
            arm_to = (p[0] + (p[0] - self.width / 2) * 0.6, self.height * 1.35)
        wrist = p - _unit(angle) * 0.2 * self.hand_size
        _draw_arm(img, wrist, np.asarray(arm_to, dtype=np.float64), self.hand_size, self.skin, self.sleeve)
        _draw_hand(img, p, angle, self.hand_size, self.skin, grip, mirror)

    def grasp(self, img: np.ndarray, point: Sequence[float], angle: float, grip: float = 0.5, **kwargs: Any) -> None:
        """A hand whose fingers lie over ``point``, reaching in along ``angle`` (the palm stays outside)."""
        self.hand(img, np.asarray(point, dtype=np.float64) - _unit(angle) * 0.4 * self.hand_size, angle, grip, **kwargs)

    def object_pose(
        self, obj: CookingObject | None = None, at: Point | None = None, scale: float = 1.0, angle: float | None = None
    ) -> _Pose:
        obj = obj or self.obj
        x, y = at or self.centre
        return _Pose(x, y, self.size(obj) * scale, self.angle if angle is None else angle)


def _sample_scene(
    cls: CookingClass, seed: int, settings: RenderSettings, rng: np.random.Generator, nuisance: dict[str, Any]
) -> _Scene:
    """Draw the class-independent pose, people and timing nuisance; records them in ``nuisance``."""
    w, h = settings.width, settings.height
    seconds = rng.uniform(settings.min_seconds, settings.max_seconds)
    n_frames = max(2, round(seconds * settings.fps))
    active = (float(rng.uniform(0.0, 0.12)), float(rng.uniform(0.88, 1.0)))
    centre = (float(rng.uniform(0.4, 0.6) * w), float(rng.uniform(0.54, 0.64) * h))
    skin = _jitter(rng, _SKINS[rng.integers(len(_SKINS))], 10)
    sleeve = _random_color(rng, 30, 230)
    tool = _TOOL_HANDLES[rng.integers(len(_TOOL_HANDLES))]
    food_idx = rng.choice(len(_FOOD), size=3, replace=False)
    scene = _Scene(
        cls=cls,
        width=w,
        height=h,
        n_frames=n_frames,
        active=active,
        strokes=1,
        centre=centre,
        scale=float(rng.uniform(0.85, 1.15)),
        angle=float(rng.uniform(-35, 35)),
        skin=skin,
        sleeve=sleeve,
        tool=tool,
        hand_size=float(rng.uniform(0.12, 0.145) * h),
        food=tuple(_FOOD[i] for i in food_idx),
        seed=seed,
    )
    speed = float(rng.uniform(0.0, 1.0))  # how many strokes within the action's range: slow..fast
    lo, hi = _ACTIONS[cls.action].strokes
    scene.strokes = lo + round(speed * (hi - lo))
    nuisance.update(
        duration_s=n_frames / settings.fps,
        active=list(active),
        centre=list(centre),
        skin=list(skin),
        sleeve=list(sleeve),
        object_scale=scene.scale,
        object_angle=scene.angle,
        strokes=scene.strokes,
        hand_size=scene.hand_size,
    )
    return scene


def _jitter(rng: np.random.Generator, c: BGR, amount: int) -> BGR:
    """Colour ``c`` with each channel moved by up to ``amount``."""
    j = rng.integers(-amount, amount + 1, 3)
    return (int(np.clip(c[0] + j[0], 0, 255)), int(np.clip(c[1] + j[1], 0, 255)), int(np.clip(c[2] + j[2], 0, 255)))


def _random_color(rng: np.random.Generator, lo: int, hi: int) -> BGR:
    """A colour with every channel uniform in ``lo..hi``."""
    b, g, r = rng.integers(lo, hi, 3)
    return (int(b), int(g), int(r))


# --------------------------------------------------------------------------------------------
# Actions. Each one draws what stands still once (into the pre-rendered background) and what
# moves on every frame; all randomness comes from the generator it is built with.


class _Action:
    """Base of the per-action drawings."""

    strokes: tuple[int, int] = (2, 5)  # range of repetitions, slow to fast

    def __init__(self, scene: _Scene, rng: np.random.Generator) -> None:
        self.scene = scene

    def draw_static(self, img: np.ndarray) -> None:
        """Draw what does not move (containers, sink, grater...) into the background."""

    def draw(self, img: np.ndarray, t: int) -> None:
        """Draw the moving parts of frame ``t`` in place."""
        raise NotImplementedError


class _Cut(_Action):
    """A knife chops across the object from its free end, leaving slices; the other hand holds it."""

    strokes = (3, 8)

    def __init__(self, scene: _Scene, rng: np.random.Generator) -> None:
        super().__init__(scene, rng)
        self.pose = scene.object_pose()
        self.knife_angle = _upward(self.pose.angle) + float(rng.uniform(-12, 12))
        self.knife_size = 0.36 * scene.height
        self.cuts = np.linspace(0.4, -0.25 if scene.obj.shape == "long" else -0.2, scene.strokes)
        self.hand_side = float(rng.choice([-1.0, 1.0]))

    def draw_static(self, img: np.ndarray) -> None:
        _draw_object(img, self.scene.obj, self.pose)  # it does not move: only slice marks are added on top

    def draw(self, img: np.ndarray, t: int) -> None:
        s, obj = self.scene, self.scene.obj
        k, f = s.stroke(t)
        for x in self.cuts[: k + (f >= 0.5)]:
            hw = 0.97 * float(_half_width(obj, np.array([x]))[0])
            self.pose.line(img, (x, -hw), (x, hw), _flesh(obj), max(1.5, 0.018 * self.pose.size))
            self.pose.line(img, (x + 0.018, -hw), (x + 0.018, hw), _shade(obj.color, 0.45), 1)
        s.grasp(img, self.pose.pt(-0.45, 0.0), self.pose.angle, grip=0.55)
        # Move to the next cut while the blade is up (first 30 % of a stroke), then chop down and up.
        prev = self.cuts[max(0, k - 1)]
        x = prev + (self.cuts[k] - prev) * _smoothstep(f / 0.3)
        lift = abs(math.cos(math.pi * f)) * 0.22 * self.pose.size
        d = _unit(self.knife_angle)
        origin = self.pose.pt(x, 0.0) - d * 0.5 * self.knife_size
        shadow = _Pose(origin[0] + 0.2 * lift, origin[1] + 0.3 * lift, self.knife_size, self.knife_angle)
        if lift > 1.0:
            _darken(img, shadow.px([(0, -0.07), (0.8, -0.07), (1.0, 0.0), (0, 0.08)]), 0.6)
        knife = replace(shadow, x=origin[0], y=origin[1] - lift)
        _draw_knife(img, knife, s.tool)
        s.hand(img, knife.pt(-0.26, 0.0), self.knife_angle + 90 * self.hand_side, grip=0.7, mirror=self.hand_side < 0)


class _Peel(_Action):
    """A peeler sweeps along the object, each stroke baring a strip of flesh; peel curls pile up."""

    strokes = (3, 7)

    def __init__(self, scene: _Scene, rng: np.random.Generator) -> None:
        super().__init__(scene, rng)
        obj = scene.obj
        self.pose = scene.object_pose()
        self.span = (-0.28, 0.44) if obj.shape == "long" else (-0.36, 0.36)
        reach = float(_half_width(obj, np.array([0.0]))[0]) * 0.7
        self.lanes = np.linspace(-reach, reach, scene.strokes)
        self.strip = reach / max(2, scene.strokes - 1) * 1.2 + 0.02
        self.peeler_angle = _upward(self.pose.angle) + float(rng.uniform(15, 35)) * float(rng.choice([-1, 1]))
        side = float(rng.choice([-1, 1]))
        self.curls = [
            (
                self.pose.pt(float(rng.uniform(-0.3, 0.4)), side * float(rng.uniform(0.3, 0.5))),
                float(rng.uniform(0, 180)),
            )
            for _ in range(scene.strokes)
        ]

    def draw_static(self, img: np.ndarray) -> None:
        _draw_object(img, self.scene.obj, self.pose)  # it does not move: only bared strips are added on top

    def _strip(self, img: np.ndarray, lane: float, x1: float) -> None:
        obj = self.scene.obj
        x0 = self.span[0]
        if x1 - x0 < 0.01:
            return
        xs = np.linspace(x0, x1, 8)
        hw = _half_width(obj, xs) * 0.92
        lo, hi = np.clip(lane - self.strip, -hw, hw), np.clip(lane + self.strip, -hw, hw)
        self.pose.fill(img, np.concatenate([np.stack([xs, lo], 1), np.stack([xs[::-1], hi[::-1]], 1)]), _flesh(obj))

    def draw(self, img: np.ndarray, t: int) -> None:
        s, obj = self.scene, self.scene.obj
        k, f = s.stroke(t)
        sweep = _smoothstep(f / 0.8)  # the last 20 % of a stroke returns the peeler for the next lane
        x = self.span[0] + (self.span[1] - self.span[0]) * (sweep if f < 0.8 else 1.0 - _smoothstep((f - 0.8) / 0.2))
        for j in range(k):
            self._strip(img, float(self.lanes[j]), self.span[1])
        self._strip(img, float(self.lanes[k]), self.span[0] + (self.span[1] - self.span[0]) * sweep)
        size = 0.05 * s.height
        for c, ang in self.curls[: k + (f >= 0.8)]:
            _ellipse(img, c, (size, size * 0.6), ang, obj.color, max(2, round(2 * s.unit)), (0, 250))
        s.grasp(img, self.pose.pt(-0.45, 0.0), self.pose.angle, grip=0.5)
        d = _unit(self.peeler_angle)
        lifted = 0.1 * s.height if f >= 0.8 else 0.0
        c = self.pose.pt(x, float(self.lanes[k])) - d * 0.22 * 0.3 * s.height - np.array([0, lifted])
        peeler = _Pose(c[0], c[1], 0.3 * s.height, self.peeler_angle)
        _draw_peeler(img, peeler, s.tool)
        s.hand(img, peeler.pt(-0.45, 0.0), self.peeler_angle + 90, grip=0.7)


class _Pour(_Action):
    """A bottle tilts over the receiver; a stream runs into it and the liquid spreads."""

    strokes = (1, 2)

    def __init__(self, scene: _Scene, rng: np.random.Generator) -> None:
        super().__init__(scene, rng)
        recv = scene.receiver
        handle = float(rng.choice([0.0, 180.0])) + float(rng.uniform(-30, 30))
        self.recv = scene.object_pose(recv, angle=handle)
        self.side = float(rng.choice([-1.0, 1.0]))
        cx, cy = scene.centre
        self.bottle_at = (cx + self.side * 0.5 * self.recv.size, cy - 0.62 * self.recv.size)
        self.target = self.recv.pt(self.side * 0.08, 0.0)
        self.tilt = float(rng.uniform(100, 125))

    def draw_static(self, img: np.ndarray) -> None:
        _draw_object(img, self.scene.receiver, self.recv)

    def draw(self, img: np.ndarray, t: int) -> None:
        s, obj = self.scene, self.scene.obj
        k, f = s.stroke(t)
        up = _smoothstep(f / 0.25) * (1.0 - _smoothstep((f - 0.75) / 0.25))
        poured = (k + min(1.0, max(0.0, (f - 0.22) / 0.56))) / s.strokes
        if poured > 0:
            ax, ay = _INTERIOR[s.receiver.key]
            r = math.sqrt(poured) * 0.92
            self.recv.ellipse(img, (self.side * 0.04 * (1 - r), 0.02), (ax * r, ay * r), _liquid(obj))
        pose = _Pose(*self.bottle_at, s.size(obj), -self.side * self.tilt * up)
        if 0.22 < f < 0.78:
            self._stream(img, pose.pt(0.0, -0.5), t)
        _draw_object(img, obj, pose)
        s.hand(img, pose.pt(0.0, 0.15), pose.angle + 90 * self.side, grip=0.6, mirror=self.side > 0)

    def _stream(self, img: np.ndarray, spout: np.ndarray, t: int) -> None:
        wobble = self.scene.frame_rng(t).normal(0.0, 1.0, 2) * self.scene.unit
        mid = np.array([spout[0] + (self.target[0] - spout[0]) * 0.35, spout[1]]) + wobble
        ts = np.linspace(0.0, 1.0, 8)[:, None]
        pts = (1 - ts) ** 2 * spout + 2 * (1 - ts) * ts * mid + ts**2 * self.target  # quadratic Bezier
        color = _liquid(self.scene.obj)
        _polyline(img, pts, _shade(color, 0.8), 0.03 * self.scene.height)
        _polyline(img, pts, color, 0.02 * self.scene.height)


def _liquid(obj: CookingObject) -> BGR:
    """Colour of what flows out of a bottle: the bottle's own colour, a little richer."""
    return _shade(obj.color, 0.95)


class _Sprinkle(_Action):
    """A shaker held upside down shakes over a tray of food; grains fall and stay."""

    strokes = (3, 8)

    def __init__(self, scene: _Scene, rng: np.random.Generator) -> None:
        super().__init__(scene, rng)
        h = scene.height
        cx, cy = scene.centre
        self.tray = _Pose(cx, cy + 0.05 * h, 0.62 * h * scene.scale, float(rng.uniform(-15, 15)))
        self.food = [
            (
                (float(rng.uniform(-0.32, 0.32)), float(rng.uniform(-0.2, 0.2))),
                float(rng.uniform(0.05, 0.09)),
                scene.food[int(rng.integers(len(scene.food)))],
            )
            for _ in range(int(rng.integers(6, 11)))
        ]
        # Held off to one side, cap tilted down towards the tray, so the arm does not hide the tray.
        self.side = float(rng.choice([-1.0, 1.0]))
        self.shaker = _Pose(
            cx + self.side * 0.2 * h,
            cy - 0.12 * h,
            scene.size(scene.obj) * 1.25,
            180.0 + self.side * float(rng.uniform(30, 50)),
        )
        cap = self.shaker.pt(0.0, -0.45)
        n = int(rng.integers(7, 12)) * scene.strokes
        self.emit = np.sort(rng.uniform(0, 1, n)) * (1 - 3 * scene.phase_per_frame())
        target = cap + np.array([-self.side * 0.04, 0.14]) * h
        self.land = target + np.stack([rng.normal(0, 0.06, n), rng.normal(0, 0.035, n)], 1) * h
        colors = (scene.obj.color, scene.obj.accent, _shade(scene.obj.color, 0.7))
        self.grain_color = [colors[i] for i in rng.integers(0, 3, n)]
        self.fall = 4 * scene.phase_per_frame()

    def draw_static(self, img: np.ndarray) -> None:
        tray = (90, 92, 98)
        self.tray.fill(img, [(-0.5, -0.32), (0.5, -0.32), (0.5, 0.32), (-0.5, 0.32)], tray, outline=_shade(tray, 0.5))
        self.tray.fill(img, [(-0.45, -0.27), (0.45, -0.27), (0.45, 0.27), (-0.45, 0.27)], _shade(tray, 0.8))
        for c, r, color in self.food:
            self.tray.ellipse(img, c, (r, r * 0.75), color, angle=c[0] * 300)
            self.tray.ellipse(img, (c[0] - r * 0.3, c[1] - r * 0.3), (r * 0.3, r * 0.2), _mix(color, _WHITE, 0.3))

    def draw(self, img: np.ndarray, t: int) -> None:
        s = self.scene
        p = s.phase(t)
        shake = math.sin(2 * math.pi * s.strokes * p) * 0.05 * s.height if 0 < p < 1 else 0.0
        offset = _unit(self.shaker.angle - 90) * shake  # along the shaker's axis
        pose = replace(self.shaker, x=self.shaker.x + offset[0], y=self.shaker.y + offset[1])
        cap = self.shaker.pt(0.0, -0.45)
        r = max(1.0, 1.1 * s.unit)
        for e, land, color in zip(self.emit, self.land, self.grain_color, strict=True):
            if e > p:
                break
            u = (p - e) / self.fall
            if u >= 1.0:
                _circle(img, land, r, color)
            else:
                a = cap + (land - cap) * u
                _line(img, a, a + (land - cap) * 0.08, color, r * 1.5)
        _draw_object(img, s.obj, pose)
        arm_to = (pose.x + self.side * s.width, s.height * 1.2)
        s.hand(img, pose.pt(0.0, 0.42), pose.angle + 90 * self.side, grip=0.6, arm_to=arm_to, mirror=self.side > 0)


class _Squeeze(_Action):
    """A hand squeezes a halved fruit over a juicer; juice drips down and collects."""

    strokes = (2, 5)

    def __init__(self, scene: _Scene, rng: np.random.Generator) -> None:
        super().__init__(scene, rng)
        h = scene.height
        cx, cy = scene.centre
        self.juicer = _Pose(cx, cy + 0.1 * h, 0.42 * h, 0.0)
        self.fruit = (cx + float(rng.uniform(-0.05, 0.05)) * h, cy - 0.14 * h)
        self.size = scene.size(scene.obj) * 1.6
        self.side = float(rng.choice([-1.0, 1.0]))
        n = int(rng.integers(4, 7)) * scene.strokes
        self.drops = np.sort(rng.uniform(0, 1, n))
        self.drop_x = rng.uniform(-0.3, 0.3, n) * self.size
        self.fall = 5 * scene.phase_per_frame()

    def draw_static(self, img: np.ndarray) -> None:
        glass, j = (215, 205, 195), self.juicer
        j.ellipse(img, (0, 0.04), (0.5, 0.32), _shade(glass, 0.7))
        j.ellipse(img, (0, 0), (0.5, 0.3), glass)
        j.ellipse(img, (0, 0), (0.42, 0.24), _shade(glass, 0.88))
        j.ellipse(img, (0, -0.02), (0.14, 0.09), _mix(glass, _WHITE, 0.4))
        for a in range(0, 180, 30):  # ridges of the reamer cone
            d = _unit(a)
            j.line(img, (0, -0.02), (0.14 * d[0], 0.09 * d[1] - 0.02), _shade(glass, 0.75), 1)

    def draw(self, img: np.ndarray, t: int) -> None:
        s, obj = self.scene, self.scene.obj
        k, f = s.stroke(t)
        p = s.phase(t)
        grip = math.sin(math.pi * f) ** 2 if 0 < p < 1 else 0.0
        juice = _mix(_flesh(obj), obj.color, 0.3)
        level = min(1.0, float(np.searchsorted(self.drops, p)) / len(self.drops))
        if level > 0:
            self.juicer.ellipse(img, (0, 0.02), (0.38 * math.sqrt(level), 0.2 * math.sqrt(level)), juice)
            self.juicer.ellipse(img, (0, -0.02), (0.14, 0.09), _mix((215, 205, 195), _WHITE, 0.4))
        fx, fy = self.fruit
        rx, ry = 0.5 * self.size * (1 + 0.1 * grip), 0.4 * self.size * (1 - 0.3 * grip)
        for e, dx in zip(self.drops, self.drop_x, strict=True):
            u = (p - e) / self.fall
            if 0 <= u < 1:
                y0, y1 = fy + 0.2 * rx, self.juicer.y
                _circle(img, (fx + dx * (1 - 0.5 * u), y0 + (y1 - y0) * u), max(1.0, 1.4 * s.unit), juice)
        _ellipse(img, (fx, fy), (rx, ry), 0, _shade(obj.color, 0.6), arc=(180, 360))
        _ellipse(img, (fx, fy), (rx * 0.96, ry * 0.95), 0, obj.color, arc=(180, 360))
        _ellipse(img, (fx, fy), (rx, 0.22 * rx), 0, _shade(obj.color, 0.7))
        _ellipse(img, (fx, fy), (rx * 0.9, 0.18 * rx), 0, _flesh(obj))
        for a in range(0, 360, 45):  # segments of the cut face
            d = _unit(a)
            _line(img, (fx, fy), (fx + 0.85 * rx * d[0], fy + 0.16 * rx * d[1]), _shade(_flesh(obj), 0.8), 1)
        arm_to = (fx - self.side * s.width, fy + 0.1 * s.height)
        s.grasp(
            img,
            (fx - self.side * 0.25 * rx, fy - 0.75 * ry),
            90 - self.side * 80,
            grip=grip,
            arm_to=arm_to,
            mirror=self.side > 0,
        )


class _Stir(_Action):
    """A spoon (bowl) or spatula (pan) circles inside the container and the food goes round."""

    strokes = (2, 6)

    def __init__(self, scene: _Scene, rng: np.random.Generator) -> None:
        super().__init__(scene, rng)
        handle = float(rng.choice([0.0, 180.0])) + float(rng.uniform(-30, 30))
        self.vessel = scene.object_pose(scene.receiver, angle=handle)
        self.interior = _INTERIOR[scene.receiver.key]
        n = int(rng.integers(7, 13))
        self.pieces = [
            (
                float(rng.uniform(0.15, 0.8)),
                float(rng.uniform(0, 2 * math.pi)),
                float(rng.uniform(0.035, 0.06)),
                scene.food[int(rng.integers(1, len(scene.food)))],
            )
            for _ in range(n)
        ]
        self.grip = self.vessel.pt(float(rng.uniform(-0.25, 0.25)), 0.0) + np.array([0.0, 0.62 * self.vessel.size])
        self.direction = float(rng.choice([-1.0, 1.0]))
        self.wood = _jitter(rng, (90, 150, 200), 20)

    def draw_static(self, img: np.ndarray) -> None:
        _draw_object(img, self.scene.receiver, self.vessel)
        ax, ay = self.interior
        self.vessel.ellipse(img, (0, 0.01), (ax * 0.88, ay * 0.86), _mix(self.scene.food[0], (60, 60, 60), 0.15))

    def draw(self, img: np.ndarray, t: int) -> None:
        s = self.scene
        turn = 2 * math.pi * s.strokes * s.phase(t) * self.direction
        ax, ay = self.interior
        for r, a0, size, color in self.pieces:
            a = a0 + 0.8 * turn
            c = (r * ax * 0.8 * math.cos(a), r * ay * 0.8 * math.sin(a))
            self.vessel.ellipse(img, c, (size, size * 0.8), _shade(color, 0.7), angle=math.degrees(a))
            self.vessel.ellipse(img, c, (size * 0.85, size * 0.65), color, angle=math.degrees(a))
        tip = self.vessel.pt(0.55 * ax * math.cos(turn), 0.55 * ay * math.sin(turn))
        grip = self.grip + np.array([0.04 * math.cos(turn), 0.02 * math.sin(turn)]) * s.height
        _draw_stirrer(img, tip, grip, s.receiver.key == "pan", self.wood, 0.45 * s.height)
        d = tip - grip
        s.hand(img, grip, math.degrees(math.atan2(d[1], d[0])) + 90, grip=0.8)


class _TakeOut(_Action):
    """The object is lifted out of a cupboard at the side and set down on the counter."""

    strokes = (1, 1)

    def __init__(self, scene: _Scene, rng: np.random.Generator) -> None:
        super().__init__(scene, rng)
        w, h = scene.width, scene.height
        self.side = float(rng.choice([-1.0, 1.0]))
        x0 = 0.0 if self.side < 0 else w * 0.68
        self.box = (x0, 0.04 * h, x0 + 0.32 * w, 0.5 * h)  # cupboard opening, px
        self.start = (x0 + 0.16 * w, 0.3 * h)
        self.end = (w * 0.5 - self.side * float(rng.uniform(0.02, 0.12)) * w, scene.centre[1] + 0.04 * h)
        self.wood = _jitter(rng, (70, 120, 170), 30)
        self.jars = [
            (float(rng.uniform(0.1, 0.9)), _random_color(rng, 40, 220)) for _ in range(int(rng.integers(1, 4)))
        ]

    def draw_static(self, img: np.ndarray) -> None:
        x0, y0, x1, y1 = self.box
        pad = 0.02 * self.scene.height
        _fill(
            img,
            np.array([(x0 - pad, y0 - pad), (x1 + pad, y0 - pad), (x1 + pad, y1 + pad), (x0 - pad, y1 + pad)]),
            self.wood,
            outline=_shade(self.wood, 0.5),
        )
        _fill(img, np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)]), _shade(self.wood, 0.35))
        shelf = y0 + 0.55 * (y1 - y0)
        _line(img, (x0, shelf), (x1, shelf), _shade(self.wood, 0.8), 3 * self.scene.unit)
        for u, color in self.jars:  # other things on the upper shelf, never the object itself
            jx, jw = x0 + u * (x1 - x0), 0.035 * self.scene.height
            _fill(
                img,
                np.array(
                    [(jx - jw, shelf - 3.2 * jw), (jx + jw, shelf - 3.2 * jw), (jx + jw, shelf), (jx - jw, shelf)]
                ),
                color,
                outline=_shade(color, 0.5),
            )
        hinge = x1 + pad if self.side < 0 else x0 - pad
        out = hinge - self.side * 0.12 * self.scene.width
        door = np.array(
            [
                (hinge, y0 - pad),
                (out, y0 + 0.06 * self.scene.height),
                (out, y1 + 0.12 * self.scene.height),
                (hinge, y1 + pad),
            ]
        )
        _fill(img, door, _shade(self.wood, 1.15), outline=_shade(self.wood, 0.5))

    def draw(self, img: np.ndarray, t: int) -> None:
        s = self.scene
        p = _smoothstep(s.phase(t))
        x = self.start[0] + (self.end[0] - self.start[0]) * p
        y = self.start[1] + (self.end[1] - self.start[1]) * p
        scale = (0.75 + 0.25 * p) * (1 + 0.15 * math.sin(math.pi * p))
        angle = s.angle * 0.3 if s.obj.shape in _STANDING else s.angle
        pose = s.object_pose(at=(x, y), scale=scale, angle=angle)
        _draw_object(img, s.obj, pose)
        u = t / max(1, s.n_frames - 1)
        away = max(0.0, (u - s.active[1]) / max(1e-6, 1 - s.active[1]), 1 - u / max(1e-6, s.active[0]))
        hand = np.array([x, y + 0.4 * pose.size + away * 0.6 * s.height])
        s.hand(img, hand, -90.0, grip=0.5)


class _Wash(_Action):
    """The object turns under a running tap above a sink; water splashes off it."""

    strokes = (2, 5)

    def __init__(self, scene: _Scene, rng: np.random.Generator) -> None:
        super().__init__(scene, rng)
        h = scene.height
        cx, cy = scene.centre
        self.sink = _Pose(cx, cy + 0.02 * h, h, float(rng.uniform(-4, 4)))
        self.tap_base = (cx + float(rng.choice([-1, 1])) * float(rng.uniform(0.28, 0.4)) * h, cy - 0.4 * h)
        self.spout = (cx, cy - 0.3 * h)
        self.steel = _jitter(rng, (185, 185, 190), 15)

    def draw_static(self, img: np.ndarray) -> None:
        steel, sink = self.steel, self.sink
        sink.fill(img, [(-0.62, -0.4), (0.62, -0.4), (0.62, 0.4), (-0.62, 0.4)], steel, outline=_shade(steel, 0.6))
        sink.fill(img, [(-0.55, -0.33), (0.55, -0.33), (0.55, 0.33), (-0.55, 0.33)], _shade(steel, 0.78))
        sink.ellipse(img, (0.3, 0.2), (0.05, 0.04), _shade(steel, 0.4))
        bx, by = self.tap_base
        sx, sy = self.spout
        pipe = np.array([(bx, by), (bx, by - 0.1 * self.scene.height), (sx, by - 0.1 * self.scene.height), (sx, sy)])
        width = 0.045 * self.scene.height
        _circle(img, (bx, by), width, _shade(steel, 0.8))
        _polyline(img, pipe, _shade(steel, 0.6), width + 2)
        _polyline(img, pipe, steel, width)
        _polyline(img, pipe - width * 0.2, _mix(steel, _WHITE, 0.6), max(1.0, width * 0.2))

    def draw(self, img: np.ndarray, t: int) -> None:
        s, obj = self.scene, self.scene.obj
        p = s.phase(t)
        rng = s.frame_rng(t)
        turn = 40 * math.sin(2 * math.pi * s.strokes * p) if obj.shape == "long" else 180 * s.strokes * p
        cx, cy = s.centre
        pose = s.object_pose(at=(cx + 0.03 * s.height * math.sin(4 * math.pi * p), cy), angle=s.angle + turn)
        _draw_object(img, obj, pose)
        water = (245, 225, 200)
        for _ in range(5):  # wet highlights
            c = pose.pt(float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.06, 0.06)))
            _circle(img, c, 1.2 * s.unit, _WHITE)
        top = cy - 0.4 * float(_half_width(obj, np.array([0.0]))[0]) * pose.size
        for dx, width in ((0.0, 0.028), (-0.012, 0.008), (0.012, 0.008)):
            x = self.spout[0] + (dx + rng.normal(0, 0.002)) * s.height
            _line(
                img,
                (x, self.spout[1]),
                (x + rng.normal(0, 1), top),
                water if width > 0.01 else _WHITE,
                width * s.height,
            )
        for a, r in zip(rng.uniform(0, 2 * math.pi, 10), rng.uniform(0.06, 0.2, 10), strict=True):
            _circle(
                img,
                (self.spout[0] + r * s.height * math.cos(a), top + 0.6 * r * s.height * math.sin(a)),
                max(1.0, 1.3 * s.unit),
                water,
            )
        # Round things spin between the fingers: the hands stay put (or the arms would cross).
        held = pose if obj.shape == "long" else replace(pose, angle=s.angle)
        for sx in (-1.0, 1.0):
            s.grasp(img, held.pt(sx * 0.45, 0.0), held.angle + (0 if sx < 0 else 180), grip=0.6, mirror=sx > 0)


class _Grate(_Action):
    """The object is rubbed up and down a box grater, getting shorter; shreds pile up at its foot."""

    strokes = (3, 8)

    def __init__(self, scene: _Scene, rng: np.random.Generator) -> None:
        super().__init__(scene, rng)
        h = scene.height
        cx, cy = scene.centre
        self.grater = _Pose(cx, cy - 0.04 * h, 0.56 * h * scene.scale, float(rng.uniform(-5, 5)))
        self.side = float(rng.choice([-1.0, 1.0]))
        self.axis = 90.0 + self.side * float(rng.uniform(35, 55))  # from the held end down to the grated end
        n = 10 * scene.strokes
        self.emit = np.sort(rng.uniform(0, 1, n))
        foot = self.grater.pt(0.0, 0.6)
        self.pile = foot + np.stack([rng.normal(0, 0.1, n), np.abs(rng.normal(0, 0.04, n))], 1) * h
        self.shred_angle = rng.uniform(0, 180, n)
        self.shred_color = _shade(_mix(_flesh(scene.obj), scene.obj.color, 0.5), 0.85)  # skin shows in shreds too

    def draw_static(self, img: np.ndarray) -> None:
        g = self.grater
        g.fill(img, [(0.25, -0.5), (0.34, -0.45), (0.45, 0.48), (0.35, 0.5)], _shade(_METAL, 0.7))
        g.fill(img, [(-0.25, -0.5), (0.25, -0.5), (0.35, 0.5), (-0.35, 0.5)], _METAL, outline=_shade(_METAL, 0.5))
        for row in np.linspace(-0.38, 0.4, 8):
            half = 0.25 + 0.1 * (row + 0.5)
            for col in np.linspace(-0.7, 0.7, 5):
                g.ellipse(img, (col * half, row), (0.035, 0.018), (80, 80, 86))
                g.line(img, (col * half - 0.03, row + 0.02), (col * half + 0.03, row + 0.02), (235, 235, 240), 1)
        g.ellipse(img, (0, -0.5), (0.16, 0.12), (50, 50, 55), max(2, round(0.025 * g.size)), arc=(180, 360))

    def draw(self, img: np.ndarray, t: int) -> None:
        s, obj = self.scene, self.scene.obj
        k, f = s.stroke(t)
        p = s.phase(t)
        r = max(1.0, 1.2 * s.unit)
        for e, c, a in zip(self.emit, self.pile, self.shred_angle, strict=True):
            if e > p:
                break
            d = _unit(float(a)) * 3.5 * s.unit
            _line(img, c - d, c + d, self.shred_color, r * 1.3)
        remain = 1.0 - 0.45 * p
        rub = self.grater.pt(0.0, 0.28 * math.cos(2 * math.pi * f) if 0 < p < 1 else 0.2)
        d = _unit(self.axis)
        size = s.size(obj)
        centre = rub - d * size * _end_x(obj, remain)
        pose = _Pose(centre[0], centre[1], size, self.axis)
        _draw_object(img, obj, pose, remain)
        s.grasp(img, pose.pt(-0.42 if obj.shape == "long" else -0.3, 0.0), self.axis, grip=0.7, mirror=self.side < 0)


_ACTIONS: dict[str, type[_Action]] = {
    "cut": _Cut,
    "peel": _Peel,
    "pour": _Pour,
    "sprinkle": _Sprinkle,
    "squeeze": _Squeeze,
    "stir": _Stir,
    "take_out": _TakeOut,
    "wash": _Wash,
    "grate": _Grate,
}


# --------------------------------------------------------------------------------------------
# Background: counter, wall, cutting board and idle distractor objects, drawn once per clip.

_COUNTERS: dict[str, tuple[BGR, ...]] = {
    "wood": ((110, 160, 205), (60, 95, 140), (140, 185, 220), (45, 70, 100)),
    "tiles": ((220, 220, 222), (185, 205, 220), (170, 150, 125), (75, 105, 165), (150, 175, 145)),
    "marble": ((225, 225, 228), (175, 175, 180), (70, 70, 75)),
    "laminate": ((200, 205, 210), (120, 130, 140), (150, 185, 200), (95, 95, 100), (105, 135, 95)),
}
_BOARDS: tuple[BGR, ...] = ((105, 160, 210), (130, 185, 220), (232, 232, 232), (150, 200, 150), (60, 95, 135))


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Band-limited noise ``(h, w)`` float32 in about -1..1: random values on a coarse grid, upsampled."""
    coarse = rng.normal(0, 1, (h // cell + 2, w // cell + 2)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def _texture(kind: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Brightness factor ``(h, w)`` float32 around 1 for a counter material."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    unit = h / 240.0
    if kind == "wood":
        plank = max(8, int(rng.uniform(25, 60) * unit))
        tone = rng.uniform(0.88, 1.1, h // plank + 2).astype(np.float32)[(yy // plank).astype(int)]
        grain = np.sin(yy * rng.uniform(0.5, 0.9) / unit + 6 * _smooth_noise(rng, h, w, max(4, int(30 * unit))))
        return tone * (1 + 0.06 * grain) * (1 - 0.25 * (yy % plank < max(1, unit)))
    if kind == "tiles":
        size = max(8, int(rng.uniform(30, 60) * unit))
        tone = rng.uniform(0.94, 1.05, (h // size + 2, w // size + 2)).astype(np.float32)
        grout = ((yy % size) < max(1.0, 1.5 * unit)) | ((xx % size) < max(1.0, 1.5 * unit))
        return tone[(yy // size).astype(int), (xx // size).astype(int)] * np.where(grout, 0.75, 1.0)
    if kind == "marble":
        # veins follow the zero crossings of band-limited noise: one meandering contour, not periodic bands
        coarse = _smooth_noise(rng, h, w, max(4, int(70 * unit)))
        field_ = coarse + 0.35 * _smooth_noise(rng, h, w, max(2, int(18 * unit)))
        cloud = _smooth_noise(rng, h, w, max(4, int(40 * unit)))
        return (1 + 0.04 * cloud) * (1 - 0.22 * np.exp(-np.abs(field_) * 20 / unit))
    speckle = rng.normal(0, 0.035, (h, w)).astype(np.float32)
    return 1 + speckle + 0.03 * _smooth_noise(rng, h, w, max(4, int(50 * unit)))


def _draw_counter(img: np.ndarray, rng: np.random.Generator, nuisance: dict[str, Any]) -> int:
    """Counter and back wall into ``img``; returns the y of the counter's back edge."""
    h, w = img.shape[:2]
    kind = str(rng.choice(sorted(_COUNTERS)))
    color = _jitter(rng, _COUNTERS[kind][rng.integers(len(_COUNTERS[kind]))], 12)
    factor = _texture(kind, rng, h, w)[..., None]
    img[:] = np.clip(np.asarray(color, np.float32) * factor, 0, 255).astype(np.uint8)
    wall_y = int(rng.uniform(0.0, 0.28) * h)
    wall = _random_color(rng, 120, 235)
    if wall_y > 0:
        img[:wall_y] = wall
        tile = max(4, int(rng.uniform(12, 22) * h / 240))
        for i, y in enumerate(range(0, wall_y, tile // 2)):  # a backsplash of offset bricks
            cv2.line(img, (0, y), (w, y), _shade(wall, 0.85), 1)
            for x in range(-(i % 2) * tile // 2, w, tile):
                cv2.line(img, (x, y), (x, y + tile // 2), _shade(wall, 0.85), 1)
        cv2.rectangle(img, (0, wall_y - 2), (w, wall_y + 1), _shade(color, 0.6), -1)
    nuisance.update(counter=kind, counter_color=list(color), wall_y=wall_y / h, wall_color=list(wall))
    return wall_y


def _draw_board(img: np.ndarray, rng: np.random.Generator, centre: Point, nuisance: dict[str, Any]) -> None:
    """A chopping board near the action, in half of the clips whatever the class."""
    h = img.shape[0]
    present = bool(rng.uniform() < 0.5)
    color = _BOARDS[rng.integers(len(_BOARDS))]
    pose = _Pose(
        centre[0] + float(rng.normal(0, 0.05)) * h,
        centre[1] + float(rng.normal(0, 0.04)) * h,
        h * float(rng.uniform(0.75, 0.95)),
        float(rng.uniform(-20, 20)),
    )
    nuisance["board"] = list(color) if present else None
    if present:
        pose.fill(img, [(-0.55, -0.36), (0.55, -0.36), (0.55, 0.36), (-0.55, 0.36)], color, outline=_shade(color, 0.6))
        pose.line(img, (-0.5, 0.33), (0.5, 0.33), _shade(color, 0.8), 2)


def _draw_distractors(
    img: np.ndarray, rng: np.random.Generator, scene: _Scene, wall_y: int, nuisance: dict[str, Any]
) -> None:
    """0-3 idle objects of the vocabulary away from the action (never the class's own object or receiver)."""
    h, w = img.shape[:2]
    count = int(rng.integers(0, 4))
    spots = [(float(rng.uniform(0.08, 0.92) * w), float(rng.uniform(0.0, 1.0))) for _ in range(12)]
    keys = [k for k in sorted(OBJECTS) if k not in {scene.cls.obj, scene.cls.receiver}]
    chosen = [keys[i] for i in rng.permutation(len(keys))[:count]]
    placed: list[tuple[str, float, float]] = []
    for x, v in spots:
        if len(placed) == len(chosen):
            break
        y = wall_y + 0.1 * h + v * (0.95 * h - wall_y - 0.1 * h)
        far_from_action = math.hypot(x - scene.centre[0], y - scene.centre[1]) > 0.48 * h
        if far_from_action and all(math.hypot(x - px, y - py) > 0.25 * h for _, px, py in placed):
            placed.append((chosen[len(placed)], x, y))
    for key, x, y in placed:
        obj = OBJECTS[key]
        angle = float(rng.uniform(-12, 12) if obj.shape in _STANDING else rng.uniform(-180, 180))
        _draw_object(img, obj, _Pose(x, y, obj.size * h * float(rng.uniform(0.55, 0.75)), angle))
    nuisance["distractors"] = [key for key, _, _ in placed]


# --------------------------------------------------------------------------------------------
# Camera and sensor: what happens to every frame after drawing.


class _Camera:
    """Placement/zoom (a small affine warp), shake, lighting and sensor noise of one clip."""

    def __init__(
        self,
        rng: np.random.Generator,
        n_frames: int,
        h: int,
        w: int,
        nuisance: dict[str, Any],
        shake: np.random.Generator | None = None,
    ) -> None:
        """``shake``: where the hand-held wobble is drawn from when it is not ``rng`` (a kitchen's
        camera keeps its placement and light from step to step, not its wobble)."""
        zoom, rot, shear = rng.uniform(1.0, 1.15), rng.uniform(-5, 5), rng.uniform(-0.05, 0.05)
        shift = rng.uniform(-0.04, 0.04, 2) * (w, h)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rot, zoom)
        m[0, 1] += shear
        m[:, 2] += shift
        self.matrix = m
        amp = rng.uniform(0.0, 2.0) * h / 240  # shake: a smoothed random walk of this size, px
        walk = np.cumsum((shake or rng).normal(0, 1, (n_frames, 2)), axis=0)
        walk -= cv2.blur(walk, (1, 9)).reshape(walk.shape) if n_frames > 9 else walk.mean(0)
        self.shake = walk / max(1e-6, float(np.abs(walk).max())) * amp
        gain, contrast = rng.uniform(0.8, 1.15), rng.uniform(0.8, 1.15)
        tint = 1 + rng.uniform(-0.07, 0.07, 3)
        # One table for all channels (OpenCV's per-channel LUT is several times slower); the colour
        # tint goes into the per-pixel light map instead.
        levels = (np.arange(256, dtype=np.float32) - 128) * contrast + 128
        self.lut = np.clip(levels * gain, 0, 255).astype(np.uint8)
        self.light = self._light_map(rng, h, w, tint, nuisance)
        sigma = rng.uniform(0.0, 5.0)
        self.noise = [rng.normal(0, sigma, (h, w, 3)).astype(np.int16) for _ in range(3)] if sigma > 0.5 else []
        nuisance.update(
            zoom=zoom,
            rotation=rot,
            shear=shear,
            shift=shift.tolist(),
            shake_px=amp,
            gain=gain,
            contrast=contrast,
            tint=tint.tolist(),
            noise_sigma=sigma,
        )

    @staticmethod
    def _light_map(rng: np.random.Generator, h: int, w: int, tint: np.ndarray, nuisance: dict[str, Any]) -> np.ndarray:
        """Soft light fall-off and colour tint ``(3,)`` as a gain map ``(h, w, 3)`` uint8 where 128 = unchanged."""
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = rng.uniform(0, 2 * math.pi)
        strength, vignette = rng.uniform(0.0, 0.35), rng.uniform(0.0, 0.35)
        ramp = ((xx / w - 0.5) * math.cos(a) + (yy / h - 0.5) * math.sin(a)) * strength
        r2 = ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * 2
        gain = (1 + ramp - vignette * r2)[..., None] * tint.astype(np.float32)
        nuisance.update(light_angle=a, light_strength=strength, vignette=vignette)
        return np.clip(gain * 128, 0, 255).astype(np.uint8)

    def apply(self, frame: np.ndarray, t: int) -> np.ndarray:
        """Frame as the camera sees it: ``(H, W, 3)`` uint8 -> ``(H, W, 3)`` uint8."""
        m = self.matrix.copy()
        m[:, 2] += self.shake[t]
        out = cv2.warpAffine(
            frame, m, (frame.shape[1], frame.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
        )
        out = cv2.LUT(out, self.lut)
        out = cv2.multiply(out, self.light, scale=1 / 128)
        if self.noise:
            out = cv2.add(out, self.noise[t % len(self.noise)], dtype=cv2.CV_8U)
        return out


# --------------------------------------------------------------------------------------------
# Planning and the frame loop.


@dataclass
class _Plan:
    """A clip ready to render: its background, its action and its camera."""

    info: ClipInfo
    background: np.ndarray
    action: _Action
    camera: _Camera

    def frames(self) -> Iterator[np.ndarray]:
        for t in range(self.info.n_frames):
            frame = self.background.copy()
            self.action.draw(frame, t)
            yield self.camera.apply(frame, t)


def _plan(class_key: str, seed: int, settings: RenderSettings, kitchen: int | None = None) -> _Plan:
    """Sample everything random about a clip, nuisance first, and draw its static background.

    ``kitchen`` (a seed) makes the counter, the wall, the camera's placement and light and the
    cook (skin, sleeve, tool, hand size) those of one kitchen, shared by every clip planned with
    it: the steps of one recipe. Without it every clip has its own kitchen, drawn from ``seed``
    exactly as always.
    """
    cls = parse_class(class_key)
    rng = np.random.default_rng(seed)
    home = rng if kitchen is None else np.random.default_rng([kitchen, 1])
    nuisance: dict[str, Any] = {}
    scene = _sample_scene(cls, seed, settings, rng, nuisance)
    if kitchen is not None:
        _same_cook(scene, np.random.default_rng([kitchen, 2]), nuisance)
    h, w = settings.height, settings.width
    background = np.empty((h, w, 3), np.uint8)
    wall_y = _draw_counter(background, home, nuisance)
    _draw_board(background, rng, scene.centre, nuisance)
    camera = (
        _Camera(rng, scene.n_frames, h, w, nuisance)
        if kitchen is None
        else _Camera(np.random.default_rng([kitchen, 3]), scene.n_frames, h, w, nuisance, shake=rng)
    )
    _draw_distractors(background, rng, scene, wall_y, nuisance)  # the first draw that sees the class
    action = _ACTIONS[cls.action](scene, rng)
    action.draw_static(background)
    info = ClipInfo(
        class_key=class_key,
        seed=seed,
        n_frames=scene.n_frames,
        duration_s=scene.n_frames / settings.fps,
        fps=settings.fps,
        width=w,
        height=h,
        nuisance=_plain(nuisance),
    )
    return _Plan(info=info, background=background, action=action, camera=camera)


def _same_cook(scene: _Scene, rng: np.random.Generator, nuisance: dict[str, Any]) -> None:
    """The kitchen's cook: the same hands, sleeves and tools in every step of a recipe."""
    scene.skin = _jitter(rng, _SKINS[rng.integers(len(_SKINS))], 10)
    scene.sleeve = _random_color(rng, 30, 230)
    scene.tool = _TOOL_HANDLES[rng.integers(len(_TOOL_HANDLES))]
    scene.hand_size = float(rng.uniform(0.12, 0.145) * scene.height)
    nuisance.update(skin=list(scene.skin), sleeve=list(scene.sleeve), hand_size=scene.hand_size)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Nuisance values as plain JSON-able Python (numpy scalars become floats/ints)."""
    out: dict[str, Any] = {}
    for key, v in values.items():
        if isinstance(v, np.generic):
            v = v.item()
        out[key] = round(v, 4) if isinstance(v, float) else v
    return out
