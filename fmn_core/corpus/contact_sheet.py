"""Contact sheets: one row of frames per class, to check by eye that the classes look apart."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from fmn_core.corpus.video import DEFAULT_SETTINGS, RenderSettings, render_clip
from fmn_core.media.errors import MediaError

_LABEL_WIDTH = 150  # px at 240-line frames; scaled with the frame height


def contact_sheet(
    class_keys: Sequence[str],
    seed: int,
    out_png: str | os.PathLike[str],
    frames_per_clip: int = 4,
    settings: RenderSettings = DEFAULT_SETTINGS,
) -> Path:
    """Render one clip per class and save a grid of evenly spaced frames as a PNG.

    Row ``i`` shows class ``class_keys[i]`` rendered with seed ``seed + i`` (so rows also show
    the nuisance varying), with the class key written at its left.

    Args:
        class_keys: classes to show, one row each.
        seed: seed of the first row.
        out_png: where to save the sheet; its folder is created if missing.
        frames_per_clip: frames per row, spaced evenly from the first frame to the last.
        settings: frame size, rate and duration range of the clips.

    Returns:
        The path of the PNG written.

    Raises:
        VocabularyError: an unknown class.
        MediaError: the PNG could not be written.
    """
    if frames_per_clip < 1 or not class_keys:
        raise ValueError("need at least one class and one frame per clip")
    rows = [_row(key, seed + i, frames_per_clip, settings) for i, key in enumerate(class_keys)]
    sheet = np.concatenate(rows, axis=0)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), sheet):
        raise MediaError(f"cannot write {out}")
    return out


def _row(class_key: str, seed: int, frames_per_clip: int, settings: RenderSettings) -> np.ndarray:
    """One row ``(H + 2, label + k * (W + 2), 3)``: the class key, then the chosen frames."""
    frames = list(render_clip(class_key, seed, settings))
    picks = np.linspace(0, len(frames) - 1, frames_per_clip).round().astype(int)
    h = settings.height
    scale = h / 240.0
    label = np.full((h, int(_LABEL_WIDTH * scale), 3), 30, np.uint8)
    cv2.putText(
        label,
        class_key,
        (int(6 * scale), h // 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5 * scale,
        (240, 240, 240),
        max(1, round(scale)),
        cv2.LINE_AA,
    )
    tiles = [label] + [frames[i] for i in picks]
    row = np.concatenate([np.pad(tile, ((1, 1), (1, 1), (0, 0))) for tile in tiles], axis=1)
    return row
