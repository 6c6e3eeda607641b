"""The contract every baseline keeps, its input checks, and the preprocessing all baselines share.

A baseline is fitted on a training split of video features (N, Dv) and speech features (M, Da)
with class labels, where *every same-label cross-modal pair is a positive* (the paper's protocol:
all within-class pairs match), and then scores any videos against any speech clips with
``similarity(v, a) -> (N, M)``, higher meaning more similar. Features are z-scored with training
statistics and compared by cosine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_EPS = 1e-12


# ---------------------------------------------------------------- input checks and shared pieces


def _check_features(x: np.ndarray, name: str, dim: int | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (samples, features) matrix, got shape {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} has {x.shape[1]} features but the baseline was fitted on {dim}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _check_training_set(
    v: np.ndarray, a: np.ndarray, v_labels: Sequence[Any] | np.ndarray, a_labels: Sequence[Any] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate a training set and keep only the classes present in both modalities (the only ones with pairs)."""
    v, a = _check_features(v, "video features"), _check_features(a, "speech features")
    v_labels, a_labels = np.asarray(v_labels), np.asarray(a_labels)
    if v_labels.shape != (len(v),) or a_labels.shape != (len(a),):
        raise ValueError(
            f"labels must have one entry per sample: video {v.shape} vs labels {v_labels.shape}, "
            f"speech {a.shape} vs labels {a_labels.shape}"
        )
    shared = np.intersect1d(v_labels, a_labels)
    if len(shared) < 2:
        raise ValueError(
            f"training needs at least two classes present in both modalities, found {len(shared)}: "
            "with one class there is nothing to tell apart"
        )
    keep_v, keep_a = np.isin(v_labels, shared), np.isin(a_labels, shared)
    return v[keep_v], a[keep_a], v_labels[keep_v], a_labels[keep_a]


def _n_classes(labels: np.ndarray) -> int:
    return len(np.unique(labels))


@dataclass(eq=False)
class _Standardiser:
    """Per-feature z-scoring with training statistics (constant features map to zero)."""

    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)

    @classmethod
    def fit(cls, x: np.ndarray) -> _Standardiser:
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 1e-8, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z: np.ndarray = (x - self.mean) / self.scale  # numpy's stubs give Any here
        return z


def _cosine(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of x (N, K) with every row of y (M, K) -> (N, M)."""
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _EPS)
    y = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), _EPS)
    cos: np.ndarray = x @ y.T  # numpy's stubs give Any here
    return cos


# ---------------------------------------------------------------- the baseline interface


class Baseline:
    """Common contract: ``fit`` on labelled training features, then ``similarity`` of any videos × speech."""

    _in_dims: tuple[int, int] | None = None  # (Dv, Da) seen by fit

    def fit(
        self,
        v_train: np.ndarray,
        a_train: np.ndarray,
        v_labels: Sequence[Any] | np.ndarray,
        a_labels: Sequence[Any] | np.ndarray,
    ) -> Baseline:
        """Fit on a training split; every same-label (video, speech) pair is a positive.

        Args:
            v_train: (N, Dv) video features.
            a_train: (M, Da) speech features.
            v_labels: (N,) class labels of the videos.
            a_labels: (M,) class labels of the speech clips.

        Returns:
            self, fitted.

        Raises:
            ValueError: on mismatched shapes, non-finite features, or fewer than two shared classes.
        """
        v, a, vl, al = _check_training_set(v_train, a_train, v_labels, a_labels)
        self._fit(v, a, vl, al)
        self._in_dims = (v.shape[1], a.shape[1])
        return self

    def similarity(self, v: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Score videos against speech clips.

        Args:
            v: (N, Dv) video features.
            a: (M, Da) speech features.

        Returns:
            (N, M) float64 similarities, higher is more similar; rows rank speech for a video
            query, and the transpose ranks videos for a speech query.
        """
        if self._in_dims is None:
            raise RuntimeError(f"{type(self).__name__}.similarity() needs fit() first")
        v = _check_features(v, "video features", self._in_dims[0])
        a = _check_features(a, "speech features", self._in_dims[1])
        return np.asarray(self._similarity(v, a), dtype=np.float64)

    def _fit(self, v: np.ndarray, a: np.ndarray, v_labels: np.ndarray, a_labels: np.ndarray) -> None:
        raise NotImplementedError

    def _similarity(self, v: np.ndarray, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _default_dims(dims: int | None, n_classes: int) -> int:
    # Class-paired cross-covariance has rank ≤ classes − 1: further directions carry no signal.
    return dims if dims is not None else max(1, n_classes - 1)
