"""Baselines on frozen features: CCA, KCCA, DCCA (the paper's §4.3 comparisons) and an InfoNCE dual encoder.

Every baseline is fitted on a training split of video features (N, Dv) and speech features (M, Da)
with class labels, where *every same-label cross-modal pair is a positive* (the paper's protocol:
all within-class pairs match), and then scores any videos against any speech clips with
``similarity(v, a) -> (N, M)``, higher meaning more similar.

The linear steps (CCA itself, and the CCA on top of KCCA's and DCCA's features) use the moments
of the full set of class pairs, computed in closed form from per-class sums, so no pair list is
built or subsampled: 20 classes × 70 × 70 = 98,000 pairs cost no more than 1,400 samples.

All baselines take a ``seed`` and are deterministic; none touches the global random state.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
import torch
from torch import nn

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
        return (x - self.mean) / self.scale


def _cosine(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of x (N, K) with every row of y (M, K) -> (N, M)."""
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _EPS)
    y = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), _EPS)
    return x @ y.T


# ---------------------------------------------------------------- linear CCA over all class pairs


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
        return self.sums_x.T @ self.sums_y / self.n_pairs


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
    return scipy.linalg.cholesky(cov + ridge * np.eye(len(cov)), lower=True)


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
    return np.maximum(d2, 0.0)


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
        return np.exp(-self.gamma * _squared_distances(x, self.landmarks)) @ self.whiten


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


# ---------------------------------------------------------------- neural baselines (DCCA, InfoNCE)


class _Dropout(nn.Module):
    """Inverted dropout whose masks come from a NumPy generator.

    NumPy's PCG64 draws the masks several times faster than torch's CPU Bernoulli (dropout was
    half of the training time), and a generator of our own keeps runs repeatable without
    touching torch's global random state.
    """

    def __init__(self, p: float, rng: np.random.Generator) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p, self.rng = p, rng

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.from_numpy(self.rng.random(tuple(x.shape), dtype=np.float32) >= self.p)
        return x * keep / (1.0 - self.p)


def _mlp(in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float, rng: np.random.Generator) -> nn.Sequential:
    """Linear → GELU → dropout blocks, then a linear output; dropout also on the input (samples few, dims many)."""
    sizes = [in_dim, *hidden]
    layers: list[nn.Module] = [_Dropout(dropout, rng)]
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(d_in, d_out), nn.GELU(), _Dropout(dropout, rng)]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], out_dim))


class _ClassMembers:
    """Indices of each class's samples, grouped so a random member of any class is one lookup."""

    def __init__(self, labels: np.ndarray, classes: np.ndarray) -> None:
        class_of = np.searchsorted(classes, labels)
        self.order = np.argsort(class_of, kind="stable")  # sample indices grouped by class
        self.count = np.bincount(class_of, minlength=len(classes))
        self.start = np.concatenate([[0], np.cumsum(self.count)[:-1]])

    def pick(self, cls: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One member of each class in cls (B,), chosen by uniforms u (B,) in [0, 1)."""
        return self.order[self.start[cls] + (u * self.count[cls]).astype(np.int64)]


class _PairSampler:
    """Class-balanced minibatches of positive pairs: a class uniformly, then one video and one speech clip of it."""

    def __init__(self, v_labels: np.ndarray, a_labels: np.ndarray, rng: np.random.Generator) -> None:
        self.classes = np.unique(v_labels)
        self.v, self.a = _ClassMembers(v_labels, self.classes), _ClassMembers(a_labels, self.classes)
        self.rng = rng

    def __call__(self, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Returns video indices (B,), speech indices (B,) and class ids (B,) of one batch."""
        cls = self.rng.integers(len(self.classes), size=batch_size)
        u = self.rng.random((2, batch_size))
        return self.v.pick(cls, u[0]), self.a.pick(cls, u[1]), cls


LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class _TrainSettings:
    """Optimisation settings shared by the neural baselines."""

    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int
    threads: int | None


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with n intra-op threads (None: leave torch's setting), then restore the previous count.

    The heads are small and the batches short, so extra threads buy little; on a machine whose
    cores are shared, OpenMP threads waiting for each other made training ten times slower.
    """
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_heads(
    zv: np.ndarray,
    za: np.ndarray,
    v_labels: np.ndarray,
    a_labels: np.ndarray,
    heads: tuple[nn.Module, nn.Module],
    loss_fn: LossFn,
    settings: _TrainSettings,
) -> None:
    """Train two heads on class-balanced positive-pair batches with AdamW.

    Args:
        zv: (N, Dv) standardised video features; za: (M, Da) standardised speech features.
        v_labels: (N,), a_labels: (M,) labels.
        heads: (video head, speech head), trained in place.
        loss_fn: (video out (B, K), speech out (B, K), class ids (B,)) -> scalar loss.
        settings: steps, batch size, learning rate, weight decay, seed.
    """
    sampler = _PairSampler(v_labels, a_labels, np.random.default_rng(settings.seed))
    tv, ta = torch.from_numpy(zv).float(), torch.from_numpy(za).float()
    params = [p for h in heads for p in h.parameters()]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    for h in heads:
        h.train()
    with _torch_threads(settings.threads):
        for _ in range(settings.steps):
            v_idx, a_idx, cls = sampler(settings.batch_size)
            loss = loss_fn(heads[0](tv[v_idx]), heads[1](ta[a_idx]), torch.from_numpy(cls))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    for h in heads:
        h.eval()


@contextmanager
def _private_torch_rng(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for a block and restore it afterwards.

    Module initialisation draws from the global generator; forking it makes it repeat under a
    seed without disturbing anyone else's random stream.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def _encode(head: nn.Module, z: np.ndarray) -> np.ndarray:
    return head(torch.from_numpy(z).float()).double().numpy()


def dcca_loss(h1: torch.Tensor, h2: torch.Tensor, reg: float = 1e-3, top_k: int | None = None) -> torch.Tensor:
    """Negative total canonical correlation of two views (Andrew et al. 2013, "Deep CCA", eq. 10).

    The covariances get a ridge ``reg·I`` (the paper's r1, r2). Whitening uses Cholesky factors
    and the correlation is the sum of singular values of T = L1⁻¹ Σ12 L2⁻ᵀ (any whitening gives
    the same singular values); both have stable gradients, unlike an eigendecomposition's.

    Args:
        h1: (B, K) outputs of the first view's network.
        h2: (B, K2) outputs of the second view's network.
        reg: ridge added to each covariance.
        top_k: sum only the k largest correlations (None = all).

    Returns:
        Scalar loss, −Σ canonical correlations.
    """
    h1, h2 = h1.double(), h2.double()  # the Cholesky of a small covariance wants the precision
    h1, h2 = h1 - h1.mean(0), h2 - h2.mean(0)
    n = h1.shape[0] - 1
    s11 = h1.T @ h1 / n + reg * torch.eye(h1.shape[1], dtype=h1.dtype)
    s22 = h2.T @ h2 / n + reg * torch.eye(h2.shape[1], dtype=h2.dtype)
    l1, l2 = torch.linalg.cholesky(s11), torch.linalg.cholesky(s22)
    left = torch.linalg.solve_triangular(l1, h1.T @ h2 / n, upper=False)
    t = torch.linalg.solve_triangular(l2, left.T, upper=False).T
    corr = torch.linalg.svdvals(t)
    return -(corr if top_k is None else corr[:top_k]).sum()


@dataclass(eq=False)
class DCCA(Baseline):
    """Deep CCA (Andrew et al. 2013): two MLPs trained with the true CCA correlation objective.

    The loss is the regularised total-correlation objective of the paper (not the "soft
    decorrelation" surrogate), on minibatches of class-paired samples. After training, a linear
    CCA of the networks' training outputs gives the final projections, as in the paper, and
    retrieval is by cosine in that space.
    """

    out_dim: int | None = None  # network output size (CCA dims); None = min(classes − 1, 64)
    hidden: tuple[int, ...] = (256,)  # hidden layer widths of each MLP
    dropout: float = 0.2  # on inputs and hidden layers; frozen features overfit quickly
    reg: float = 1e-3  # ridge on the minibatch covariances (the paper's r1 = r2)
    final_reg: float = 1e-3  # ridge of the final linear CCA, relative to the mean eigenvalue
    weight_power: float = 1.0  # canonical directions weighted by correlation ** weight_power in the cosine
    steps: int = 200  # optimisation steps
    batch_size: int = 256  # pairs per minibatch; must exceed out_dim for a full-rank covariance
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW weight decay
    seed: int = 0  # initialisation, batch order and dropout
    threads: int | None = 1  # torch intra-op threads while training (None: torch's setting)
    _std: tuple[_Standardiser, _Standardiser] | None = field(default=None, init=False, repr=False)
    _heads: tuple[nn.Module, nn.Module] | None = field(default=None, init=False, repr=False)
    _cca: LinearCCA | None = field(default=None, init=False, repr=False)

    def _fit(self, v: np.ndarray, a: np.ndarray, v_labels: np.ndarray, a_labels: np.ndarray) -> None:
        out = self.out_dim if self.out_dim is not None else min(_n_classes(v_labels) - 1, 64)
        if self.batch_size <= out:
            raise ValueError(f"DCCA batch_size ({self.batch_size}) must exceed out_dim ({out})")
        self._std = (_Standardiser.fit(v), _Standardiser.fit(a))
        zv, za = self._std[0](v), self._std[1](a)
        masks = np.random.default_rng([self.seed, 1])  # dropout masks, apart from the batch order's stream
        with _private_torch_rng(self.seed):
            self._heads = (
                _mlp(v.shape[1], self.hidden, out, self.dropout, masks),
                _mlp(a.shape[1], self.hidden, out, self.dropout, masks),
            )
        settings = _TrainSettings(self.steps, self.batch_size, self.lr, self.weight_decay, self.seed, self.threads)
        _train_heads(zv, za, v_labels, a_labels, self._heads, lambda h1, h2, _: dcca_loss(h1, h2, self.reg), settings)
        hv, ha = _encode(self._heads[0], zv), _encode(self._heads[1], za)
        self._cca = LinearCCA.fit(hv, ha, v_labels, a_labels, out, self.final_reg, self.weight_power)

    def _similarity(self, v: np.ndarray, a: np.ndarray) -> np.ndarray:
        assert self._std is not None and self._heads is not None and self._cca is not None
        hv, ha = _encode(self._heads[0], self._std[0](v)), _encode(self._heads[1], self._std[1](a))
        return self._cca.similarity(hv, ha)


def multi_positive_info_nce(
    zv: torch.Tensor, za: torch.Tensor, classes: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Symmetric InfoNCE where every same-class pair in the batch is a positive (Khosla et al. 2020, L_out).

    For each video the loss is the mean over its positive speech clips of −log softmax over all
    speech clips of the batch, and likewise for each speech clip; the two directions are averaged.

    Args:
        zv: (B, K) L2-normalised video embeddings.
        za: (B, K) L2-normalised speech embeddings.
        classes: (B,) class id of pair b (video b and speech b share it).
        temperature: softmax temperature.

    Returns:
        Scalar loss.
    """
    logits = zv @ za.T / temperature
    positive = (classes[:, None] == classes[None, :]).float()  # includes the diagonal, so no row is empty
    v2a = -(torch.log_softmax(logits, dim=1) * positive).sum(1) / positive.sum(1)
    a2v = -(torch.log_softmax(logits, dim=0) * positive).sum(0) / positive.sum(0)
    return 0.5 * (v2a.mean() + a2v.mean())


@dataclass(eq=False)
class InfoNCE(Baseline):
    """Contrastive dual encoder: two MLP projection heads trained with multi-positive symmetric InfoNCE."""

    embed_dim: int = 64  # shared embedding size
    hidden: tuple[int, ...] = (256,)  # hidden layer widths of each head
    dropout: float = 0.5  # on inputs and hidden layers; frozen features overfit quickly
    temperature: float = 0.1  # softmax temperature of the loss
    steps: int = 200  # optimisation steps
    batch_size: int = 256  # pairs per minibatch
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW weight decay
    seed: int = 0  # initialisation, batch order and dropout
    threads: int | None = 1  # torch intra-op threads while training (None: torch's setting)
    _std: tuple[_Standardiser, _Standardiser] | None = field(default=None, init=False, repr=False)
    _heads: tuple[nn.Module, nn.Module] | None = field(default=None, init=False, repr=False)

    def _fit(self, v: np.ndarray, a: np.ndarray, v_labels: np.ndarray, a_labels: np.ndarray) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        self._std = (_Standardiser.fit(v), _Standardiser.fit(a))
        masks = np.random.default_rng([self.seed, 1])  # dropout masks, apart from the batch order's stream
        with _private_torch_rng(self.seed):
            self._heads = (
                _mlp(v.shape[1], self.hidden, self.embed_dim, self.dropout, masks),
                _mlp(a.shape[1], self.hidden, self.embed_dim, self.dropout, masks),
            )

        def loss(hv: torch.Tensor, ha: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
            zv, za = nn.functional.normalize(hv, dim=1), nn.functional.normalize(ha, dim=1)
            return multi_positive_info_nce(zv, za, cls, self.temperature)

        settings = _TrainSettings(self.steps, self.batch_size, self.lr, self.weight_decay, self.seed, self.threads)
        _train_heads(self._std[0](v), self._std[1](a), v_labels, a_labels, self._heads, loss, settings)

    def _similarity(self, v: np.ndarray, a: np.ndarray) -> np.ndarray:
        assert self._std is not None and self._heads is not None
        return _cosine(_encode(self._heads[0], self._std[0](v)), _encode(self._heads[1], self._std[1](a)))


# ---------------------------------------------------------------- registry

BASELINES: dict[str, type[Baseline]] = {"cca": CCA, "kcca": KCCA, "dcca": DCCA, "infonce": InfoNCE}


def make_baseline(name: str, **settings: Any) -> Baseline:
    """Build a baseline by registry name with its defaults, overridden by ``settings``.

    Args:
        name: one of ``BASELINES`` ("cca", "kcca", "dcca", "infonce"), case-insensitive.
        settings: constructor fields, e.g. ``seed=1`` or ``steps=100``.

    Raises:
        ValueError: for an unknown name or setting.
    """
    cls = BASELINES.get(name.lower())
    if cls is None:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    allowed = set(inspect.signature(cls).parameters)
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise ValueError(f"{name} has no setting {', '.join(unknown)}; it takes {', '.join(sorted(allowed))}")
    return cls(**settings)
