"""What an indexing run has to do, and its report of what it did.

Indexing is incremental: a file whose size and modification time are unchanged is skipped; a
changed file whose content hash is unchanged only has its times updated; anything else is
decoded and encoded again; items whose files are gone are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmn_core.index.library import (
    LibraryEntry,
    file_hash,
    stored_path,
)
from fmn_core.index.records import ItemRecord, StoredItem

if TYPE_CHECKING:
    from fmn_core.features.video import VideoFrontEndConfig


@dataclass
class IndexReport:
    """What an indexing run did."""

    total: int = 0  # items in the library
    added: int = 0  # new items encoded
    updated: int = 0  # changed items encoded again (or features of another model)
    unchanged: int = 0  # items skipped
    removed: int = 0  # items dropped (file gone)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, reason) of items this run could not use
    gaps: list[tuple[str, str]] = field(default_factory=list)  # (id, what) of videos indexed around unreadable frames
    pending: int = 0  # items still waiting to be encoded (a cancelled run)
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def encoded(self) -> int:
        """Files decoded and encoded by this run (failed ones included)."""
        return self.added + self.updated

    def summary(self) -> str:
        """One line for a status bar or a terminal."""
        parts = [
            f"{self.total} items",
            f"{self.added} new",
            f"{self.updated} re-encoded",
            f"{self.unchanged} unchanged",
            f"{self.removed} removed",
            f"{len(self.failed)} failed",
        ]
        if self.gaps:
            parts.append(f"{len(self.gaps)} with unreadable stretches")
        if self.cancelled:
            parts.append(f"cancelled with {self.pending} to go")
        return ", ".join(parts) + f" ({self.seconds:.1f} s)"


@dataclass(frozen=True)
class Work:
    entry: LibraryEntry
    size: int
    mtime_ns: int
    is_new: bool


def plan_run(
    library: Path,
    rows: dict[str, StoredItem],
    entries: Sequence[LibraryEntry],
    report: IndexReport,
    video_frontend: VideoFrontEndConfig,
) -> tuple[list[Work], list[StoredItem], list[ItemRecord]]:
    """Compare the library with the index's ``rows``: what to encode, what only to update, what is missing."""
    work: list[Work] = []
    touched: list[StoredItem] = []
    missing: list[ItemRecord] = []
    for e in entries:
        row = rows.get(e.id)
        path = stored_path(library, e.path)
        try:
            st = e.path.stat()
        except OSError as exc:
            reason = f"{e.path}: {'no such file' if isinstance(exc, FileNotFoundError) else exc.strerror or exc}"
            missing.append(ItemRecord(_failed_row(e, path, 0, 0, "", reason), None, None, None))
            continue
        size, mtime = st.st_size, st.st_mtime_ns
        # (a long video indexed as one clip, by a version without windows, is encoded again)
        fresh = (
            row is not None
            and row.status != "stale"
            and row.modality == e.modality
            and not (row.status == "ok" and row.windows == 0 and e.modality == "video"
                     and video_frontend.windowed(row.duration))
        )  # fmt: skip
        meta_same = row is not None and (row.path, row.label, row.text) == (path, e.label, e.text)
        if fresh and row is not None and row.size == size and row.mtime_ns == mtime:
            if not meta_same:
                touched.append(_with(row, path=path, label=e.label, text=e.text))
            report.unchanged += 1
            continue
        if fresh and row is not None and row.size == size and _same_hash(e.path, row.hash):
            touched.append(_with(row, path=path, mtime_ns=mtime, label=e.label, text=e.text))
            report.unchanged += 1
            continue
        work.append(Work(e, size, mtime, is_new=row is None))
    return work, touched, missing


def _same_hash(path: Path, digest: str) -> bool:
    try:
        return file_hash(path) == digest
    except OSError:
        return False


def _with(row: StoredItem, **changes: Any) -> StoredItem:
    return StoredItem(**{**row.__dict__, **changes})


def _failed_row(e: LibraryEntry, path: str, size: int, mtime: int, digest: str, reason: str) -> StoredItem:
    return StoredItem(e.id, path, e.modality, size, mtime, digest, 0.0, e.label, e.text, "failed", reason)


__all__ = ["IndexReport", "Work", "plan_run"]
