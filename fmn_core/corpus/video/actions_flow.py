"""Actions where something flows out of the object into a receiver: pour, sprinkle, squeeze.

Each action draws what stands still once (into the pre-rendered background) and what moves on
every frame; all its randomness comes from the generator it is built with. Here a stream,
falling grains or drops of juice travel from the object to a pan, a tray or a juicer and stay.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from fmn_core.corpus.video.colours import _WHITE, BGR, _mix, _shade
from fmn_core.corpus.video.objects import _INTERIOR, _draw_object, _flesh
from fmn_core.corpus.video.scene import _Action, _Scene
from fmn_core.corpus.video.shapes import _circle, _ellipse, _line, _polyline, _Pose, _smoothstep, _unit
from fmn_core.corpus.vocabulary import CookingObject


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
