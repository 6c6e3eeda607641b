"""Class-level cross-modal retrieval metrics (paper §4.2) and their exact random-ranking baseline.

Relevance is label equality: an item is relevant to a query when both carry the same class label,
so a query has many relevant items (the paper's 2,500 within-class pairs). Definitions:

- **R@k** (recall at k): the fraction of queries with *at least one* relevant item among the top k.
  This is the standard recall for retrieval with many relevant items, as the paper's §4.2 words it.
- **mAP**: the mean over queries of average precision over the full ranking,
  ``AP = (1/r) Σ_j j / rank_j`` over the r relevant items ranked at ``rank_1 < … < rank_r``.
- **MedR / mean rank**: the median / mean over queries of the 1-based rank of the first relevant item.
- **fraction@k** (``relevant_fraction_at``): the mean over queries of the share of a query's relevant
  items found in the top k, TP / (TP + FN) — the paper's formula (5). Its §4.2 text defines R@k as
  the hit rate above, but the values of its Table 2 (R@25 ≈ 25 % with 15 relevant among 300) lie
  below the hit rate of random ranking (≈ 73 %) and fit this fraction (random: k / N ≈ 8 %), so
  both are reported.

Ties in scores are broken pessimistically and deterministically: within a group of equal scores
every irrelevant item is ranked before every relevant one, so a constant scorer gets the worst
possible ranking rather than a flattering one. Queries without any relevant item are left out of
every average and counted in ``n_without_relevant``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 25)
DIRECTIONS: tuple[str, str] = ("video->speech", "speech->video")
_BLOCK_ELEMENTS = 1 << 22  # rank this many scores at a time, so big galleries stay within memory
_PER_K = ("recall_at", "relevant_fraction_at")  # fields keyed by k


@dataclass
class RetrievalMetrics:
    """Retrieval quality of one scorer in one direction (query modality → item modality)."""

    recall_at: dict[int, float]  # k -> fraction of queries with a relevant item in the top k
    map: float  # mean average precision over the full ranking
    median_rank: float  # median over queries of the 1-based rank of the first relevant item
    mean_rank: float  # mean over queries of the same rank
    n_queries: int  # queries averaged over (those with at least one relevant item)
    n_without_relevant: int = 0  # queries left out because no item shares their label
    n_items: int = 0  # size of the ranked gallery
    relevant_fraction_at: dict[int, float] = field(default_factory=dict)  # k -> mean share of relevant items in top k
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes (e.g. how a value was computed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the k keys become strings, as JSON requires)."""
        out = asdict(self)
        for name in _PER_K:
            out[name] = {str(k): v for k, v in getattr(self, name).items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetrievalMetrics:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        for name in _PER_K:
            data[name] = {int(k): float(v) for k, v in data.get(name, {}).items()}
        return cls(**data)


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {ks}")
    return ks


def _check_labels(scores_shape: tuple[int, int], query_labels: np.ndarray, item_labels: np.ndarray) -> None:
    q, n = scores_shape
    if query_labels.shape != (q,) or item_labels.shape != (n,):
        raise ValueError(
            f"scores {scores_shape} need query_labels of shape ({q},) and item_labels of shape ({n},), "
            f"got {query_labels.shape} and {item_labels.shape}"
        )
    if n == 0:
        raise ValueError("the gallery is empty: nothing to rank")


def _rank_block(
    scores: np.ndarray, relevant: np.ndarray, ks: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First-relevant rank, average precision and relevant fractions of each query of a block.

    Args:
        scores: (B, N) scores, higher is better.
        relevant: (B, N) bool relevance; every row has at least one True.
        ks: cut-offs for the relevant fractions.

    Returns:
        first_rank (B,) 1-based, ap (B,), and fraction (B, len(ks)) of relevant items in the top k.
    """
    # lexsort's last key is the primary one: descending score, then irrelevant before relevant
    # (pessimistic ties); lexsort is stable, so remaining ties keep item order (deterministic).
    order = np.lexsort((relevant.astype(np.int8), -scores), axis=-1)
    hits = np.take_along_axis(relevant, order, axis=1)
    n_items = scores.shape[1]
    found = np.cumsum(hits, axis=1)  # relevant items within the top t + 1
    n_relevant = found[:, -1]
    ap = np.where(hits, found / np.arange(1, n_items + 1), 0.0).sum(axis=1) / n_relevant
    fraction = found[:, [min(k, n_items) - 1 for k in ks]] / n_relevant[:, None]
    return np.argmax(hits, axis=1) + 1, ap, fraction


def _summarise(
    first_rank: np.ndarray, ap: np.ndarray, fraction: np.ndarray, ks: tuple[int, ...], n_skipped: int, n_items: int
) -> RetrievalMetrics:
    return RetrievalMetrics(
        recall_at={k: float(np.mean(first_rank <= k)) for k in ks},
        map=float(np.mean(ap)),
        median_rank=float(np.median(first_rank)),
        mean_rank=float(np.mean(first_rank)),
        n_queries=int(first_rank.size),
        n_without_relevant=n_skipped,
        n_items=n_items,
        relevant_fraction_at={k: float(f) for k, f in zip(ks, fraction.mean(axis=0), strict=True)},
    )


def retrieval_metrics(
    scores: np.ndarray,
    query_labels: Sequence[Any] | np.ndarray,
    item_labels: Sequence[Any] | np.ndarray,
    ks: Sequence[int] = DEFAULT_KS,
) -> RetrievalMetrics:
    """R@k, mAP, median and mean first-relevant rank of a score matrix (definitions in the module docstring).

    Args:
        scores: (Q, N) similarity of each query to each item; higher ranks first. NaN is refused.
        query_labels: (Q,) class label of each query.
        item_labels: (N,) class label of each item.
        ks: cut-offs for R@k; a k larger than N counts the whole gallery.

    Returns:
        The metrics, averaged over queries that have at least one relevant item.

    Raises:
        ValueError: on mismatched shapes, NaN scores, bad ks, or when no query has a relevant item.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a (queries, items) matrix, got shape {scores.shape}")
    query_labels, item_labels = np.asarray(query_labels), np.asarray(item_labels)
    _check_labels(scores.shape, query_labels, item_labels)
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; a ranking needs comparable scores")
    ks = _check_ks(ks)
    relevant = query_labels[:, None] == item_labels[None, :]
    keep = relevant.any(axis=1)
    scores, relevant = scores[keep], relevant[keep]
    block = max(1, _BLOCK_ELEMENTS // scores.shape[1])
    if not keep.any():
        raise ValueError("no query has a relevant item (no label is shared between queries and items)")
    starts = range(0, len(scores), block)
    parts = [_rank_block(scores[i : i + block], relevant[i : i + block], ks) for i in starts]
    first_rank, ap, fraction = (np.concatenate([p[j] for p in parts]) for j in range(3))
    return _summarise(first_rank, ap, fraction, ks, n_skipped=int((~keep).sum()), n_items=scores.shape[1])


def _survival(n: int, r: int) -> np.ndarray:
    """P(first relevant rank > t) for t = 0..n under a uniformly random ranking.

    Hypergeometric: the top t hold no relevant item with probability C(n−r, t) / C(n, t), which is
    the running product of (n−r−i) / (n−i); every factor is ≤ 1, so the product is accurate.

    Returns:
        (n + 1,) survival values, starting at 1 for t = 0 and reaching 0 at t = n − r + 1.
    """
    i = np.arange(n, dtype=np.float64)
    factors = np.clip((n - r - i) / (n - i), 0.0, 1.0)
    return np.concatenate([[1.0], np.cumprod(factors)])


def _expected_ap(n: int, r: int) -> float:
    """Exact expected average precision of a random ranking with r relevant among n items.

    With rel_i the relevance at position i, AP = (1/r) Σ_i (rel_i / i) Σ_{j≤i} rel_j, and
    E[rel_i] = r/n, E[rel_i rel_j] = r(r−1)/(n(n−1)) for i ≠ j, so
    E[AP] = (r−1)/(n−1) + (n−r) H_n / (n(n−1)) with H_n the n-th harmonic number (Bestgen 2015).
    """
    if n == 1:
        return 1.0
    harmonic = float(np.sum(1.0 / np.arange(1, n + 1)))
    return (r - 1) / (n - 1) + (n - r) * harmonic / (n * (n - 1))


def _median_rank(survival: np.ndarray) -> float:
    """Median of a first-relevant-rank distribution given its survival function (n + 1,).

    An exact 0.5 of the CDF sits between two ranks, and is reported as their midpoint as
    ``np.median`` would.
    """
    cdf = 1.0 - survival  # cdf[t] = P(rank ≤ t)
    t = int(np.argmax(cdf >= 0.5 - 1e-12))
    return t + 0.5 if math.isclose(cdf[t], 0.5, abs_tol=1e-12) else float(t)


def random_metrics(
    query_labels: Sequence[Any] | np.ndarray,
    item_labels: Sequence[Any] | np.ndarray,
    ks: Sequence[int] = DEFAULT_KS,
) -> RetrievalMetrics:
    """Expected metrics under a uniformly random ranking, computed exactly (no sampling).

    R@k, mAP and mean rank are the exact expectations of what :func:`retrieval_metrics` reports.
    The median rank is the median of the pooled first-rank distribution: the limit of the
    reported median as the number of queries grows (its exact expectation has no closed form).

    Args:
        query_labels: (Q,) class label of each query.
        item_labels: (N,) class label of each item.
        ks: cut-offs for R@k.

    Raises:
        ValueError: on an empty gallery, bad ks, or when no query has a relevant item.
    """
    query_labels, item_labels = np.asarray(query_labels), np.asarray(item_labels)
    if query_labels.ndim != 1 or item_labels.ndim != 1:
        raise ValueError("labels must be one-dimensional")
    _check_labels((query_labels.size, item_labels.size), query_labels, item_labels)
    ks, n = _check_ks(ks), item_labels.size
    per_label = Counter(item_labels.tolist())
    r_of_query = np.array([per_label.get(label, 0) for label in query_labels.tolist()], dtype=int)
    kept = r_of_query[r_of_query > 0]
    if kept.size == 0:
        raise ValueError("no query has a relevant item (no label is shared between queries and items)")
    r_values, r_counts = np.unique(kept, return_counts=True)
    weights = r_counts / kept.size
    # The first-rank distribution of a query drawn at random from the queries: the median over
    # many queries converges to this distribution's median.
    pooled = np.sum([w * _survival(n, int(r)) for w, r in zip(weights, r_values, strict=True)], axis=0)
    return RetrievalMetrics(
        recall_at={k: float(1.0 - pooled[min(k, n)]) for k in ks},
        map=float(sum(w * _expected_ap(n, int(r)) for w, r in zip(weights, r_values, strict=True))),
        median_rank=_median_rank(pooled),
        mean_rank=float(sum(w * (n + 1) / (r + 1) for w, r in zip(weights, r_values, strict=True))),
        n_queries=int(kept.size),
        n_without_relevant=int(r_of_query.size - kept.size),
        n_items=n,
        relevant_fraction_at={k: min(k, n) / n for k in ks},  # every position holds a relevant item w.p. r/n
        extra={"kind": "expected under uniformly random ranking (exact)"},
    )


def bidirectional_metrics(
    scores: np.ndarray,
    video_labels: Sequence[Any] | np.ndarray,
    speech_labels: Sequence[Any] | np.ndarray,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, RetrievalMetrics]:
    """Metrics in both directions from one video × speech score matrix.

    Args:
        scores: (Nv, Na) similarity of each video to each speech clip.
        video_labels: (Nv,) labels of the videos.
        speech_labels: (Na,) labels of the speech clips.
        ks: cut-offs for R@k.

    Returns:
        ``{"video->speech": ..., "speech->video": ...}``.
    """
    scores = np.asarray(scores)
    return {
        DIRECTIONS[0]: retrieval_metrics(scores, video_labels, speech_labels, ks),
        DIRECTIONS[1]: retrieval_metrics(scores.T, speech_labels, video_labels, ks),
    }


def metrics_by_group(
    scores: np.ndarray,
    video_labels: Sequence[Any] | np.ndarray,
    speech_labels: Sequence[Any] | np.ndarray,
    groups: Sequence[str],
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, dict[str, RetrievalMetrics]]:
    """:func:`bidirectional_metrics` over each group of the speech (e.g. a speaker's clips).

    Speech→video: the group's clips are the queries, over all the videos. Video→speech: every
    video ranks only the group's clips, so a video's relevant items are the group's utterances of
    its class (a video whose class the group never says is left out, counted in
    ``n_without_relevant``). The video→speech gallery thus shrinks with the group, and chance
    rises with it: compare a group's figures with those of the groups beside it, not with the
    figures over all speech. Speech without a group (``""``) is left out.
    """
    scores, speech_labels, groups_a = np.asarray(scores), np.asarray(speech_labels), np.asarray(groups)
    out = {}
    for group in sorted(set(groups_a.tolist()) - {""}):
        keep = groups_a == group
        out[group] = bidirectional_metrics(scores[:, keep], video_labels, speech_labels[keep], ks)
    return out


def bidirectional_random(
    video_labels: Sequence[Any] | np.ndarray,
    speech_labels: Sequence[Any] | np.ndarray,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, RetrievalMetrics]:
    """Expected random-ranking metrics in both directions (see :func:`random_metrics`)."""
    return {
        DIRECTIONS[0]: random_metrics(video_labels, speech_labels, ks),
        DIRECTIONS[1]: random_metrics(speech_labels, video_labels, ks),
    }


def n_utterances(by_dir: dict[str, RetrievalMetrics]) -> int:
    """The speech clips behind one row of both directions: its speech→video queries, counting those left out."""
    m = by_dir[DIRECTIONS[1]]
    return m.n_queries + m.n_without_relevant


def format_table(
    rows: dict[str, dict[str, RetrievalMetrics]],
    fractions: bool = False,
    name: str = "method",
    utterances: bool = False,
) -> str:
    """A plain-text table of methods × directions, with R@k and mAP in percent (the paper's convention).

    Args:
        rows: ``{method: {direction: metrics}}``, e.g. ``{"cca": bidirectional_metrics(...)}``.
        fractions: also show the relevant fraction at each k (``F@k``, the paper's formula (5)).
        name: the heading of the first column (what the rows are).
        utterances: also show each row's speech clips (:func:`n_utterances`), as tables of groups
            of the speech need: their rows differ in size.

    Returns:
        The table, one line per (method, direction), followed by a legend line.
    """
    all_metrics = [m for by_dir in rows.values() for m in by_dir.values()]
    ks = sorted({k for m in all_metrics for k in m.recall_at})
    fks = sorted({k for m in all_metrics for k in m.relevant_fraction_at}) if fractions else []
    header = [name, "direction", *(f"R@{k}" for k in ks), "mAP", "MedR", *(f"F@{k}" for k in fks), "queries"]
    header += ["utterances"] if utterances else []
    lines = [header]
    for method, by_dir in rows.items():
        count = [str(n_utterances(by_dir))] if utterances else []
        for direction, m in by_dir.items():
            lines.append(
                [
                    method,
                    direction,
                    *(_percent(m.recall_at.get(k)) for k in ks),
                    _percent(m.map),
                    f"{m.median_rank:g}",
                    *(_percent(m.relevant_fraction_at.get(k)) for k in fks),
                    str(m.n_queries),
                    *count,
                ]
            )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        # names left-aligned, numbers right-aligned so decimal points line up
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    rule = "-" * len(fmt(header))
    legend = "R@k and mAP in %; MedR = median rank of the first relevant item (1 = best)."
    if fractions:
        legend += " F@k = % of a query's relevant items in the top k."
    return "\n".join([fmt(header), rule, *(fmt(row) for row in lines[1:]), rule, legend])


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"
