"""Fitting a model's calibration (``fmn calibrate``): score validation pairs, fit one logistic
curve per direction on the best hit's ranking score, choose the no-match threshold.

Apart from :mod:`fmn_core.eval.calibration`, which only reads and applies a fitted calibration,
because the model wrapper loads that at search time and must not pull in the evaluation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fmn_core.errors import FmnError
from fmn_core.eval.calibration import DIRECTIONS, Calibration, DirectionFit, sigmoid

if TYPE_CHECKING:
    from fmn_core.eval.evaluate import EncodedSplit
    from fmn_core.inference import FMNModel


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iterations: int = 50) -> np.ndarray:
    """Weights ``[w..., bias]`` of a logistic regression of ``y`` (0/1) on ``x`` ``(N, F)`` by Newton's method.

    A small L2 penalty keeps the weights finite when the classes separate (they often do here).
    """
    design = np.hstack([np.asarray(x, np.float64), np.ones((len(x), 1))])
    y = np.asarray(y, np.float64)
    w = np.zeros(design.shape[1])
    penalty = l2 * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    for _ in range(iterations):
        p = sigmoid(design @ w)
        gradient = design.T @ (p - y) + penalty @ w
        hessian = (design * (p * (1 - p))[:, None]).T @ design + penalty
        step = np.linalg.solve(hessian + 1e-9 * np.eye(len(w)), gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


# The most right answers the "no good match" banner may hide on the split it is fitted on. A
# banner over a right answer teaches a user to ignore the banner; and the validation gallery
# (5 clips a class) is larger than a small library's, whose best hits score lower, so a line
# that just meets the split's right answers flags many of a small library's. fmn-cooking-v4's
# unconstrained best line hid 7.5 % of validation's right answers and most of the demo's.
MAX_FALSE_ALARM = 0.02


def choose_threshold(
    answerable: np.ndarray, unanswerable: np.ndarray, max_false_alarm: float = MAX_FALSE_ALARM
) -> tuple[float, float, float]:
    """``(threshold, false_alarm_rate, catch_rate)`` maximising catches minus false alarms.

    Args:
        answerable: the best hit's confidence for queries whose class is in the gallery.
        unanswerable: the same with the query's class taken out of the gallery.
        max_false_alarm: lines that flag more of the answerable queries than this are not chosen.
    """
    candidates = np.unique(np.concatenate([answerable, unanswerable, [0.0, 1.0]]))
    best = (0.0, 0.0, 0.0)
    best_j = -np.inf
    for t in candidates:
        false_alarm = float((answerable < t).mean())
        catch = float((unanswerable < t).mean())
        if false_alarm > max_false_alarm:
            continue
        if catch - false_alarm > best_j + 1e-9:  # a tie keeps the lower threshold: fewer right answers hidden
            best_j, best = catch - false_alarm, (float(t), false_alarm, catch)
    return best


@dataclass(frozen=True)
class PairScores:
    """The ranking score of every (video, speech) pair of a split, with the two sides' classes."""

    score: np.ndarray  # (Nv, Na) float64, as FMNModel.ranking_scores gives it
    video_labels: np.ndarray
    speech_labels: np.ndarray


def pair_scores_of(model: FMNModel, data: EncodedSplit) -> PairScores:
    return PairScores(model.ranking_scores(data.v_raw, data.a_raw), data.video_labels, data.speech_labels)


def _oriented(pairs: PairScores, direction: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(score, query_labels, gallery_labels)`` with one query per row."""
    if direction == "speech->video":
        return pairs.score.T, pairs.speech_labels, pairs.video_labels
    return pairs.score, pairs.video_labels, pairs.speech_labels


def _best_hits(fit: DirectionFit, pairs: PairScores, direction: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query: the best hit's confidence with the full gallery, with the query's class taken out, and
    whether the best hit with the full gallery is right."""
    score, query_labels, gallery_labels = _oriented(pairs, direction)
    same = gallery_labels[None, :] == query_labels[:, None]
    best = score.argmax(axis=1)
    full = fit.confidence(score[np.arange(len(best)), best])
    removed = fit.confidence(np.where(same, -np.inf, score).max(axis=1))
    return full, removed, same[np.arange(len(best)), best]


def fit_direction(pairs: PairScores, direction: str) -> DirectionFit:
    """Fit one direction's confidence map and threshold on a split's pairs."""
    score, query_labels, gallery_labels = _oriented(pairs, direction)
    if len(set(gallery_labels.tolist())) < 2:
        raise FmnError("calibration needs at least two classes in the gallery (one is taken out per query)")
    relevant = gallery_labels[None, :] == query_labels[:, None]
    weight, bias = fit_logistic(score.reshape(-1, 1), relevant.ravel())
    fit = DirectionFit(float(weight), float(bias), 0.0, 0.0, 0.0, int(score.shape[0]))
    full, removed, _ = _best_hits(fit, pairs, direction)
    threshold, false_alarm, catch = choose_threshold(full, removed)
    return DirectionFit(fit.weight, fit.bias, threshold, false_alarm, catch, fit.queries)


def flag_rates(fit: DirectionFit, pairs: PairScores, direction: str) -> dict[str, float]:
    """A fit's false-alarm and catch rates on another split's pairs, and its best hits' stated confidence
    beside how often they were right (equal for a well-calibrated fit)."""
    full, removed, right = _best_hits(fit, pairs, direction)
    return {
        "false_alarm_rate": float((full < fit.threshold).mean()),
        "catch_rate": float((removed < fit.threshold).mean()),
        "top_hit_confidence": float(full.mean()),
        "top_hit_accuracy": float(right.mean()),
        "queries": float(len(full)),
    }


def calibrate(
    model: FMNModel,
    manifest_path: str | os.PathLike[str],
    split: str = "val",
    jobs: int | None = None,
    progress: Any = None,
) -> Calibration:
    """Fit both directions on ``split`` of a manifest (validation: the test split stays for measuring).

    Raises:
        FmnError: the model was built in memory, or the split lacks decodable video, speech or classes.
    """
    from fmn_core.eval.evaluate import encode_split
    from fmn_core.manifest import read_manifest

    if model.path is None:
        raise FmnError("calibrate a saved model: its calibration is written beside the checkpoint")
    data = encode_split(model, read_manifest(manifest_path), split, jobs, progress)
    if not data.video_rows or not data.speech_rows:
        raise FmnError(f"{manifest_path}: split {split!r} has no decodable video or speech to calibrate on")
    pairs = pair_scores_of(model, data)
    return Calibration(model.checkpoint_hash(), split, {d: fit_direction(pairs, d) for d in DIRECTIONS})


__all__ = [
    "PairScores",
    "calibrate",
    "choose_threshold",
    "fit_direction",
    "fit_logistic",
    "flag_rates",
    "pair_scores_of",
]
