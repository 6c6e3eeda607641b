"""Moments in long videos: windows to score, windows merged into moments, and the field's metrics.

A video longer than a clip is scored as overlapping windows (``windows``); a query's scores over
one video's windows become moments by temporal non-maximum suppression (``merge_windows``): the
best window grows over its neighbours while they score nearly as well, then every window it
overlaps is suppressed, and so on. Moments are judged as the moment-retrieval field judges them
(TACoS, Charades-STA): a predicted moment is right when its temporal IoU with the annotated one
reaches a threshold, and R@k at IoU t is the share of queries with a right moment among the
first k (``recall_at_iou``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
PRIOR_FILE = "moments.json"  # beside a checkpoint: the background weight chosen for it on validation

Span = tuple[float, float]  # (start, end) in seconds
VideoSpan = tuple[str, float, float]  # (video id, start, end)


@dataclass(frozen=True)
class Moment:
    """A stretch of a video and how well it matches a query."""

    start: float  # seconds
    end: float  # seconds
    score: float  # the best window's score inside it
    best: int = -1  # that window's position in the list merged

    @property
    def span(self) -> Span:
        return (self.start, self.end)


def windows(duration: float, length: float, hop: float) -> list[Span]:
    """Overlapping windows of ``length`` seconds every ``hop`` seconds, covering ``[0, duration]``.

    A video no longer than one window is one window (the whole of it). The last window ends at
    the video's end, so its tail is never left out (it overlaps its neighbour more).

    Raises:
        ValueError: a length, hop or duration that is not positive, or a hop longer than a window
            (that would leave gaps).
    """
    if not (duration > 0 and length > 0 and hop > 0):
        raise ValueError(f"duration, length and hop must be positive, got {duration}, {length}, {hop}")
    if hop > length:
        raise ValueError(f"a hop of {hop} s over windows of {length} s would leave gaps")
    if duration <= length:
        return [(0.0, duration)]
    n = math.ceil((duration - length) / hop) + 1
    starts = [min(i * hop, duration - length) for i in range(n)]
    return [(round(s, 6), round(s + length, 6)) for s in dict.fromkeys(starts)]


def moment_scores(log_s: np.ndarray, background: np.ndarray | None, weight: float) -> np.ndarray:
    """What windows are ranked by: ``log S + weight * log(1 - P(background))``.

    ``background`` is the I3D's probability that a window is a stretch where nothing of the
    vocabulary happens (a model trained with ``background`` rows has that class); the idle
    stretches of a recipe show a step's objects without its action, which S alone often prefers
    to the step itself. ``weight`` 0, or no probability (NaN: a clip, or a model without the
    class), leaves log S as it is. Any leading shape: ``background`` runs along the first axis.
    """
    if background is None or weight == 0:
        return log_s
    keep = np.log(np.clip(1.0 - np.nan_to_num(np.asarray(background, np.float64), nan=0.0), 1e-6, None))
    return log_s + weight * keep.reshape(keep.shape + (1,) * (np.ndim(log_s) - 1))


@dataclass(frozen=True)
class MomentPrior:
    """How one checkpoint's moments are made, chosen on validation (``moments.json``): the background
    weight of :func:`moment_scores` and the ``centre`` of :func:`merge_windows`."""

    checkpoint_hash: str
    background_weight: float
    split: str  # where it was chosen
    figures: dict[str, float] = field(default_factory=dict)  # setting -> the choosing figure, for the record
    centre_within: float = 0.0  # files written before centring existed make moments of the best window alone

    def save(self, checkpoint: Path) -> Path:
        path = checkpoint.parent / PRIOR_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path


def load_moment_prior(checkpoint: Path, checkpoint_hash: Callable[[], str]) -> MomentPrior | None:
    """The prior beside ``checkpoint``, or None (no file, unreadable, or for other weights: logged)."""
    from fmn_core.models.checkpoint import read_beside

    def parse(raw: dict[str, Any]) -> MomentPrior:
        figures = {str(k): float(v) for k, v in raw.get("figures", {}).items()}
        return MomentPrior(
            str(raw["checkpoint_hash"]),
            float(raw["background_weight"]),
            str(raw["split"]),
            figures,
            float(raw.get("centre_within", 0.0)),
        )

    without = "moments are ranked by S alone, each its best window"
    return read_beside(checkpoint.parent / PRIOR_FILE, parse, checkpoint_hash, "moment prior", without)


def clock(seconds: float) -> str:
    """A time as players show it: ``m:ss``, or ``h:mm:ss`` from an hour on."""
    whole = max(0, int(seconds + 0.5))
    h, rest = divmod(whole, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def span_text(span: Span) -> str:
    """A moment as ``m:ss–m:ss``."""
    return f"{clock(span[0])}–{clock(span[1])}"


def temporal_iou(a: Span, b: Span) -> float:
    """Intersection over union of two time spans (0 when they do not overlap)."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def merge_windows(
    spans: Sequence[Span],
    scores: Sequence[float],
    grow: float = 0.0,
    overlap: float = 0.3,
    top: int | None = None,
    centre: float = 0.0,
) -> list[Moment]:
    """Temporal non-maximum suppression over one video's windows, best moment first.

    Args:
        spans: the windows, in time order.
        scores: one score per window (higher is better; any scale, e.g. the ranking logit).
        grow: a moment takes in a contiguous neighbour while the neighbour scores at least the
            best window's score minus ``grow`` (so a long action can be one moment, not a run of
            windows each as good as the next). 0, the default, was chosen on validation recipes,
            where every growth made the figures worse (docs/benchmarks.md, "Moments in long videos").
        overlap: windows whose IoU with a chosen moment reaches this are suppressed; a window
            that overlaps it less (a separate peak just beside it) may become a moment of its own.
        top: stop after this many moments (None: until every window is used).
        centre: a moment is one window long, centred on the run of windows around its best that
            score at least the best minus ``centre`` (0: the best window itself). A step shorter
            than a window lifts every window that holds it whole, and a longer one every window
            inside it, equally: the best of such a plateau is where noise puts it, while the
            plateau's middle is the step's middle (the window's length being the middle of the
            steps' lengths). Chosen on validation with the background weight (``MomentPrior``).

    Returns:
        Moments, best first.
    """
    if len(spans) != len(scores):
        raise ValueError(f"{len(spans)} windows but {len(scores)} scores")
    if grow > 0 and centre > 0:
        raise ValueError("a moment either grows over its neighbours or is centred on them: give grow or centre")
    free = [True] * len(spans)
    order = sorted(range(len(spans)), key=lambda i: -scores[i])
    moments: list[Moment] = []
    for best in order:
        if not free[best]:
            continue
        lo, hi = _run(spans, scores, free, best, grow)
        moment = Moment(spans[lo][0], spans[hi][1], float(scores[best]), best)
        if centre > 0:
            lo, hi = _run(spans, scores, free, best, centre)
            middle, half = (spans[lo][0] + spans[hi][1]) / 2, (spans[best][1] - spans[best][0]) / 2
            start = min(max(middle - half, spans[0][0]), spans[-1][1] - 2 * half)  # inside the video
            moment = Moment(round(start, 6), round(start + 2 * half, 6), float(scores[best]), best)
        for i in range(lo, hi + 1):
            free[i] = False
        for i in range(len(spans)):
            if free[i] and temporal_iou(spans[i], moment.span) >= overlap:
                free[i] = False
        moments.append(moment)
        if top is not None and len(moments) >= top:
            break
    return moments


def _run(
    spans: Sequence[Span], scores: Sequence[float], free: Sequence[bool], best: int, within: float
) -> tuple[int, int]:
    """The first and last window of the run around ``best``: unused neighbours that overlap the
    next window in (a search scores only some of a video's windows: a gap ends the run) and score
    at least the best minus ``within``."""

    def joins(i: int, j: int) -> bool:
        return (
            free[i] and spans[i][0] < spans[j][1] and spans[j][0] < spans[i][1] and scores[i] >= scores[best] - within
        )

    lo = hi = best
    while lo > 0 and joins(lo - 1, lo):
        lo -= 1
    while hi < len(spans) - 1 and joins(hi + 1, hi):
        hi += 1
    return lo, hi


def recall_at_iou(
    predictions: Sequence[Sequence[VideoSpan]], truths: Sequence[Sequence[VideoSpan]], k: int, iou: float
) -> float:
    """R@k at IoU ``iou``: the share of queries with a predicted moment among their first ``k`` that
    lies in an annotated video and overlaps an annotated span there by at least ``iou``.

    Within one video (grounding) every prediction names that video; across a library (corpus
    moment retrieval) a moment of another video is simply wrong.

    Args:
        predictions: per query, its predicted ``(video, start, end)`` best first.
        truths: per query, the annotated ``(video, start, end)`` moments (usually one; a step done
            twice in a recipe is two).
    """
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} queries predicted but {len(truths)} annotated")
    if not truths:
        return 0.0

    def right(p: VideoSpan, ts: Sequence[VideoSpan]) -> bool:
        return any(p[0] == t[0] and temporal_iou(p[1:], t[1:]) >= iou for t in ts)

    hits = sum(any(right(p, ts) for p in preds[:k]) for preds, ts in zip(predictions, truths, strict=True))
    return hits / len(truths)


def chance_recall(n_windows: int, n_right: int, k: int) -> float:
    """R@k when ``k`` of ``n_windows`` equally likely windows are drawn and ``n_right`` of them are right."""
    if n_right <= 0:
        return 0.0
    k = min(k, n_windows)
    return 1.0 - math.comb(n_windows - n_right, k) / math.comb(n_windows, k)


__all__ = [
    "Moment",
    "MomentPrior",
    "Span",
    "VideoSpan",
    "chance_recall",
    "clock",
    "load_moment_prior",
    "moment_scores",
    "span_text",
    "merge_windows",
    "recall_at_iou",
    "temporal_iou",
    "windows",
]
