"""The scene of one clip: the nuisance an action draws with, and the :class:`_Action` interface.

:func:`_sample_scene` draws the pose, people and timing of a clip from its seed *before*
anything that depends on the class, so a given seed gives the same nuisance whatever the class.
Every action is built from a :class:`_Scene` and draws through its helpers (hands reaching in
from the cook's side, stroke timing, per-frame randomness).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fmn_core.corpus.video.colours import BGR, _jitter, _random_color
from fmn_core.corpus.video.hands import _draw_arm, _draw_hand
from fmn_core.corpus.video.settings import RenderSettings
from fmn_core.corpus.video.shapes import XY, Point, _Pose, _unit
from fmn_core.corpus.vocabulary import OBJECTS, CookingClass, CookingObject

# Palettes the cook (skin, tool handle) and the food in containers are drawn from, per clip.
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
        pos: XY,
        angle: float,
        grip: float = 0.0,
        arm_to: XY | None = None,
        mirror: bool = False,
    ) -> None:
        """A hand at ``pos``, fingers towards ``angle``, its arm reaching off screen (default: down, to the cook)."""
        p = np.asarray(pos, dtype=np.float64)
        if arm_to is None:
            arm_to = (p[0] + (p[0] - self.width / 2) * 0.6, self.height * 1.35)
        wrist = p - _unit(angle) * 0.2 * self.hand_size
        _draw_arm(img, wrist, np.asarray(arm_to, dtype=np.float64), self.hand_size, self.skin, self.sleeve)
        _draw_hand(img, p, angle, self.hand_size, self.skin, grip, mirror)

    def grasp(self, img: np.ndarray, point: XY, angle: float, grip: float = 0.5, **kwargs: Any) -> None:
        """A hand whose fingers lie over ``point``, reaching in along ``angle`` (the palm stays outside)."""
        self.hand(img, np.asarray(point, dtype=np.float64) - _unit(angle) * 0.4 * self.hand_size, angle, grip, **kwargs)

    def object_pose(
        self, obj: CookingObject | None = None, at: Point | None = None, scale: float = 1.0, angle: float | None = None
    ) -> _Pose:
        obj = obj or self.obj
        x, y = at or self.centre
        return _Pose(x, y, self.size(obj) * scale, self.angle if angle is None else angle)


def _sample_scene(
    cls: CookingClass,
    seed: int,
    settings: RenderSettings,
    rng: np.random.Generator,
    nuisance: dict[str, Any],
    strokes: tuple[int, int],
) -> _Scene:
    """Draw the class-independent pose, people and timing nuisance; records them in ``nuisance``.

    ``strokes``: the action's range of repetitions (its ``_Action.strokes``), passed in so that
    the scene need not know the actions built on it.
    """
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
    lo, hi = strokes
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


def _same_cook(scene: _Scene, rng: np.random.Generator, nuisance: dict[str, Any]) -> None:
    """The kitchen's cook: the same hands, sleeves and tools in every step of a recipe."""
    scene.skin = _jitter(rng, _SKINS[rng.integers(len(_SKINS))], 10)
    scene.sleeve = _random_color(rng, 30, 230)
    scene.tool = _TOOL_HANDLES[rng.integers(len(_TOOL_HANDLES))]
    scene.hand_size = float(rng.uniform(0.12, 0.145) * scene.height)
    nuisance.update(skin=list(scene.skin), sleeve=list(scene.sleeve), hand_size=scene.hand_size)


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
