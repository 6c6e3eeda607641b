"""Long recipe videos: several steps of one dish in a row, in one kitchen, with idle stretches between.

Real cooking footage (MPII Cooking 2, TACoS, a phone propped on a counter) is whole dishes,
minutes long, annotated as segments. A recipe here is that, generated: a dish's steps (classes
of the vocabulary) rendered one after another with the same counter, wall, camera placement,
light and cook (``video.clip._plan(..., kitchen=seed)``), separated by stretches where nothing
happens but the camera's wobble and noise. Every step is a segment of the file, written as a
manifest row with its ``start`` and ``end``; the corpus's spoken queries of the step's class
are the queries for it. Deterministic: the same seed gives the same pixels.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from fmn_core.corpus.video import RenderSettings
from fmn_core.corpus.video.clip import _plan
from fmn_core.media.video_io import write_mp4

# Dishes and the steps they are made of (classes of the built-in vocabulary); a recipe draws
# several of its dish's steps, in this order.
DISHES: dict[str, tuple[str, ...]] = {
    "salad": ("wash_cucumber", "cut_cucumber", "peel_carrot", "grate_carrot", "cut_onion", "pour_oil",
              "sprinkle_salt", "squeeze_lemon", "stir_bowl"),
    "fruit bowl": ("take_out_plate", "wash_apple", "peel_apple", "peel_orange", "cut_pineapple",
                   "squeeze_lime", "stir_bowl"),
    "stir-fry": ("take_out_can", "cut_carrot", "cut_onion", "pour_oil", "stir_pan", "sprinkle_spice",
                 "sprinkle_salt", "stir_pan"),
    "pancakes": ("take_out_plate", "pour_milk", "stir_bowl", "pour_oil", "stir_pan", "squeeze_lemon"),
}  # fmt: skip


@dataclass(frozen=True)
class RecipeSettings:
    """How long recipes are."""

    steps: tuple[int, int] = (5, 8)  # steps per recipe, inclusive
    idle_seconds: tuple[float, float] = (4.0, 14.0)  # nothing happening before and between steps
    render: RenderSettings = RenderSettings(min_seconds=3.0, max_seconds=7.0)  # a step's length

    def longest_seconds(self) -> float:
        """The longest a recipe can be (for disk-space checks)."""
        return self.steps[1] * (self.idle_seconds[1] + self.render.max_seconds)


@dataclass(frozen=True)
class Step:
    """One annotated segment of a recipe video."""

    class_key: str
    start: float  # seconds into the video
    end: float


@dataclass(frozen=True)
class RecipeInfo:
    dish: str
    seed: int
    steps: tuple[Step, ...]
    duration_s: float


def plan_recipe(
    seed: int, settings: RecipeSettings = RecipeSettings(), classes: Sequence[str] | None = None
) -> tuple[str, list[tuple[str, int, int]]]:
    """The dish and its steps as ``(class, step seed, idle frames before it)``, from ``seed``.

    ``classes``: only steps of these classes (a corpus of some classes has queries for no others).

    Raises:
        ValueError: no dish has a step among ``classes``.
    """
    rng = np.random.default_rng([seed, 11])
    pools = {d: tuple(c for c in steps if classes is None or c in classes) for d, steps in DISHES.items()}
    dishes = sorted(d for d, steps in pools.items() if steps)
    if not dishes:
        raise ValueError(f"no recipe has a step among the classes {', '.join(classes or ())}")
    dish = dishes[int(rng.integers(len(dishes)))]
    pool = pools[dish]
    lo, hi = settings.steps
    n = min(len(pool), int(rng.integers(lo, hi + 1)))
    chosen = sorted(rng.choice(len(pool), size=n, replace=False))  # the dish's order
    fps = settings.render.fps
    plan = []
    for i in chosen:
        idle = int(round(rng.uniform(*settings.idle_seconds) * fps))
        plan.append((pool[i], int(rng.integers(2**31)), idle))
    return dish, plan


def _frames(
    seed: int, settings: RecipeSettings, classes: Sequence[str] | None, steps: list[Step]
) -> Iterator[np.ndarray]:
    """Every frame of the recipe, filling ``steps`` with each step's segment as it goes."""
    _, plan = plan_recipe(seed, settings, classes)
    fps = settings.render.fps
    t = 0
    for class_key, step_seed, idle in plan:
        step = _plan(class_key, step_seed, settings.render, kitchen=seed)
        # The idle stretch shows this step's counter before the hands come in: the camera keeps
        # running (its wobble and sensor noise), nothing else moves.
        still = step.background.copy()
        step.action.draw(still, 0)
        for i in range(idle):
            yield step.camera.apply(still, i % step.info.n_frames)
        t += idle
        steps.append(Step(class_key, t / fps, (t + step.info.n_frames) / fps))
        yield from step.frames()
        t += step.info.n_frames


def write_recipe(
    seed: int,
    out_path: str | os.PathLike[str],
    settings: RecipeSettings = RecipeSettings(),
    classes: Sequence[str] | None = None,
) -> RecipeInfo:
    """Render a recipe video to ``out_path`` (H.264 MP4, written atomically) and say where its steps are.

    Frames stream from the renderer to the encoder: memory does not grow with the video's length.

    Raises:
        ValueError: no dish has a step among ``classes``.
    """
    dish, _ = plan_recipe(seed, settings, classes)
    steps: list[Step] = []
    n = write_mp4(out_path, _frames(seed, settings, classes, steps), fps=settings.render.fps)
    return RecipeInfo(dish, seed, tuple(steps), n / settings.render.fps)


def describe(infos: Sequence[RecipeInfo]) -> str:
    total = sum(i.duration_s for i in infos)
    return f"{len(infos)} recipe videos, {total / 60:.1f} min, {sum(len(i.steps) for i in infos)} annotated steps"


__all__ = ["DISHES", "RecipeInfo", "RecipeSettings", "Step", "describe", "plan_recipe", "write_recipe"]
