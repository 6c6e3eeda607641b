"""The still background of a clip: counter, back wall, chopping board, idle distractor objects.

Drawn once per clip into the frame every other drawing copies, because textures (wood grain,
tiles, marble veins) are far too slow to draw per frame.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from fmn_core.corpus.video.colours import BGR, _jitter, _random_color, _shade
from fmn_core.corpus.video.objects import _STANDING, _draw_object
from fmn_core.corpus.video.scene import _Scene
from fmn_core.corpus.video.shapes import Point, _Pose
from fmn_core.corpus.vocabulary import OBJECTS

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
        # Fancy indexing makes numpy's stubs lose the array type; the product is an (h, w) array.
        wood: np.ndarray = tone * (1 + 0.06 * grain) * (1 - 0.25 * (yy % plank < max(1, unit)))
        return wood
    if kind == "tiles":
        size = max(8, int(rng.uniform(30, 60) * unit))
        tone = rng.uniform(0.94, 1.05, (h // size + 2, w // size + 2)).astype(np.float32)
        grout = ((yy % size) < max(1.0, 1.5 * unit)) | ((xx % size) < max(1.0, 1.5 * unit))
        tiles: np.ndarray = tone[(yy // size).astype(int), (xx // size).astype(int)] * np.where(grout, 0.75, 1.0)
        return tiles
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
