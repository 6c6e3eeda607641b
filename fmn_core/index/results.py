"""What a search works with and gives back: items, queries, ranked hits, and the banks' slots and changes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fmn_core.index.moments import Moment, merge_windows

MODALITIES = ("video", "speech")


@dataclass(frozen=True)
class Item:
    """One media file of the library."""

    id: str
    path: Path  # absolute
    modality: str  # 'video' or 'speech'
    label: str | None  # from the manifest, or the name of the file's folder
    text: str | None  # transcript, when the manifest has one
    duration: float  # seconds (0 when unknown)
    status: str  # 'ok' (searchable) or 'failed'
    reason: str | None  # why it failed


@dataclass(frozen=True)
class Hit:
    """One ranked item of a search."""

    item: Item
    rank: int  # 1 for the best match
    s: float  # final score S in [0, 1]
    s1: float  # fusion score S1 in [0, 1]
    memory: float  # Max, the memory banks' agreement (0 with an empty memory)
    slot: int  # the slot that gave Max; -1: empty memory
    confidence: float | None = None  # calibrated probability that the hit is right; None: the model has no calibration
    start: float | None = None  # a moment of a long video: where it starts, in seconds; None: the whole file
    end: float | None = None  # ... and where it ends

    @property
    def span(self) -> tuple[float, float] | None:
        """``(start, end)`` of a moment; None for a whole file."""
        return None if self.start is None or self.end is None else (self.start, self.end)

    @property
    def key(self) -> str:
        """What the hit shows: its item's id, or the id and the moment (a video may give several hits)."""
        return self.item.id if self.span is None else f"{self.item.id}@{self.span[0]:g}-{self.span[1]:g}"


@dataclass(frozen=True)
class Query:
    """What to search with: raw features of one modality."""

    modality: str  # 'speech' or 'video', the query's own modality
    raw: torch.Tensor  # raw features (Da,) or (Dv,)
    source: str  # file path, 'recording' or 'item:<id>'
    item_id: str | None = None  # the library item the query is, if any
    notes: tuple[str, ...] = ()  # what the user should know about how the query was read (e.g. it was cut)


@dataclass(frozen=True)
class SearchResult:
    """The ranking of one query."""

    query: Query
    hits: list[Hit]
    memory_vector: np.ndarray  # (X,) the query's cosine with each slot of its own bank (0 unused)
    seconds: float  # time to rank
    threshold: float | None = None  # the best hit's confidence below which nothing matches well

    @property
    def no_good_match(self) -> bool:
        """Whether even the best hit is too unlikely to be right to show as a match (False without a calibration)."""
        best = self.hits[0].confidence if self.hits else None
        return self.threshold is not None and (best is None or best < self.threshold)


@dataclass(frozen=True)
class BankUpdate:
    """One change to the memory banks (slot j of both banks holds one remembered pair)."""

    slot: int
    kind: str  # 'append' (free slot), 'average' (into a similar slot) or 'replace' (full bank)
    source_ids: tuple[str, str]  # (video, speech): item ids, or the query's source when it is no item
    time: float  # Unix time
    m2: float | None  # the pair's best mean cosine with the banks before the change; None when empty


@dataclass(frozen=True)
class SlotInfo:
    """What one slot of a bank holds."""

    slot: int
    used: bool
    hits: int  # samples the slot has absorbed
    last_update: float | None  # Unix time of its last change in this library; None: from the model
    source_ids: list[str]  # items whose features went into the slot, video and speech


@dataclass(frozen=True)
class WindowScores:
    """A query's scores along one long video (the app's score strip)."""

    spans: np.ndarray  # (n, 2) window (start, end) in seconds, in time order
    scores: np.ndarray  # (n,) what search ranks windows by (log S and the background prior; higher is better)
    confidence: np.ndarray | None  # (n,) calibrated probabilities; None without a calibration
    centre: float = 0.0  # how moments are centred on their runs (the model's; index.moments.merge_windows)

    def moments(self) -> list[Moment]:
        """The moments search would make of them, best first."""
        return merge_windows([tuple(x) for x in self.spans.tolist()], self.scores.tolist(), centre=self.centre)


__all__ = ["MODALITIES", "BankUpdate", "Hit", "Item", "Query", "SearchResult", "SlotInfo", "WindowScores"]
