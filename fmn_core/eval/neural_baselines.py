"""The neural baselines: Deep CCA and a contrastive (InfoNCE) dual encoder, two MLP heads each.

The heads train on class-balanced minibatches of positive pairs. Initialisation, batch order and
dropout all come from the baseline's ``seed`` through generators of their own, so runs repeat
without touching torch's or NumPy's global random state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from fmn_core.eval.baseline_base import Baseline, _cosine, _n_classes, _Standardiser
from fmn_core.eval.class_pair_cca import LinearCCA


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
        # numpy's stubs give Any here
        members: np.ndarray = self.order[self.start[cls] + (u * self.count[cls]).astype(np.int64)]
        return members


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
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
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
    out: torch.Tensor = head(torch.from_numpy(z).float())  # a module call is Any to mypy
    return out.double().numpy()


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
    corr: torch.Tensor = torch.linalg.svdvals(t)  # torch.linalg's functions are Any to mypy
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
