"""Manifests from segment-annotated cooking datasets: MPII Cooking 2 and TACoS.

Both datasets are recordings of whole dishes, minutes long, annotated as segments. An importer
turns each annotated segment into a manifest video row that *is* that stretch of its file
(``start`` / ``end`` columns, DESIGN §3), so training, evaluation and the baselines read the
segment without any file being cut.

- **MPII Cooking 2**: the official ground-truth CSV, one segment per line, no header:
  ``subject, file_name, start_frame, end_frame, activity_category_id, activity_category_name``,
  frames counted from 1, the end frame included. The activity is the row's label.
- **TACoS**: the segment-and-sentence annotations in the JSON layout the moment-retrieval field
  distributes (``{"s13-d21.avi": {"num_frames": N, "fps": 29.4, "timestamps": [[s, e], ...],
  "sentences": [...]}}``, frames from 0). Every sentence describes one segment, so each segment is
  a class of its own (label ``<video>#<n>``) and the sentence is kept as the row's text.

Neither dataset has speech. The rows written here are video only; a speech row of the same label
pairs with each: record narrations of the activities or sentences, or synthesize them, as the
paper's extension did (`fmn corpus` has the voices).

:func:`background_rows` adds what the annotations leave out: the stretches of each annotated
file where no segment is, as ``background`` rows, negatives for training (DESIGN §3).

Nothing is written when an annotation is unusable (a video that is not there, a range that is
empty or past the end of its file): every problem is listed with its line, as for a manifest.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path

from fmn_core.errors import FmnError
from fmn_core.manifest import BACKGROUND, VIDEO_EXTENSIONS, Manifest, ManifestError, ManifestIssue, ManifestRow

Lookup = Callable[[str], "tuple[Path, float, float] | None"]  # video name -> (file, fps, seconds)
Parsed = tuple[list[ManifestRow], list[ManifestIssue]]

MPII_FPS = 29.4  # MPII Cooking 2's recording rate, for videos whose container does not say

SPEECH_ADVICE = (
    "these rows are video only: add speech rows with the same labels (recorded narrations, or "
    "sentences synthesized with the corpus voices) to train or search by voice"
)


def _find_video(videos: Path, name: str) -> Path | None:
    """The file for an annotation's video name, with or without its extension."""
    direct = videos / name
    if direct.is_file():
        return direct
    stem = Path(name).stem if Path(name).suffix.lower() in VIDEO_EXTENSIONS else name
    for ext in VIDEO_EXTENSIONS:
        for candidate in (videos / f"{stem}{ext}", videos / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def _probe(path: Path) -> tuple[float, float]:
    """``(fps, duration in seconds)`` from the container; zeros when it does not say."""
    from fmn_core.media.errors import MediaError
    from fmn_core.media.video_io import probe_video

    try:
        info = probe_video(path)
    except MediaError:
        return 0.0, 0.0
    return info.fps, info.duration_s


def _segment_row(
    row_id: str,
    path: Path,
    label: str,
    frames: tuple[int, int],
    fps: float,
    duration: float,
    line: int,
    issues: list[ManifestIssue],
    text: str = "",
) -> ManifestRow | None:
    """A video row for frames ``[first, last)`` at ``fps``, or None with the problem added to ``issues``."""
    first, last = frames
    if first < 0 or last <= first:
        issues.append(ManifestIssue(line, f"{row_id}: empty or negative frame range {first}–{last}"))
        return None
    start, end = first / fps, last / fps
    if duration and (start >= duration or end > duration + 1 / fps):
        issues.append(
            ManifestIssue(
                line,
                f"{row_id}: frames {first}–{last} ({start:.2f}–{end:.2f} s) are past the end "
                f"of {path.name} ({duration:.2f} s)",
            )  # fmt: skip
        )
        return None
    return ManifestRow(row_id, "video", str(path), label, text=text, start=f"{start:.3f}", end=f"{end:.3f}")


def _with_videos(source: Path, videos: Path, parse: Callable[[Lookup], Parsed]) -> list[ManifestRow]:
    """Run ``parse`` with a cached video lookup; raise ManifestError listing every issue."""
    if not videos.is_dir():
        raise FmnError(f"{videos}: no such folder of videos")
    cache: dict[str, tuple[Path, float, float] | None] = {}

    def lookup(name: str) -> tuple[Path, float, float] | None:
        if name not in cache:
            path = _find_video(videos, name)
            cache[name] = (path, *_probe(path)) if path is not None else None
        return cache[name]

    rows, issues = parse(lookup)
    if issues:
        raise ManifestError(source, sorted(issues, key=lambda i: i.line))
    if not rows:
        raise ManifestError(source, [ManifestIssue(0, "no annotations")])
    return rows


def from_mpii_cooking2(csv_path: str | os.PathLike[str], videos: str | os.PathLike[str]) -> list[ManifestRow]:
    """Video rows for every segment of MPII Cooking 2's ground-truth CSV.

    Raises:
        ManifestError: unreadable lines, missing videos or bad ranges, each with its line.
        FmnError: the folder of videos does not exist.
    """
    source = Path(csv_path)
    try:
        lines = source.read_text(encoding="utf-8-sig").splitlines()
    except OSError as e:
        raise ManifestError(source, [ManifestIssue(0, f"cannot read it ({e.strerror or e})")]) from None

    def parse(lookup: Lookup) -> Parsed:
        rows: list[ManifestRow] = []
        issues: list[ManifestIssue] = []
        for line, cells in enumerate(csv.reader(lines), start=1):
            if not cells or not "".join(cells).strip():
                continue
            if len(cells) < 6:
                expected = "subject, file_name, start_frame, end_frame, activity_category_id, activity_category_name"
                issues.append(ManifestIssue(line, f"{len(cells)} cells; expected {expected}"))
                continue
            subject, name, first, last, _category, activity = (c.strip() for c in cells[:6])
            try:
                frames = (int(first) - 1, int(last))  # 1-based, end included -> 0-based, end excluded
            except ValueError:
                issues.append(ManifestIssue(line, f"frames {first!r}, {last!r} are not whole numbers"))
                continue
            found = lookup(name)
            if found is None:
                issues.append(ManifestIssue(line, f"no video {name!r} (subject {subject}) in the videos folder"))
                continue
            path, fps, duration = found
            row_id = f"{Path(name).stem}_{frames[0]}_{frames[1]}"
            row = _segment_row(row_id, path, activity, frames, fps or MPII_FPS, duration, line, issues)
            if row is not None:
                rows.append(row)
        return rows, issues

    return _with_videos(source, Path(videos), parse)


def from_tacos(json_path: str | os.PathLike[str], videos: str | os.PathLike[str]) -> list[ManifestRow]:
    """Video rows for every annotated segment of a TACoS annotation file (one class per sentence).

    Issues are numbered by the video's position in the file (its "line": JSON has none).

    Raises:
        ManifestError: not JSON, missing videos or bad ranges.
        FmnError: the folder of videos does not exist.
    """
    source = Path(json_path)
    try:
        annotations = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ManifestError(source, [ManifestIssue(0, f"not a TACoS annotation file ({e})")]) from None
    if not isinstance(annotations, dict):
        raise ManifestError(source, [ManifestIssue(0, "expected an object of videos")])

    def parse(lookup: Lookup) -> Parsed:
        rows: list[ManifestRow] = []
        issues: list[ManifestIssue] = []
        for n, (name, video) in enumerate(annotations.items(), start=1):
            try:
                timestamps, sentences = video["timestamps"], video["sentences"]
                fps_given = float(video.get("fps", 0.0))
            except (TypeError, KeyError, ValueError) as e:
                issues.append(ManifestIssue(n, f"{name}: no timestamps and sentences ({e})"))
                continue
            if len(timestamps) != len(sentences):
                issues.append(ManifestIssue(n, f"{name}: {len(timestamps)} timestamps for {len(sentences)} sentences"))
                continue
            found = lookup(name)
            if found is None:
                issues.append(ManifestIssue(n, f"no video {name!r} in the videos folder"))
                continue
            path, fps_probed, duration = found
            fps = fps_given or fps_probed or MPII_FPS  # the file's own rate only when the annotation has none
            stem = Path(name).stem
            for i, (span, sentence) in enumerate(zip(timestamps, sentences, strict=True)):
                try:
                    frames = (int(span[0]), int(span[1]))
                except (TypeError, ValueError, IndexError):
                    issues.append(ManifestIssue(n, f"{name} #{i}: timestamp {span!r} is not [start, end] in frames"))
                    continue
                label = f"{stem}#{i}"
                row = _segment_row(label, path, label, frames, fps, duration, n, issues, text=str(sentence).strip())
                if row is not None:
                    rows.append(row)
        return rows, issues

    return _with_videos(source, Path(videos), parse)


__all__ = ["MPII_FPS", "SPEECH_ADVICE", "from_mpii_cooking2", "from_tacos"]


def background_rows(manifest: Manifest, min_seconds: float = 2.0, piece: float = 5.0) -> list[ManifestRow]:
    """Rows for the unannotated stretches of every file that has segment rows, labelled ``background``.

    A stretch shorter than ``min_seconds`` is left out (a step's ragged edge is not "nothing
    happens"); a longer one is cut into pieces of at most ``piece`` seconds (about a search
    window, so a negative looks like what search scores). A piece takes its file's split.

    Raises:
        FmnError: a file with segments whose length cannot be read.
    """
    from fmn_core.media.errors import MediaError
    from fmn_core.media.video_io import probe_video

    by_file: dict[str, list[ManifestRow]] = {}
    for r in manifest.of("video"):
        if r.segment is not None and r.label != BACKGROUND:
            by_file.setdefault(r.path, []).append(r)
    rows = []
    for path, segments in sorted(by_file.items()):
        try:
            duration = probe_video(manifest.resolve(segments[0])).duration_s
        except MediaError as e:
            raise FmnError(f"{path}: cannot read its length ({e})") from e
        covered = sorted((s.segment[0], s.segment[1] if s.segment[1] is not None else duration) for s in segments)  # type: ignore[index]
        free, at = [], 0.0
        for start, end in [*covered, (duration, duration)]:
            if start - at >= min_seconds:
                free.append((at, start))
            at = max(at, end)
        n = 0
        for start, end in free:
            pieces = max(1, round((end - start) / piece))
            step = (end - start) / pieces
            for k in range(pieces):
                rows.append(ManifestRow(
                    f"{path}#background{n:03d}", "video", path, BACKGROUND, segments[0].split,
                    start=f"{start + k * step:.3f}", end=f"{start + (k + 1) * step:.3f}",
                ))  # fmt: skip
                n += 1
    return rows
