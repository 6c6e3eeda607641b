"""Actions where a blade takes the object apart: cut, peel, grate.

Each action draws what stands still once (into the pre-rendered background) and what moves on
every frame; all its randomness comes from the generator it is built with. Here the object
stays put (or is rubbed on the grater) while a knife, a peeler or the grater's teeth leave
slices, bared strips or shreds behind.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from fmn_core.corpus.video.colours import _METAL, _mix, _shade
from fmn_core.corpus.video.hands import _draw_knife, _draw_peeler, _upward
from fmn_core.corpus.video.objects import _draw_object, _end_x, _flesh, _half_width
from fmn_core.corpus.video.scene import _Action, _Scene
from fmn_core.corpus.video.shapes import _darken, _ellipse, _line, _Pose, _smoothstep, _unit


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
