"""What a caller sets (:class:`RenderSettings`) and what a rendered clip is (:class:`ClipInfo`).

Plain data with no drawing in it, so the corpus generator, the recipes and the CLI can name a
clip's size and read its description without pulling in the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
