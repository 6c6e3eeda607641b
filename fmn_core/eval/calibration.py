"""How sure a hit is, in words a user can act on: calibrated confidence and "no good match".

S ranks well but is not a probability: white noise dropped on the demo library once ranked a
carrot clip first with S1 0.70. So each direction of a model gets a logistic map (Platt scaling)
from a hit's ranking score (the logit of S, as the ranking uses it) to the probability that the
hit is of the query's class, fitted on every pair of a validation split, and a threshold on the
best hit's confidence below which the app and `fmn search` say that nothing in the library
matches well. The map is increasing, so confidences fall with rank as S does.

The threshold is chosen on validation queries in two conditions: with their class in the gallery
(a flag there is a false alarm) and with every item of their class taken out (the query then has
no right answer; a flag there is a catch). It maximises catches minus false alarms (Youden's J).
Both rates are stored with the fit, and `fmn calibrate` can re-measure them on another split.

The fit lives in ``calibration.json`` beside the checkpoint, with the checkpoint's hash (as the
index hashes files), so a calibration never describes weights it was not fitted on.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fmn_core.errors import FmnError

if TYPE_CHECKING:
    from fmn_core.eval.evaluate import EncodedSplit
    from fmn_core.inference import FMNModel

log = logging.getLogger(__name__)

CALIBRATION_NAME = "calibration.json"
DIRECTIONS = ("speech->video", "video->speech")  # query modality -> ranked modality


@dataclass(frozen=True)
class DirectionFit:
    """The confidence map and the "no good match" threshold of one search direction."""

    weight: float  # of the ranking score
    bias: float
    threshold: float  # the best hit's confidence below which nothing matches well
    false_alarm_rate: float  # validation queries with a right answer in the gallery that were flagged
    catch_rate: float  # validation queries with no right answer in the gallery that were flagged
    queries: int  # validation queries behind the two rates

    def confidence(self, score: np.ndarray | float) -> np.ndarray:
        """Probability that a hit with this ranking score is of the query's class."""
        return _sigmoid(self.weight * np.asarray(score, np.float64) + self.bias)


@dataclass(frozen=True)
class Calibration:
    """Both directions' fits for one checkpoint."""

    checkpoint_hash: str
    split: str  # the split it was fitted on
    directions: dict[str, DirectionFit]

    def fit_for(self, query_modality: str) -> DirectionFit:
        return self.directions["speech->video" if query_modality == "speech" else "video->speech"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint_hash": self.checkpoint_hash,
            "split": self.split,
            "directions": {k: asdict(v) for k, v in self.directions.items()},
        }

    def write(self, path: str | os.PathLike[str]) -> Path:
        from fmn_core.manifest import atomic_write_text

        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path


def calibration_path(checkpoint: Path) -> Path:
    return checkpoint.parent / CALIBRATION_NAME


def load_calibration(checkpoint: Path, checkpoint_hash: Callable[[], str]) -> Calibration | None:
    """The calibration beside ``checkpoint``, or None (no file, unreadable, or for other weights: logged)."""
    from fmn_core.models.checkpoint import read_beside

    def parse(raw: dict[str, Any]) -> Calibration:
        directions = {k: DirectionFit(**raw["directions"][k]) for k in DIRECTIONS}
        return Calibration(str(raw["checkpoint_hash"]), str(raw["split"]), directions)

    without = "confidences are off (run fmn calibrate)"
    return read_beside(calibration_path(checkpoint), parse, checkpoint_hash, "calibration", without)


def describe(confidence: float | None, threshold: float | None) -> str:
    """A hit's confidence in a word, for a results list: strong, likely, possible or weak (a miss)."""
    if confidence is None:
        return ""
    if threshold is not None and confidence < threshold:
        return "weak"  # below the "no good match" line, however the number reads
    if confidence >= 0.8:
        return "strong"
    return "likely" if confidence >= 0.5 else "possible"


# -- fitting ------------------------------------------------------------------------------------


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
        p = _sigmoid(design @ w)
        gradient = design.T @ (p - y) + penalty @ w
        hessian = (design * (p * (1 - p))[:, None]).T @ design + penalty
        step = np.linalg.solve(hessian + 1e-9 * np.eye(len(w)), gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def choose_threshold(answerable: np.ndarray, unanswerable: np.ndarray) -> tuple[float, float, float]:
    """``(threshold, false_alarm_rate, catch_rate)`` maximising catches minus false alarms.

    Args:
        answerable: the best hit's confidence for queries whose class is in the gallery.
        unanswerable: the same with the query's class taken out of the gallery.
    """
    candidates = np.unique(np.concatenate([answerable, unanswerable, [0.0, 1.0]]))
    best = (0.0, 0.0, 0.0)
    best_j = -np.inf
    for t in candidates:
        false_alarm = float((answerable < t).mean())
        catch = float((unanswerable < t).mean())
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


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * np.asarray(z, np.float64)))  # overflow-free


__all__ = [
    "CALIBRATION_NAME",
    "DIRECTIONS",
    "Calibration",
    "DirectionFit",
    "PairScores",
    "calibrate",
    "calibration_path",
    "choose_threshold",
    "describe",
    "fit_direction",
    "fit_logistic",
    "flag_rates",
    "load_calibration",
    "pair_scores_of",
]
