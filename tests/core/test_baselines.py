"""Baselines on frozen features: each beats random ranking on a synthetic two-view set, deterministically."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from fmn_core.eval.baseline_base import Baseline
from fmn_core.eval.baselines import BASELINES, make_baseline
from fmn_core.eval.class_pair_cca import LinearCCA, class_pair_moments
from fmn_core.eval.metrics import bidirectional_metrics, bidirectional_random
from fmn_core.eval.neural_baselines import dcca_loss


@dataclass
class TwoViews:
    """Video (N, Dv) and speech (M, Da) features with labels, train and test."""

    v_train: np.ndarray
    a_train: np.ndarray
    vl_train: np.ndarray
    al_train: np.ndarray
    v_test: np.ndarray
    a_test: np.ndarray
    vl_test: np.ndarray
    al_test: np.ndarray


def _two_views(seed: int = 0, n_classes: int = 5, latent: int = 4) -> TwoViews:
    """Class means in a latent space, seen through a different random linear map per modality, plus noise.

    Within-class spread, a nuisance subspace per modality and isotropic noise make the task far
    from trivial; the modalities have different sizes and dimensions.
    """
    rng = np.random.default_rng(seed)
    means = 2.0 * rng.normal(size=(n_classes, latent))
    maps = {"v": rng.normal(size=(latent, 24)), "a": rng.normal(size=(latent, 16))}
    nuisance = {"v": rng.normal(size=(6, 24)), "a": rng.normal(size=(6, 16))}

    def view(kind: str, per_class: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.repeat(np.arange(n_classes), per_class)
        z = means[labels] + rng.normal(size=(len(labels), latent))
        x = z @ maps[kind] + rng.normal(size=(len(labels), 6)) @ nuisance[kind]
        return x + rng.normal(size=x.shape), labels

    (v_tr, vl_tr), (a_tr, al_tr) = view("v", 30), view("a", 24)
    (v_te, vl_te), (a_te, al_te) = view("v", 12), view("a", 10)
    return TwoViews(v_tr, a_tr, vl_tr, al_tr, v_te, a_te, vl_te, al_te)


@pytest.fixture(scope="module")
def data() -> TwoViews:
    return _two_views()


def _fit(name: str, d: TwoViews, **settings: object) -> Baseline:
    return make_baseline(name, **settings).fit(d.v_train, d.a_train, d.vl_train, d.al_train)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_beats_random_in_both_directions(name: str, data: TwoViews) -> None:
    scores = _fit(name, data).similarity(data.v_test, data.a_test)
    assert scores.shape == (len(data.v_test), len(data.a_test))
    assert scores.dtype == np.float64
    got = bidirectional_metrics(scores, data.vl_test, data.al_test)
    chance = bidirectional_random(data.vl_test, data.al_test)
    for direction, m in got.items():
        assert m.map > chance[direction].map + 0.3, f"{name} {direction}: mAP {m.map:.3f}"
        assert m.recall_at[1] > chance[direction].recall_at[1] + 0.3, f"{name} {direction}: R@1 {m.recall_at[1]:.3f}"


# Short runs where the test is about randomness, not quality; KCCA needs fewer landmarks than
# samples for its seed to choose anything.
QUICK = {"cca": {}, "kcca": {"n_landmarks": 40}, "dcca": {"steps": 20}, "infonce": {"steps": 20}}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_same_seed_same_scores_and_global_rng_untouched(name: str, data: TwoViews) -> None:
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    first = _fit(name, data, seed=3, **QUICK[name]).similarity(data.v_test, data.a_test)
    second = _fit(name, data, seed=3, **QUICK[name]).similarity(data.v_test, data.a_test)
    np.testing.assert_array_equal(first, second)
    assert torch.equal(torch.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)


@pytest.mark.parametrize("name", ["kcca", "dcca", "infonce"])
def test_seed_matters_where_there_is_randomness(name: str, data: TwoViews) -> None:
    a = _fit(name, data, seed=0, **QUICK[name]).similarity(data.v_test, data.a_test)
    b = _fit(name, data, seed=1, **QUICK[name]).similarity(data.v_test, data.a_test)
    assert not np.array_equal(a, b)


def test_class_pair_moments_equal_the_explicit_pair_list() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(9, 3)), rng.normal(size=(7, 2))
    xl, yl = np.array([0, 0, 1, 1, 1, 2, 2, 2, 3]), np.array([0, 1, 1, 2, 2, 2, 4])  # class 3 and 4 have no pairs
    pairs = [(i, j) for i in range(9) for j in range(7) if xl[i] == yl[j]]
    px, py = x[[i for i, _ in pairs]], y[[j for _, j in pairs]]
    m = class_pair_moments(x, y, xl, yl)
    assert m.n_pairs == len(pairs)
    np.testing.assert_allclose(m.mean_x, px.mean(0))
    np.testing.assert_allclose(m.mean_y, py.mean(0))
    np.testing.assert_allclose(m.cov_xx, np.cov(px.T, bias=True))
    np.testing.assert_allclose(m.cov_yy, np.cov(py.T, bias=True))
    np.testing.assert_allclose(m.cov_xy, (px - px.mean(0)).T @ (py - py.mean(0)) / len(pairs))


def test_linear_cca_matches_the_textbook_solution() -> None:
    """Against the symmetric-whitening eigen-solution: same correlations, directions equal up to sign."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(60, 7)), rng.normal(size=(50, 5))
    xl, yl = rng.integers(0, 4, 60), rng.integers(0, 4, 50)
    x[:, 0] += xl
    y[:, 0] -= yl
    cca = LinearCCA.fit(x, y, xl, yl, dims=3, reg=0.1)
    m = class_pair_moments(x, y, xl, yl)

    def inv_sqrt(c: np.ndarray) -> np.ndarray:
        val, vec = np.linalg.eigh(c + 0.1 * np.trace(c) / len(c) * np.eye(len(c)))
        return (vec / np.sqrt(val)) @ vec.T

    wx, wy = inv_sqrt(m.cov_xx), inv_sqrt(m.cov_yy)
    u, s, vt = np.linalg.svd(wx @ m.cov_xy @ wy)
    np.testing.assert_allclose(cca.correlations, s[:3], atol=1e-10)
    for got, want in ((cca.proj_x, wx @ u[:, :3]), (cca.proj_y, wy @ vt[:3].T)):
        np.testing.assert_allclose(np.abs(np.sum(got * want, 0)), np.sum(want * want, 0), rtol=1e-8)


def test_dcca_loss_is_minus_the_total_correlation() -> None:
    h = torch.randn(500, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert dcca_loss(h, h, reg=1e-9).item() == pytest.approx(-3.0, abs=1e-5)  # identical views: 3 correlations of 1
    noise = torch.randn(500, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert dcca_loss(h, noise, reg=1e-9).item() > -0.5  # independent views: near zero


def test_classes_missing_from_one_modality_are_ignored(data: TwoViews) -> None:
    extra_v = np.vstack([data.v_train, data.v_train[:3]])
    extra_l = np.concatenate([data.vl_train, [99, 99, 99]])  # a class with no speech: no pairs, no effect
    fitted = make_baseline("cca").fit(extra_v, data.a_train, extra_l, data.al_train)
    scores = fitted.similarity(data.v_test, data.a_test)
    np.testing.assert_allclose(scores, _fit("cca", data).similarity(data.v_test, data.a_test))


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_bad_training_inputs_raise(name: str, data: TwoViews) -> None:
    b = make_baseline(name)
    with pytest.raises(ValueError, match="one entry per sample"):
        b.fit(data.v_train, data.a_train, data.vl_train[:-1], data.al_train)
    with pytest.raises(ValueError, match="two classes"):
        b.fit(data.v_train, data.a_train, np.zeros(len(data.v_train)), np.zeros(len(data.a_train)))
    with pytest.raises(ValueError, match="matrix"):
        b.fit(data.v_train[:, 0], data.a_train, data.vl_train, data.al_train)
    with pytest.raises(RuntimeError, match="fit"):
        b.similarity(data.v_test, data.a_test)


def test_similarity_checks_feature_sizes(data: TwoViews) -> None:
    b = _fit("cca", data)
    with pytest.raises(ValueError, match="fitted on 24"):
        b.similarity(data.v_test[:, :10], data.a_test)
    with pytest.raises(ValueError, match="NaN"):
        b.similarity(data.v_test, np.full_like(data.a_test, np.nan))


def test_make_baseline_refuses_unknown_names_and_settings() -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("svm")
    with pytest.raises(ValueError, match="no setting"):
        make_baseline("cca", steps=3)
    assert make_baseline("DCCA", steps=5).steps == 5  # type: ignore[attr-defined]
