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

if TYPE_CHECKING:
    pass

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
        return sigmoid(self.weight * np.asarray(score, np.float64) + self.bias)


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


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * np.asarray(z, np.float64)))  # overflow-free


__all__ = [
    "CALIBRATION_NAME",
    "DIRECTIONS",
    "Calibration",
    "DirectionFit",
    "calibration_path",
    "describe",
    "load_calibration",
    "sigmoid",
]
