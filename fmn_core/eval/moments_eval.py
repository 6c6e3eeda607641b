"""`fmn eval --moments`: finding the moment a spoken phrase describes inside long videos.

The protocol of the moment-retrieval field (TACoS, Charades-STA), on a manifest whose video
rows of a split are segments of long files (a recipe's steps, MPII Cooking 2 or TACoS
annotations). Each long file is cut, for scoring only, into overlapping windows
(``moments.windows``); every window is encoded as a clip and scored against every spoken query
of the split whose class is annotated somewhere; a query's window scores over one file become
moments by temporal NMS (``moments.merge_windows``). Then R@1 and R@5 at IoU 0.3, 0.5 and 0.7:

- **within one video** (grounding): for each (query, video annotated with its class), the
  video's moments, best first;
- **across the library** (corpus moment retrieval): every video's moments together, best first;
  a moment of a video without the class is wrong.

Beside them, "every window equally likely": R@k of k windows drawn at random (the chance of a
ranking that knows nothing).
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fmn_core.errors import FmnError
from fmn_core.eval import scoring
from fmn_core.index.moments import (
    MomentPrior,
    VideoSpan,
    chance_recall,
    merge_windows,
    moment_scores,
    recall_at_iou,
    temporal_iou,
    windows,
)
from fmn_core.manifest import ManifestRow, read_manifest

if TYPE_CHECKING:
    from fmn_core.inference import FMNModel

log = logging.getLogger(__name__)

IOUS = (0.3, 0.5, 0.7)
KS = (1, 5)
Progress = Callable[[str, int, int], None]


@dataclass
class MomentReport:
    """R@k at IoU per scope ('all' and each language) and protocol, for the model and for chance."""

    counts: dict[str, int]
    window: tuple[float, float]  # (length, hop) in seconds
    figures: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # scope -> method -> metric

    def table(self) -> str:
        metrics = [f"R@{k} IoU{t}" for k in KS for t in IOUS]
        lines = [f"{'scope':<6} {'method':<34} " + " ".join(f"{m:>10}" for m in metrics)]
        lines.append("-" * len(lines[0]))
        for scope, methods in self.figures.items():
            for method, values in methods.items():
                lines.append(f"{scope:<6} {method:<34} " + " ".join(f"{100 * values[m]:>10.1f}" for m in metrics))
        lines.append("R@k at IoU t in %: a query is right when one of its first k moments overlaps an annotated")
        lines.append("segment of its class by IoU >= t (across the library: in the right video).")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "window": list(self.window), "figures": self.figures}

    def write_json(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


@dataclass
class _Video:
    path: str
    spans: list[tuple[float, float]]  # its windows
    rows: slice  # their rows in the window score matrix
    truths: dict[str, list[VideoSpan]]  # label -> annotated segments


def _videos(manifest: Any, segments: Sequence[ManifestRow], length: float, hop: float) -> list[_Video]:
    from fmn_core.media.errors import MediaError
    from fmn_core.media.video_io import probe_video

    by_file: dict[str, list[ManifestRow]] = defaultdict(list)
    for r in segments:
        by_file[str(manifest.resolve(r))].append(r)
    videos, start = [], 0
    for path, rows in sorted(by_file.items()):
        try:
            duration = probe_video(path).duration_s
        except MediaError as e:
            raise FmnError(f"{path}: cannot read its length ({e})") from e
        spans = windows(duration, length, hop)
        truths: dict[str, list[VideoSpan]] = defaultdict(list)
        for r in rows:
            seg_start, seg_end = r.segment or (0.0, None)
            truths[r.label].append((path, seg_start, seg_end if seg_end is not None else duration))
        videos.append(_Video(path, spans, slice(start, start + len(spans)), dict(truths)))
        start += len(spans)
    return videos


def _encode_windows(
    model: FMNModel, videos: Sequence[_Video], jobs: int | None, progress: Progress | None
) -> torch.Tensor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from fmn_core.features.video import normalize_clip, window_clips

    out: list[torch.Tensor] = [torch.empty(0)] * len(videos)
    ctx = multiprocessing.get_context("forkserver")  # as training's decoding pools: never fork a threaded process
    with ProcessPoolExecutor(
        jobs or os.cpu_count() or 1, mp_context=ctx, initializer=torch.set_num_threads, initargs=(1,)
    ) as pool:
        futures = [pool.submit(window_clips, v.path, v.spans, model.video_frontend) for v in videos]
        for n, future in enumerate(futures):
            decoded = future.result()
            if decoded.missing:
                log.warning(
                    "%s: %d sampled frames could not be read (a broken stretch?); the last good frame stands in",
                    videos[n].path, decoded.missing,
                )  # fmt: skip
            clips = torch.from_numpy(decoded.clips)
            # normalised float clips are 4x the uint8 ones: encoded in batches
            out[n] = torch.cat(
                [model.video_raw_from_clips(normalize_clip(clips[i : i + 64])) for i in range(0, len(clips), 64)]
            )
            if progress:
                progress("windows", n + 1, len(videos))
    return torch.cat(out)


def evaluate_moments(
    model: FMNModel,
    manifest_path: str | os.PathLike[str],
    split: str = "test",
    length: float = 5.0,
    hop: float = 1.0,
    grow: float = 0.0,
    overlap: float = 0.3,
    jobs: int | None = None,
    progress: Progress | None = None,
    strip: str | os.PathLike[str] | None = None,
    centre: float | None = None,
    settings: Sequence[tuple[float, float]] | None = None,
) -> MomentReport:
    """The protocol of the module docstring on one split of a manifest.

    Windows are ranked and merged into moments as search does (``index.moments.moment_scores``:
    log S and the model's background prior; ``merge_windows`` with the model's ``centre``, unless
    ``centre`` or ``grow`` is given). ``strip``: also draw, to this PNG, the first English query's
    window scores over the first video that shows its class, against the annotated segments.
    ``settings``: instead of the model's own, report each ``(background weight, centre)`` (under
    the scope ``"all, weight w, centre c"``), for choosing them on validation.

    Raises:
        FmnError: the split has no segment rows, or no speech of their classes.
    """
    from fmn_core.eval.evaluate import encode_split

    manifest = read_manifest(manifest_path)
    segments = [r for r in manifest.of("video", split) if r.segment is not None]
    if not segments:
        raise FmnError(f"{manifest_path}: split {split!r} has no video rows with start/end (segments of long videos)")
    labels = {r.label for r in segments}
    data = encode_split(model, manifest, split, jobs, progress)
    queries = [i for i, r in enumerate(data.speech_rows) if r.label in labels]
    if not queries:
        raise FmnError(f"{manifest_path}: split {split!r} has no speech of the segments' classes to query with")
    videos = _videos(manifest, segments, length, hop)
    v_raw = _encode_windows(model, videos, jobs, progress)
    log_s = scoring.log_s(
        model.ranking_scores(v_raw, data.a_raw[queries]), model.net.combiner.mode
    )  # (windows, queries)
    background = model.background_probability(v_raw)
    scores = moment_scores(log_s, background, model.moment_prior)
    if centre is None:
        centre = 0.0 if grow > 0 else model.moment_centre
    rows = [data.speech_rows[i] for i in queries]
    report = MomentReport(
        counts={"videos": len(videos), "windows": len(v_raw), "segments": len(segments), "queries": len(rows)},
        window=(length, hop),
    )
    if strip is not None:
        _draw_first_strip(Path(strip), videos, scores, rows, centre)
    labels_q = [r.label for r in rows]
    if settings is not None:
        for w, c in settings:
            weighted = moment_scores(log_s, background, w)
            report.figures[_setting(w, c)] = _figures(videos, weighted, labels_q, grow, overlap, c)
        return report
    for scope in ["all", *sorted({r.lang for r in rows if r.lang})]:
        chosen = [j for j, r in enumerate(rows) if scope == "all" or r.lang == scope]
        scoped = [labels_q[j] for j in chosen]
        report.figures[scope] = _figures(videos, scores[:, chosen], scoped, grow, overlap, centre)
    return report


def choose_moment_prior(
    model: FMNModel,
    manifest_path: str | os.PathLike[str],
    split: str = "val",
    weights: Sequence[float] = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0),
    centres: Sequence[float] = (0.0, 0.5, 1.0, 2.0),
    **options: Any,
) -> MomentPrior:
    """The background weight and centre with the best within-video R@1 at IoU 0.5 on ``split``
    (on a tie the smaller centre, then the smaller weight: the less a setting changes, the better).

    A model without a background class has no prior to weigh: only the centre is chosen. With
    ``grow`` (a moment made of the windows it grows over) there is no centre to choose.

    Raises:
        FmnError: the split has no segments or speech for them.
    """
    if model.background_class is None:
        log.warning("%s has no background class (train it with 'background' rows: fmn manifest background); "
                    "only how moments are centred is chosen", model.name)  # fmt: skip
        weights = (0.0,)
    if options.get("grow", 0.0) > 0:
        centres = (0.0,)
    grid = [(w, c) for w in weights for c in centres]
    report = evaluate_moments(model, manifest_path, split, settings=grid, **options)
    figures = {_setting(w, c): report.figures[_setting(w, c)]["FMN, within the video"]["R@1 IoU0.5"] for w, c in grid}
    weight, centre = max(grid, key=lambda wc: (figures[_setting(*wc)], -wc[1], -wc[0]))
    digest = model.checkpoint_hash() if model.path is not None else ""
    return MomentPrior(digest, float(weight), split, figures, float(centre))


def _setting(weight: float, centre: float) -> str:
    return f"weight {weight:g}, centre {centre:g}"


def _figures(
    videos: Sequence[_Video],
    scores: np.ndarray,
    labels: Sequence[str],
    grow: float,
    overlap: float,
    centre: float,
) -> dict[str, dict[str, float]]:
    grounding_preds, grounding_truths = [], []
    corpus_preds, corpus_truths = [], []
    chance_grounding: dict[str, list[float]] = defaultdict(list)
    chance_corpus: dict[str, list[float]] = defaultdict(list)
    for q, label in enumerate(labels):
        everywhere: list[tuple[float, VideoSpan]] = []
        truths = [t for v in videos for t in v.truths.get(label, [])]
        for v in videos:
            moments = merge_windows(v.spans, scores[v.rows, q].tolist(), grow, overlap, top=max(KS), centre=centre)
            everywhere += [(m.score, (v.path, m.start, m.end)) for m in moments]
            if label in v.truths:
                grounding_preds.append([(v.path, m.start, m.end) for m in moments])
                grounding_truths.append(v.truths[label])
                for k in KS:
                    for t in IOUS:
                        right = _right_windows(v, v.truths[label], t)
                        chance_grounding[f"R@{k} IoU{t}"].append(chance_recall(len(v.spans), right, k))
        everywhere.sort(key=lambda x: -x[0])
        corpus_preds.append([span for _, span in everywhere[: max(KS)]])
        corpus_truths.append(truths)
        n_all = sum(len(v.spans) for v in videos)
        for k in KS:
            for t in IOUS:
                right = sum(_right_windows(v, v.truths.get(label, []), t) for v in videos)
                chance_corpus[f"R@{k} IoU{t}"].append(chance_recall(n_all, right, k))
    metrics = [(k, t) for k in KS for t in IOUS]
    return {
        "FMN, within the video": {
            f"R@{k} IoU{t}": recall_at_iou(grounding_preds, grounding_truths, k, t) for k, t in metrics
        },
        "every window equally likely, within": {m: float(np.mean(v)) for m, v in chance_grounding.items()},
        "FMN, across the library": {
            f"R@{k} IoU{t}": recall_at_iou(corpus_preds, corpus_truths, k, t) for k, t in metrics
        },
        "every window equally likely, across": {m: float(np.mean(v)) for m, v in chance_corpus.items()},
    }


def _draw_first_strip(
    path: Path, videos: Sequence[_Video], scores: np.ndarray, rows: Sequence[ManifestRow], centre: float
) -> None:
    video = videos[0]
    q = next(
        (j for j, r in enumerate(rows) if r.label in video.truths and r.lang in ("en", "")),
        next((j for j, r in enumerate(rows) if r.label in video.truths), None),
    )
    if q is None:
        return
    label = rows[q].label
    draw_strip(path, video.spans, scores[video.rows, q], video.truths[label], rows[q].text or label, centre)


def draw_strip(
    path: Path,
    spans: Sequence[tuple[float, float]],
    scores: np.ndarray,
    truths: Sequence[VideoSpan],
    query: str,
    centre: float = 0.0,
) -> None:
    """A query's window scores over one video (a point per window, at its centre) against the
    annotated segments (green) and the best moment (blue), as a PNG."""
    import cv2

    from fmn_core.eval.plot import _text

    w, h, left, right, top, bottom = 960, 240, 50, 20, 40, 36
    img = np.full((h, w, 3), 255, np.uint8)
    end = max(e for _, e in spans)
    lo, hi = float(np.min(scores)), float(np.max(scores))

    def x(t: float) -> int:
        return int(left + (w - left - right) * t / end)

    def y(v: float) -> int:
        return int(h - bottom - (h - top - bottom) * (v - lo) / max(hi - lo, 1e-9))

    for _, s, e in truths:
        cv2.rectangle(img, (x(s), top), (x(e), h - bottom), (200, 235, 200), -1)
    best = merge_windows(spans, scores.tolist(), top=1, centre=centre)[0]
    cv2.rectangle(img, (x(best.start), top - 8), (x(best.end), top - 3), (213, 123, 58), -1)
    points = np.array([(x((s + e) / 2), y(v)) for (s, e), v in zip(spans, scores, strict=True)], np.int32)
    cv2.polylines(img, [points], False, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.line(img, (left, h - bottom), (w - right, h - bottom), (120, 120, 120), 1)
    for t in range(0, int(end) + 1, 10):
        cv2.line(img, (x(t), h - bottom), (x(t), h - bottom + 4), (120, 120, 120), 1)
        _text(img, f"{t // 60}:{t % 60:02d}", (x(t) - 12, h - bottom + 18), 0.4)
    _text(img, f'query: "{query}"  (green: annotated steps of its class; blue: the best moment; line: window scores)',
          (left, 18), 0.45)  # fmt: skip
    cv2.imwrite(str(path), img)


def _right_windows(video: _Video, truths: Sequence[VideoSpan], iou: float) -> int:
    return sum(any(temporal_iou(span, t[1:]) >= iou for t in truths) for span in video.spans)


__all__ = ["IOUS", "KS", "MomentReport", "choose_moment_prior", "evaluate_moments"]
