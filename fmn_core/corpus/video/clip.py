"""Procedural kitchen-scene clips: planning, the frame loop, and writing them (DESIGN.md §3).

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

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmn_core.corpus.video.actions_blade import _Cut, _Grate, _Peel
from fmn_core.corpus.video.actions_flow import _Pour, _Sprinkle, _Squeeze
from fmn_core.corpus.video.actions_move import _Stir, _TakeOut, _Wash
from fmn_core.corpus.video.background import _draw_board, _draw_counter, _draw_distractors
from fmn_core.corpus.video.camera import _Camera
from fmn_core.corpus.video.scene import _Action, _same_cook, _sample_scene
from fmn_core.corpus.video.settings import DEFAULT_SETTINGS, ClipInfo, RenderSettings
from fmn_core.corpus.vocabulary import parse_class
from fmn_core.media.video_io import write_mp4


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


# The one place that knows every action: the scene below them only gets an action's stroke range.
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
    scene = _sample_scene(cls, seed, settings, rng, nuisance, _ACTIONS[cls.action].strokes)
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


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Nuisance values as plain JSON-able Python (numpy scalars become floats/ints)."""
    out: dict[str, Any] = {}
    for key, v in values.items():
        if isinstance(v, np.generic):
            v = v.item()
        out[key] = round(v, 4) if isinstance(v, float) else v
    return out
