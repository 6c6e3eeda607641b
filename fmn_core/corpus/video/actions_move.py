"""Actions where a whole thing moves: stir (a spoon in a container), take out, wash.

Each action draws what stands still once (into the pre-rendered background) and what moves on
every frame; all its randomness comes from the generator it is built with. Nothing is used up
here: a spoon circles, the object travels from a cupboard or turns under the tap.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from fmn_core.corpus.video.colours import _WHITE, _jitter, _mix, _random_color, _shade
from fmn_core.corpus.video.hands import _draw_stirrer
from fmn_core.corpus.video.objects import _INTERIOR, _STANDING, _draw_object, _half_width
from fmn_core.corpus.video.scene import _Action, _Scene
from fmn_core.corpus.video.shapes import _circle, _fill, _line, _polyline, _Pose, _smoothstep


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
