"""Drawing primitives: anti-aliased polygons, lines, circles and ellipses, and :class:`_Pose`.

Coordinates are float pixels; OpenCV gets them as fixed point (4 fractional bits) so that slow
motions move smoothly instead of jumping whole pixels. A :class:`_Pose` places a drawing given
in local units (1 = the thing's size) on the frame, so objects, hands and tools are described
once and drawn at any size and angle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fmn_core.corpus.video.colours import BGR

Point = tuple[float, float]
# Where primitives accept a pixel position: the actions compute most of them with numpy.
XY = Sequence[float] | np.ndarray  # one point: a pair or a (2,) array
XYs = Sequence[Sequence[float]] | np.ndarray  # points: pairs or an (N, 2) array

_SHIFT = 4
_FIX = 1 << _SHIFT


def _fx(v: float) -> int:
    return int(round(v * _FIX))


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


def _line(img: np.ndarray, p0: XY, p1: XY, color: BGR, thickness: float) -> None:
    cv2.line(
        img, (_fx(p0[0]), _fx(p0[1])), (_fx(p1[0]), _fx(p1[1])), color, max(1, round(thickness)), cv2.LINE_AA, _SHIFT
    )


def _polyline(img: np.ndarray, pts: np.ndarray, color: BGR, thickness: float) -> None:
    cv2.polylines(
        img, [np.round(pts * _FIX).astype(np.int32)], False, color, max(1, round(thickness)), cv2.LINE_AA, _SHIFT
    )


def _circle(img: np.ndarray, c: XY, r: float, color: BGR, thickness: int = -1) -> None:
    cv2.circle(img, (_fx(c[0]), _fx(c[1])), max(1, _fx(r)), color, thickness, cv2.LINE_AA, _SHIFT)


def _ellipse(
    img: np.ndarray,
    c: XY,
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

    def px(self, pts: XYs) -> np.ndarray:
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

    def fill(self, img: np.ndarray, pts: XYs, color: BGR, outline: BGR | None = None) -> None:
        """Fill a polygon given in local units."""
        _fill(img, self.px(pts), color, outline)

    def line(self, img: np.ndarray, p0: Point, p1: Point, color: BGR, thickness: float) -> None:
        """Draw a line between two local points; ``thickness`` in pixels."""
        _line(img, self.pt(*p0), self.pt(*p1), color, thickness)
