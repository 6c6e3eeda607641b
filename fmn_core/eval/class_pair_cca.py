"""Regularised linear CCA over all same-label cross-modal pairs, from closed-form class-pair moments.

It is the CCA baseline itself and the last step of KCCA and DCCA (a CCA of their features). The
moments of the full set of class pairs come from per-class sums, so no pair list is built or
subsampled: 20 classes × 70 × 70 = 98,000 pairs cost no more than 1,400 samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from fmn_core.eval.baseline_base import _EPS, _cosine


@dataclass(eq=False)
class PairMoments:
    """Moments of the set of all same-label pairs (x_i, y_j), computed without listing the pairs."""

    mean_x: np.ndarray  # (Dx,) pair-weighted mean of x
    mean_y: np.ndarray  # (Dy,)
    cov_xx: np.ndarray  # (Dx, Dx) pair-weighted covariance of x
    cov_yy: np.ndarray  # (Dy, Dy)
    sums_x: np.ndarray  # (C, Dx) per-class sums of centred x; the cross-covariance is sums_xᵀ sums_y / n_pairs
    sums_y: np.ndarray  # (C, Dy)
    n_pairs: float  # Σ_c n_x(c) n_y(c)

    @property
    def cov_xy(self) -> np.ndarray:
        """(Dx, Dy) cross-covariance; its rank is at most the number of classes."""
        cov: np.ndarray = self.sums_x.T @ self.sums_y / self.n_pairs  # numpy's stubs give Any here
        return cov


def class_pair_moments(x: np.ndarray, y: np.ndarray, x_labels: np.ndarray, y_labels: np.ndarray) -> PairMoments:
    """Means and covariances over all same-label pairs (x_i, y_j), from per-class sums.

    Sample x_i appears in n_y(label_i) pairs, so the x moments are weighted by that count; the
    cross term of a class is the outer product of its centred sums (Σ_i (x_i − μx))(Σ_j (y_j − μy))ᵀ.
    Classes present in only one modality form no pair and weigh nothing.

    Args:
        x: (N, Dx) features of one modality.
        y: (M, Dy) features of the other.
        x_labels: (N,) labels of x.
        y_labels: (M,) labels of y.
    """
    classes = np.intersect1d(x_labels, y_labels)
    if len(classes) == 0:
        raise ValueError("no label is shared between the two modalities: there are no pairs")
    keep_x, keep_y = np.isin(x_labels, classes), np.isin(y_labels, classes)
    x, y = x[keep_x], y[keep_y]
    x_idx, y_idx = np.searchsorted(classes, x_labels[keep_x]), np.searchsorted(classes, y_labels[keep_y])
    n_x, n_y = np.bincount(x_idx, minlength=len(classes)), np.bincount(y_idx, minlength=len(classes))
    w_x, w_y = n_y[x_idx].astype(np.float64), n_x[y_idx].astype(np.float64)
    n_pairs = float(np.sum(n_x * n_y))
    mean_x, mean_y = w_x @ x / n_pairs, w_y @ y / n_pairs
    xc, yc = x - mean_x, y - mean_y
    sums_x, sums_y = np.zeros((len(classes), x.shape[1])), np.zeros((len(classes), y.shape[1]))
    np.add.at(sums_x, x_idx, xc)
    np.add.at(sums_y, y_idx, yc)
    cov_xx, cov_yy = (xc * w_x[:, None]).T @ xc / n_pairs, (yc * w_y[:, None]).T @ yc / n_pairs
    return PairMoments(mean_x, mean_y, cov_xx, cov_yy, sums_x, sums_y, n_pairs)


def _ridge_cholesky(cov: np.ndarray, reg: float) -> np.ndarray:
    """Lower Cholesky factor of C + reg·mean_eig·I; the ridge is relative so it ignores feature scale."""
    ridge = reg * max(float(np.trace(cov)) / len(cov), _EPS)
    factor: np.ndarray = scipy.linalg.cholesky(cov + ridge * np.eye(len(cov)), lower=True)  # scipy is untyped
    return factor


@dataclass(eq=False)
class LinearCCA:
    """A fitted regularised CCA: centre, project, compare by cosine."""

    mean_x: np.ndarray  # (Dx,)
    mean_y: np.ndarray  # (Dy,)
    proj_x: np.ndarray  # (Dx, K)
    proj_y: np.ndarray  # (Dy, K)
    correlations: np.ndarray  # (K,) canonical correlations on the training pairs, descending
    weight_power: float = 1.0  # canonical direction i is scaled by correlations[i] ** weight_power before the cosine

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        x_labels: np.ndarray,
        y_labels: np.ndarray,
        dims: int,
        reg: float,
        weight_power: float = 1.0,
    ) -> LinearCCA:
        """Regularised CCA of all class pairs: SVD of the whitened cross-covariance.

        Whitening by Cholesky factors (W = L⁻¹, so W C Wᵀ = I) gives the same canonical pairs as the
        symmetric C^(−1/2) at a fraction of an eigendecomposition's cost. The cross-covariance is
        sums_xᵀ sums_y with only C rows each, so T = (L_x⁻¹ sums_xᵀ)(L_y⁻¹ sums_yᵀ)ᵀ is a product of
        two thin matrices and its SVD comes from two thin QRs and a C × C SVD: 2048-d features
        cost a Cholesky, not a 2048² SVD.

        Args:
            x: (N, Dx), y: (M, Dy) features; x_labels (N,), y_labels (M,) labels.
            dims: canonical directions to keep (at most the number of paired classes).
            reg: ridge on each covariance, as a fraction of its mean eigenvalue.
            weight_power: scale of each direction in the cosine, as a power of its correlation.
        """
        m = class_pair_moments(x, y, x_labels, y_labels)
        lx, ly = _ridge_cholesky(m.cov_xx, reg), _ridge_cholesky(m.cov_yy, reg)
        a = scipy.linalg.solve_triangular(lx, m.sums_x.T, lower=True)  # (Dx, C)
        b = scipy.linalg.solve_triangular(ly, m.sums_y.T, lower=True)  # (Dy, C)
        qa, ra = np.linalg.qr(a)
        qb, rb = np.linalg.qr(b)
        u, s, vt = np.linalg.svd(ra @ rb.T / m.n_pairs)
        k = max(1, min(dims, len(s)))
        # canonical directions in feature space: W_xᵀ u = L_x⁻ᵀ u
        proj_x = scipy.linalg.solve_triangular(lx, qa @ u[:, :k], lower=True, trans="T")
        proj_y = scipy.linalg.solve_triangular(ly, qb @ vt[:k].T, lower=True, trans="T")
        return cls(m.mean_x, m.mean_y, proj_x, proj_y, s[:k], weight_power)

    def similarity(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Cosine in the correlation-weighted canonical space: x (N, Dx), y (M, Dy) -> (N, M).

        Whitened canonical coordinates all have unit variance, so an unweighted cosine lets weakly
        correlated (mostly noise) directions count as much as strong ones; weighting by the
        correlation (Gong et al. 2014 use a power of it) keeps them from drowning the signal.
        """
        weight = np.maximum(self.correlations, 0.0) ** self.weight_power
        return _cosine((x - self.mean_x) @ self.proj_x * weight, (y - self.mean_y) @ self.proj_y * weight)
