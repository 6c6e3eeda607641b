"""The closed-form baselines: linear CCA (Hotelling 1936) and RBF-kernel CCA through a Nyström map.

Both are deterministic under their ``seed`` (KCCA's picks its landmarks) and touch no global random state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fmn_core.eval.baseline_base import _EPS, Baseline, _default_dims, _n_classes, _Standardiser
from fmn_core.eval.class_pair_cca import LinearCCA

# ---------------------------------------------------------------- CCA


@dataclass(eq=False)
class CCA(Baseline):
    """Regularised linear CCA (Hotelling 1936) on standardised features, cosine in the canonical space."""

    dims: int | None = None  # canonical directions kept; None = classes − 1
    reg: float = 1.0  # ridge on each covariance, as a fraction of its mean eigenvalue (strong: D is near N)
    weight_power: float = 1.0  # canonical directions weighted by correlation ** weight_power in the cosine
    seed: int = 0  # unused (CCA is closed-form); accepted so every baseline takes one
    _std: tuple[_Standardiser, _Standardiser] | None = field(default=None, init=False, repr=False)
    _cca: LinearCCA | None = field(default=None, init=False, repr=False)

    def _fit(self, v: np.ndarray, a: np.ndarray, v_labels: np.ndarray, a_labels: np.ndarray) -> None:
        self._std = (_Standardiser.fit(v), _Standardiser.fit(a))
        dims = _default_dims(self.dims, _n_classes(v_labels))
        zv, za = self._std[0](v), self._std[1](a)
        self._cca = LinearCCA.fit(zv, za, v_labels, a_labels, dims, self.reg, self.weight_power)

    def _similarity(self, v: np.ndarray, a: np.ndarray) -> np.ndarray:
        assert self._std is not None and self._cca is not None
        return self._cca.similarity(self._std[0](v), self._std[1](a))


# ---------------------------------------------------------------- KCCA (Nyström)


def _squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    clipped: np.ndarray = np.maximum(d2, 0.0)  # numpy's stubs give Any here
    return clipped


@dataclass(eq=False)
class _Nystroem:
    """Explicit features φ(x) = k(x, L) K_LL^(−1/2) whose inner products approximate an RBF kernel."""

    landmarks: np.ndarray  # (L, D)
    gamma: float  # k(x, y) = exp(−gamma ‖x − y‖²)
    whiten: np.ndarray  # (L, R) K_LL^(−1/2) restricted to its numerically non-zero eigen-directions

    @classmethod
    def fit(cls, x: np.ndarray, n_landmarks: int, bandwidth_scale: float, rng: np.random.Generator) -> _Nystroem:
        landmarks = x[np.sort(rng.choice(len(x), size=min(n_landmarks, len(x)), replace=False))]
        d2 = _squared_distances(landmarks, landmarks)
        off_diagonal = d2[~np.eye(len(d2), dtype=bool)]
        # Median heuristic: sigma = median pairwise distance, k = exp(−d² / (2 sigma²)).
        sigma2 = (bandwidth_scale**2) * max(float(np.median(off_diagonal)) if off_diagonal.size else 1.0, _EPS)
        gamma = 1.0 / (2.0 * sigma2)
        eigval, eigvec = np.linalg.eigh(np.exp(-gamma * d2))
        keep = eigval > 1e-10 * eigval.max()
        return cls(landmarks, gamma, eigvec[:, keep] / np.sqrt(eigval[keep]))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # numpy's stubs give Any here
        features: np.ndarray = np.exp(-self.gamma * _squared_distances(x, self.landmarks)) @ self.whiten
        return features


@dataclass(eq=False)
class KCCA(Baseline):
    """RBF-kernel CCA (Akaho 2001; Hardoon et al. 2004) via a Nyström approximation, cosine in the canonical space.

    Kernel CCA with ridge regularisation equals regularised linear CCA on the kernel's feature map;
    the Nyström map on ``n_landmarks`` random training samples makes that map explicit and finite,
    so the cost grows linearly with the training set instead of cubically.
    """

    dims: int | None = None  # canonical directions kept; None = classes − 1
    reg: float = 0.3  # ridge on each covariance of the kernel features, relative to its mean eigenvalue
    n_landmarks: int = 500  # Nyström landmarks per modality (capped at the number of samples)
    bandwidth_scale: float = 1.0  # multiplies the median-heuristic RBF bandwidth
    weight_power: float = 1.0  # canonical directions weighted by correlation ** weight_power in the cosine
    seed: int = 0  # chooses the landmarks
    _std: tuple[_Standardiser, _Standardiser] | None = field(default=None, init=False, repr=False)
    _maps: tuple[_Nystroem, _Nystroem] | None = field(default=None, init=False, repr=False)
    _cca: LinearCCA | None = field(default=None, init=False, repr=False)

    def _fit(self, v: np.ndarray, a: np.ndarray, v_labels: np.ndarray, a_labels: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        self._std = (_Standardiser.fit(v), _Standardiser.fit(a))
        zv, za = self._std[0](v), self._std[1](a)
        self._maps = (
            _Nystroem.fit(zv, self.n_landmarks, self.bandwidth_scale, rng),
            _Nystroem.fit(za, self.n_landmarks, self.bandwidth_scale, rng),
        )
        dims = _default_dims(self.dims, _n_classes(v_labels))
        fv, fa = self._maps[0](zv), self._maps[1](za)
        self._cca = LinearCCA.fit(fv, fa, v_labels, a_labels, dims, self.reg, self.weight_power)

    def _similarity(self, v: np.ndarray, a: np.ndarray) -> np.ndarray:
        assert self._std is not None and self._maps is not None and self._cca is not None
        return self._cca.similarity(self._maps[0](self._std[0](v)), self._maps[1](self._std[1](a)))
