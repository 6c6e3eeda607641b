"""The rows the index stores and gives back: items, windows of long videos, bank changes, vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StoredItem:
    """One row of the index without its blobs (what incremental indexing compares against)."""

    id: str
    path: str  # as stored: relative to the library (POSIX) or absolute
    modality: str  # 'video' or 'speech'
    size: int  # bytes, when indexed
    mtime_ns: int  # modification time, when indexed
    hash: str  # blake2b hex of the content, when indexed
    duration: float  # seconds
    label: str | None
    text: str | None
    status: str  # 'ok', 'failed' or 'stale'
    reason: str | None  # why it failed
    windows: int = 0  # a long video: its number of windows (0: one clip)


@dataclass(frozen=True)
class WindowFeatures:
    """A stretch of a long video's windows: where they are, their features and their few thumbnails."""

    first: int  # position of the stretch's first window in the video
    spans: np.ndarray  # (n, 2) float seconds, in time order
    raw: np.ndarray  # (n, Dv) float32
    vec: np.ndarray  # (n, E) float32
    previews: dict[int, bytes]  # window position in the video -> JPEG thumbnail (some windows only)
    background: np.ndarray | None = None  # (n,) P(background) per window; None: the model has no such class


@dataclass(frozen=True)
class ItemRecord:
    """An item to write: the row plus its preview and features (None for a failed item)."""

    row: StoredItem
    preview: bytes | None
    raw: np.ndarray | None  # (D,) float32; a long video: the mean of its windows'
    vec: np.ndarray | None  # (E,) float32


@dataclass(frozen=True)
class LogRow:
    """One logged bank change."""

    seq: int
    action: int
    slot: int
    kind: str
    video_id: str
    speech_id: str
    time: float
    query_source: str
    m2: float | None
    step: int


@dataclass(frozen=True)
class Vectors:
    """The searchable rows of one modality, in id order: an ok clip is one row, a long video one
    row per window (its windows together, in time order)."""

    ids: list[str]  # the item of each row
    raw: np.ndarray  # (N, D) float32
    vec: np.ndarray  # (N, E) float32
    spans: np.ndarray | None = None  # (N, 2) window (start, end) in seconds; NaN for a whole clip; None: no windows
    background: np.ndarray | None = None  # (N,) a window's P(background); NaN for a clip or unknown


__all__ = ["ItemRecord", "LogRow", "StoredItem", "Vectors", "WindowFeatures"]
