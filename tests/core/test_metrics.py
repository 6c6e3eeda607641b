"""Retrieval metrics: hand-computed cases, pessimistic ties, and the exact random baseline."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from fmn_core.eval.metrics import (
    DIRECTIONS,
    RetrievalMetrics,
    bidirectional_metrics,
    bidirectional_random,
    format_table,
    metrics_by_group,
    random_metrics,
    retrieval_metrics,
)

ITEM_LABELS = np.array(["a", "b", "a", "b"])


def test_hand_computed_case() -> None:
    scores = np.array(
        [
            [0.1, 0.9, 0.8, 0.3],  # query "a": order 1(b) 2(a) 3(b) 0(a) -> relevant at 2, 4; AP = (1/2 + 2/4)/2 = 1/2
            [0.2, 0.7, 0.1, 0.6],  # query "b": order 1(b) 3(b) 0(a) 2(a) -> relevant at 1, 2; AP = (1/1 + 2/2)/2 = 1
            [0.2, 0.3, 0.1, 0.4],  # query "a": order 3(b) 1(b) 0(a) 2(a) -> relevant at 3, 4; AP = (1/3 + 2/4)/2 = 5/12
        ]
    )
    m = retrieval_metrics(scores, ["a", "b", "a"], ITEM_LABELS, ks=(1, 2, 3))
    # first relevant ranks 2, 1, 3
    assert m.recall_at == pytest.approx({1: 1 / 3, 2: 2 / 3, 3: 1.0})
    assert m.map == pytest.approx((1 / 2 + 1 + 5 / 12) / 3)  # = 23/36
    assert m.median_rank == 2.0
    assert m.mean_rank == 2.0
    assert (m.n_queries, m.n_without_relevant, m.n_items) == (3, 0, 4)
    # share of the 2 relevant items in the top k: k=1: 0, 1/2, 0; k=2: 1/2, 1, 0; k=3: 1/2, 1, 1/2
    assert m.relevant_fraction_at == pytest.approx({1: 1 / 6, 2: 1 / 2, 3: 2 / 3})


def test_two_queries_even_median_and_k_beyond_gallery() -> None:
    scores = np.array([[0.1, 0.9, 0.8, 0.3], [0.2, 0.7, 0.1, 0.6]])
    m = retrieval_metrics(scores, ["a", "b"], ITEM_LABELS, ks=(1, 2, 25))
    # first relevant ranks 2 and 1: median 1.5; k = 25 > N counts the whole gallery
    assert m.recall_at == {1: 0.5, 2: 1.0, 25: 1.0}
    assert m.map == pytest.approx(0.75)
    assert m.median_rank == 1.5


def test_ties_are_broken_pessimistically() -> None:
    # tie groups {0(a), 1(b)} and {2(a), 3(b)}: the irrelevant item of each group goes first,
    # so relevant items land at ranks 2 and 4, AP = (1/2 + 2/4)/2 = 1/2
    m = retrieval_metrics(np.array([[1.0, 1.0, 0.0, 0.0]]), ["a"], ITEM_LABELS, ks=(1, 2))
    assert m.recall_at == {1: 0.0, 2: 1.0}
    assert m.map == pytest.approx(0.5)
    assert m.median_rank == 2.0


def test_constant_scorer_is_no_better_than_random() -> None:
    rng = np.random.default_rng(0)
    q_labels, i_labels = rng.integers(0, 4, 40), rng.integers(0, 4, 60)
    const = retrieval_metrics(np.zeros((40, 60)), q_labels, i_labels)
    rand = random_metrics(q_labels, i_labels)
    assert const.recall_at[1] == 0.0  # a tie-optimistic scorer would report 1.0 here
    assert const.map < rand.map
    assert const.median_rank > rand.median_rank
    assert all(const.recall_at[k] <= rand.recall_at[k] for k in const.recall_at)


def test_perfect_scorer() -> None:
    rng = np.random.default_rng(1)
    q_labels, i_labels = rng.integers(0, 5, 30), rng.integers(0, 5, 50)
    scores = (q_labels[:, None] == i_labels[None, :]).astype(float) + 0.01 * rng.random((30, 50))
    m = retrieval_metrics(scores, q_labels, i_labels)
    assert m.recall_at[1] == 1.0
    assert m.map == pytest.approx(1.0)
    assert m.median_rank == 1.0


def test_queries_without_relevant_items_are_excluded_and_counted() -> None:
    scores = np.array([[0.0, 1.0, 0.0, 0.0], [5.0, 0.0, 0.0, 0.0]])
    m = retrieval_metrics(scores, ["b", "z"], ITEM_LABELS, ks=(1,))
    assert (m.n_queries, m.n_without_relevant) == (1, 1)
    assert m.recall_at[1] == 1.0
    with pytest.raises(ValueError, match="no query has a relevant item"):
        retrieval_metrics(scores, ["y", "z"], ITEM_LABELS)


@pytest.mark.parametrize(
    ("scores", "q_labels", "match"),
    [
        (np.zeros((2, 3)), ["a", "b"], "item_labels"),
        (np.zeros(4), ["a"], "matrix"),
        (np.array([[np.nan, 0.0, 0.0, 0.0]]), ["a"], "NaN"),
    ],
)
def test_bad_inputs_raise(scores: np.ndarray, q_labels: list[str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        retrieval_metrics(scores, q_labels, ITEM_LABELS)


def test_bad_ks_raise() -> None:
    with pytest.raises(ValueError, match="ks"):
        retrieval_metrics(np.zeros((1, 4)), ["a"], ITEM_LABELS, ks=(0,))


def _all_rankings(q_labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every query once under every permutation of the gallery: averaging over them is the exact expectation."""
    perms = np.array(list(itertools.permutations(range(n))), dtype=float)  # (n!, n) distinct scores, no ties
    scores = np.repeat(perms, len(q_labels), axis=0)
    return scores, np.tile(q_labels, len(perms))


def test_random_metrics_equal_the_average_over_all_permutations() -> None:
    q_labels, i_labels = np.array([0, 1, 2, 0]), np.array([0, 0, 1, 2, 2, 2])  # r = 2, 1, 3, 2 of n = 6
    scores, tiled = _all_rankings(q_labels, len(i_labels))
    exact = retrieval_metrics(scores, tiled, i_labels, ks=(1, 2, 3))
    expected = random_metrics(q_labels, i_labels, ks=(1, 2, 3))
    assert expected.recall_at == pytest.approx(exact.recall_at, abs=1e-12)
    assert expected.map == pytest.approx(exact.map, abs=1e-12)
    assert expected.mean_rank == pytest.approx(exact.mean_rank, abs=1e-12)
    assert expected.median_rank == exact.median_rank
    assert expected.relevant_fraction_at == pytest.approx(exact.relevant_fraction_at, abs=1e-12)


def test_random_metrics_match_monte_carlo() -> None:
    rng = np.random.default_rng(7)
    q_labels, i_labels = rng.integers(0, 4, 12), rng.integers(0, 4, 40)
    trials = 2000
    # one big call: each trial's queries are further rows, so the averages are Monte Carlo means
    mc = retrieval_metrics(rng.random((trials * 12, 40)), np.tile(q_labels, trials), i_labels)
    exact = random_metrics(q_labels, i_labels)
    for k in exact.recall_at:
        assert mc.recall_at[k] == pytest.approx(exact.recall_at[k], abs=0.015)
    assert mc.map == pytest.approx(exact.map, abs=0.01)
    assert mc.mean_rank == pytest.approx(exact.mean_rank, rel=0.03)
    assert mc.median_rank == exact.median_rank
    for k in exact.relevant_fraction_at:
        assert mc.relevant_fraction_at[k] == pytest.approx(exact.relevant_fraction_at[k], abs=0.01)


def test_random_metrics_closed_forms() -> None:
    # r = 1 of n = 2: AP is 1 or 1/2, first rank 1 or 2 with equal chance
    m = random_metrics(["a"], ["a", "b"], ks=(1, 2))
    assert m.map == pytest.approx(0.75)
    assert m.mean_rank == pytest.approx(1.5)
    assert m.recall_at == pytest.approx({1: 0.5, 2: 1.0})
    assert m.median_rank == 1.5  # the CDF is exactly 0.5 at rank 1
    # paper protocol: 20 classes × 15 test items, r = 15 of n = 300: E[first rank] = 301/16
    labels = np.repeat(np.arange(20), 15)
    paper = random_metrics(labels, labels, ks=(1,))
    assert paper.mean_rank == pytest.approx(301 / 16)
    assert paper.recall_at[1] == pytest.approx(0.05)
    assert paper.relevant_fraction_at[1] == pytest.approx(1 / 300)


def test_bidirectional_transposes() -> None:
    rng = np.random.default_rng(3)
    v_labels, a_labels = rng.integers(0, 3, 8), rng.integers(0, 3, 11)
    scores = rng.random((8, 11))
    both = bidirectional_metrics(scores, v_labels, a_labels)
    assert set(both) == set(DIRECTIONS)
    assert both["speech->video"] == retrieval_metrics(scores.T, a_labels, v_labels)
    assert bidirectional_random(v_labels, a_labels)["video->speech"] == random_metrics(v_labels, a_labels)


def test_table_and_json_round_trip() -> None:
    labels = np.repeat(np.arange(4), 3)
    rows = {
        "random": bidirectional_random(labels, labels),
        "perfect": bidirectional_metrics(np.eye(12) + (labels[:, None] == labels), labels, labels),
    }
    table = format_table(rows)
    lines = table.splitlines()
    assert "R@25" in lines[0] and "mAP" in lines[0] and "MedR" in lines[0]
    assert any(line.startswith("perfect") and "100.00" in line for line in lines)
    assert len(lines) == 2 + 4 + 2  # header, rule, four rows, rule, legend
    assert "F@25" in format_table(rows, fractions=True).splitlines()[0]
    m = rows["random"]["video->speech"]
    assert RetrievalMetrics.from_dict(json.loads(json.dumps(m.to_dict()))) == m


def test_metrics_by_group_scores_each_group_over_its_own_clips() -> None:
    # 2 videos (classes a, b); speech 0-1 by "p" (both ranked right), 2-3 by "q" (both wrong), 4 by nobody
    video_labels, speech_labels = ["a", "b"], ["a", "b", "a", "b", "a"]
    scores = np.array([[0.9, 0.1, 0.2, 0.8, 0.5], [0.1, 0.9, 0.8, 0.2, 0.5]])
    groups = metrics_by_group(scores, video_labels, speech_labels, ["p", "p", "q", "q", ""])
    assert set(groups) == {"p", "q"}  # speech without a group is left out
    assert groups["p"]["speech->video"].recall_at[1] == 1.0 and groups["q"]["speech->video"].recall_at[1] == 0.0
    q_alone = bidirectional_metrics(scores[:, 2:4], video_labels, speech_labels[2:4])
    assert groups["q"]["video->speech"].map == pytest.approx(q_alone["video->speech"].map)
