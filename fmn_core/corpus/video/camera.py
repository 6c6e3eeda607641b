"""Camera and sensor: what happens to every frame after drawing (placement, shake, light, noise).

One affine warp, one lookup table, one gain map and a cycled noise tile per frame: the cheapest
way to give every clip its own camera without redrawing anything.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np


class _Camera:
    """Placement/zoom (a small affine warp), shake, lighting and sensor noise of one clip."""

    def __init__(
        self,
        rng: np.random.Generator,
        n_frames: int,
        h: int,
        w: int,
        nuisance: dict[str, Any],
        shake: np.random.Generator | None = None,
    ) -> None:
        """``shake``: where the hand-held wobble is drawn from when it is not ``rng`` (a kitchen's
        camera keeps its placement and light from step to step, not its wobble)."""
        zoom, rot, shear = rng.uniform(1.0, 1.15), rng.uniform(-5, 5), rng.uniform(-0.05, 0.05)
        shift = rng.uniform(-0.04, 0.04, 2) * (w, h)
        # cv2's stub says MatLike (integer or float); it is a float64 (2, 3) array, so asarray is a no-op.
        m = np.asarray(cv2.getRotationMatrix2D((w / 2, h / 2), rot, zoom), dtype=np.float64)
        m[0, 1] += shear
        m[:, 2] += shift
        self.matrix = m
        amp = rng.uniform(0.0, 2.0) * h / 240  # shake: a smoothed random walk of this size, px
        walk = np.cumsum((shake or rng).normal(0, 1, (n_frames, 2)), axis=0)
        walk -= cv2.blur(walk, (1, 9)).reshape(walk.shape) if n_frames > 9 else walk.mean(0)
        self.shake = walk / max(1e-6, float(np.abs(walk).max())) * amp
        gain, contrast = rng.uniform(0.8, 1.15), rng.uniform(0.8, 1.15)
        tint = 1 + rng.uniform(-0.07, 0.07, 3)
        # One table for all channels (OpenCV's per-channel LUT is several times slower); the colour
        # tint goes into the per-pixel light map instead.
        levels = (np.arange(256, dtype=np.float32) - 128) * contrast + 128
        self.lut = np.clip(levels * gain, 0, 255).astype(np.uint8)
        self.light = self._light_map(rng, h, w, tint, nuisance)
        sigma = rng.uniform(0.0, 5.0)
        self.noise = [rng.normal(0, sigma, (h, w, 3)).astype(np.int16) for _ in range(3)] if sigma > 0.5 else []
        nuisance.update(
            zoom=zoom,
            rotation=rot,
            shear=shear,
            shift=shift.tolist(),
            shake_px=amp,
            gain=gain,
            contrast=contrast,
            tint=tint.tolist(),
            noise_sigma=sigma,
        )

    @staticmethod
    def _light_map(rng: np.random.Generator, h: int, w: int, tint: np.ndarray, nuisance: dict[str, Any]) -> np.ndarray:
        """Soft light fall-off and colour tint ``(3,)`` as a gain map ``(h, w, 3)`` uint8 where 128 = unchanged."""
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = rng.uniform(0, 2 * math.pi)
        strength, vignette = rng.uniform(0.0, 0.35), rng.uniform(0.0, 0.35)
        ramp = ((xx / w - 0.5) * math.cos(a) + (yy / h - 0.5) * math.sin(a)) * strength
        r2 = ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * 2
        gain = (1 + ramp - vignette * r2)[..., None] * tint.astype(np.float32)
        nuisance.update(light_angle=a, light_strength=strength, vignette=vignette)
        light: np.ndarray = np.clip(gain * 128, 0, 255).astype(np.uint8)  # typed: the mgrid unpacking is Any
        return light

    def apply(self, frame: np.ndarray, t: int) -> np.ndarray:
        """Frame as the camera sees it: ``(H, W, 3)`` uint8 -> ``(H, W, 3)`` uint8."""
        m = self.matrix.copy()
        m[:, 2] += self.shake[t]
        out = cv2.warpAffine(
            frame, m, (frame.shape[1], frame.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
        )
        out = cv2.LUT(out, self.lut)
        out = cv2.multiply(out, self.light, scale=1 / 128)
        if self.noise:
            out = cv2.add(out, self.noise[t % len(self.noise)], dtype=cv2.CV_8U)
        return out
