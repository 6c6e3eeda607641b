"""The manifest: the CSV contract every command reads (DESIGN.md §3).

Columns: ``id`` (unique), ``modality`` (``video`` | ``speech``), ``path`` (relative to the
manifest's folder, or absolute), ``label`` (class key); optional ``split``
(``train`` | ``val`` | ``test``), ``text``, ``voice``, ``lang``. Extra columns are kept as they
are. Relevance is label equality across modalities.
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from fmn_core.errors import FmnError

REQUIRED_COLUMNS = ("id", "modality", "path", "label")
OPTIONAL_COLUMNS = ("split", "text", "voice", "lang", "start", "end")
MODALITIES = ("video", "speech")
SPLITS = ("train", "val", "test")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
AUDIO_EXTENSIONS = (
    ".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".aiff", ".aif", ".opus", ".amr", ".wma", ".mka",
)  # fmt: skip


Segment = tuple[float, float | None]  # (start, end) seconds of a row's file; end None: to its end


# A video row with this label is a stretch where no class of the vocabulary happens (the idle time
# between a recipe's steps). No speech ever matches it: training shows it to every spoken query
# as a negative (a long video's windows hold much of it); `fmn manifest background` writes such rows.
BACKGROUND = "background"


@dataclass
class ManifestRow:
    """One media item of a manifest."""

    id: str  # unique within the manifest
    modality: str  # 'video' or 'speech'
    path: str  # as written in the file: relative to the manifest's folder, or absolute
    label: str  # class key; equal labels across modalities are relevant to each other
    split: str = ""  # 'train', 'val', 'test' or empty
    text: str = ""  # transcript of a speech item
    voice: str = ""  # who or what spoke it (held-out voices make an honest test split)
    lang: str = ""  # language code of a speech item, e.g. 'en' or 'zh'
    start: str = ""  # seconds into the file where the item begins (empty: its start)
    end: str = ""  # seconds into the file where it ends (empty: the file's end)
    extra: dict[str, str] = field(default_factory=dict)  # any other columns, kept verbatim

    @property
    def segment(self) -> Segment | None:
        """``(start, end)`` in seconds when the row is a stretch of its file (end None: to the file's end).

        Raises:
            ValueError: a start or end that is not a number (``read_manifest`` reports these).
        """
        if not self.start and not self.end:
            return None
        return (float(self.start) if self.start else 0.0, float(self.end) if self.end else None)


_ROW_FIELDS = tuple(f.name for f in fields(ManifestRow) if f.name != "extra")


@dataclass
class Manifest:
    """A list of rows plus the folder their relative paths start from."""

    rows: list[ManifestRow]
    root: Path  # the manifest's folder

    def resolve(self, row: ManifestRow) -> Path:
        """Absolute path of a row's media file."""
        path = Path(row.path)
        return path if path.is_absolute() else self.root / path

    def of(self, modality: str, split: str | None = None) -> list[ManifestRow]:
        """Rows of one modality, optionally of one split only."""
        return [r for r in self.rows if r.modality == modality and (split is None or r.split == split)]

    @property
    def labels(self) -> list[str]:
        """Sorted distinct labels."""
        return sorted({r.label for r in self.rows})


@dataclass(frozen=True)
class ManifestIssue:
    """One problem found in a manifest, with the 1-based line of the file it is on."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ManifestError(FmnError, ValueError):
    """A manifest that cannot be used; ``issues`` lists every problem, not only the first."""

    def __init__(self, path: Path | str, issues: Sequence[ManifestIssue]):
        self.path = Path(path)
        self.issues = list(issues)
        shown = "\n".join(f"  {i}" for i in self.issues[:50])
        more = f"\n  ... and {len(self.issues) - 50} more" if len(self.issues) > 50 else ""
        super().__init__(f"{self.path}: {len(self.issues)} problem(s)\n{shown}{more}")


def _parse(path: Path) -> tuple[list[tuple[int, ManifestRow]], list[ManifestIssue]]:
    """Parse a manifest's CSV; returns rows with their line numbers and the structural issues."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ManifestError(path, [ManifestIssue(0, "file not found")]) from None
    except UnicodeDecodeError as e:
        raise ManifestError(path, [ManifestIssue(0, f"not UTF-8 text ({e.reason})")]) from None
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ManifestError(path, [ManifestIssue(1, f"missing column(s) {', '.join(missing)}; header is {header}")])
    rows, issues = [], []
    for record in reader:
        line = reader.line_num
        if None in record:  # more cells than header columns
            issues.append(ManifestIssue(line, f"{len(header) + len(record[None])} cells for {len(header)} columns"))
            continue
        values = {k: (v or "").strip() for k, v in record.items()}
        known = {k: values.get(k, "") for k in _ROW_FIELDS}
        extra = {k: v for k, v in values.items() if k not in _ROW_FIELDS and v}  # empty cells: not set
        rows.append((line, ManifestRow(**known, extra=extra)))
    return rows, issues


def _row_issues(row: ManifestRow, line: int, seen: dict[str, int]) -> list[ManifestIssue]:
    issues = []
    for column in REQUIRED_COLUMNS:
        if not getattr(row, column):
            issues.append(ManifestIssue(line, f"empty {column}"))
    if row.id and row.id in seen:
        issues.append(ManifestIssue(line, f"duplicate id {row.id!r} (first on line {seen[row.id]})"))
    seen.setdefault(row.id, line)
    if row.modality and row.modality not in MODALITIES:
        issues.append(ManifestIssue(line, f"unknown modality {row.modality!r} (valid: {', '.join(MODALITIES)})"))
    if row.split and row.split not in SPLITS:
        issues.append(ManifestIssue(line, f"unknown split {row.split!r} (valid: {', '.join(SPLITS)})"))
    issues.extend(ManifestIssue(line, m) for m in _segment_issues(row))
    return issues


def _segment_issues(row: ManifestRow) -> list[str]:
    """What is wrong with a row's start and end (numbers, not negative, end after start)."""
    numbers: dict[str, float] = {}
    problems = []
    for column in ("start", "end"):
        text = getattr(row, column)
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            problems.append(f"{column} {text!r} is not a number of seconds")
            continue
        if not math.isfinite(value) or value < 0:
            problems.append(f"{column} {text!r} must be a finite number of seconds, 0 or more")
        else:
            numbers[column] = value
    if "start" in numbers and "end" in numbers and numbers["end"] <= numbers["start"]:
        problems.append(f"end {row.end} s is not after start {row.start} s")
    return problems


def _media_issue(manifest: Manifest, row: ManifestRow, line: int) -> ManifestIssue | None:
    """Checks that a row's file exists and decodes; imports media readers lazily (they are heavy)."""
    from fmn_core.media.errors import MediaError

    path = manifest.resolve(row)
    if not path.is_file():
        return ManifestIssue(line, f"missing file {row.path}")
    segment = row.segment if not _segment_issues(row) else None  # a bad range is reported by _row_issues
    try:
        if row.modality == "video":
            from fmn_core.media.video_io import probe_video, read_frames

            read_frames(path, max_frames=1)
            duration = probe_video(path).duration_s if segment else 0.0
        elif row.modality == "speech":
            from fmn_core.media.audio_io import SAMPLE_RATE, load_audio

            duration = len(load_audio(path)) / SAMPLE_RATE
    except MediaError as e:
        return ManifestIssue(line, f"unreadable {row.modality} {row.path}: {e}")
    if segment is not None and duration > 0:
        start, end = segment
        # Half a frame of slack: annotations in frames, converted to seconds, land a hair past the end.
        if start >= duration or (end is not None and end > duration + 0.05):
            return ManifestIssue(
                line,
                f"segment {start:g}–{end if end is not None else 'end'} s is past the end of {row.path} "
                f"({duration:.2f} s)",
            )
    return None


def read_manifest(path: str | os.PathLike[str], check_media: bool = False) -> Manifest:
    """Read and validate a manifest.

    Args:
        path: the CSV file.
        check_media: also open every media file (slow for large manifests).

    Raises:
        ManifestError: listing every bad row with its line number.
    """
    path = Path(path)
    parsed, issues = _parse(path)
    manifest = Manifest(rows=[row for _, row in parsed], root=path.resolve().parent)
    seen: dict[str, int] = {}
    for line, row in parsed:
        issues.extend(_row_issues(row, line, seen))
        if check_media and row.modality in MODALITIES and row.path:
            issue = _media_issue(manifest, row, line)
            if issue:
                issues.append(issue)
    if issues:
        raise ManifestError(path, sorted(issues, key=lambda i: i.line))
    return manifest


def write_manifest(manifest: Manifest | Iterable[ManifestRow], path: Path | str) -> Path:
    """Write a manifest atomically: a crash or a full disk never leaves a half-written file.

    Optional columns are written only when some row uses them; extra columns follow.
    """
    path = Path(path)
    rows = list(manifest.rows if isinstance(manifest, Manifest) else manifest)
    optional = [c for c in OPTIONAL_COLUMNS if any(getattr(r, c) for r in rows)]
    extra = list(dict.fromkeys(k for r in rows for k in r.extra))
    columns = [*REQUIRED_COLUMNS, *optional, *extra]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({**{c: getattr(r, c) for c in (*REQUIRED_COLUMNS, *optional)}, **r.extra})
    atomic_write_text(path, buffer.getvalue())
    return path


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to a temporary file beside ``path`` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def manifest_from_folders(root: Path | str) -> Manifest:
    """Build a manifest from a folder laid out as ``ROOT/<label>/<files>``.

    Video and audio files may sit side by side; their modality comes from the extension. Ids
    are the files' paths relative to ROOT, so they are unique and stable. Files of other
    types are ignored; a root with no usable file is an error.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise ManifestError(root, [ManifestIssue(0, "not a folder")])
    rows = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for file in sorted(p for p in label_dir.rglob("*") if p.is_file()):
            suffix = file.suffix.lower()
            modality = "video" if suffix in VIDEO_EXTENSIONS else "speech" if suffix in AUDIO_EXTENSIONS else None
            if modality:
                rel = file.relative_to(root).as_posix()
                rows.append(ManifestRow(id=rel, modality=modality, path=rel, label=label_dir.name))
    if not rows:
        raise ManifestError(root, [ManifestIssue(0, "no video or audio files found in ROOT/<label>/ folders")])
    return Manifest(rows=rows, root=root)
