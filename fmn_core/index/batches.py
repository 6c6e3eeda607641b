"""Encoding and committing what the decoding workers send back.

Files are encoded a batch at a time per modality and committed together, so a run that is
cancelled, crashes or is killed keeps every finished file. A long video's stretches are encoded
as they arrive (their frames are the big part) and their windows staged in the store; its item
row is written, and its windows with it, after the last stretch, so a search never sees half a
video and memory does not grow with the video's length.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from fmn_core.index.decoding import (
    Decoded,
)
from fmn_core.index.library import (
    stored_path,
)
from fmn_core.index.plan import IndexReport, Work
from fmn_core.index.records import ItemRecord, StoredItem, WindowFeatures

if TYPE_CHECKING:
    from fmn_core.inference import FMNModel


log = logging.getLogger(__name__)


class ItemSink(Protocol):
    """Where encoded files go: the library's :class:`~fmn_core.index.store.Store`, or a Ray
    worker's shards (``index.shards``), which a Ray run merges into the store."""

    library: Path

    def write_items(self, records: Sequence[ItemRecord]) -> None:
        """Commit finished items; a long video takes its staged windows with it."""

    def stage_windows(self, item_id: str, stretch: WindowFeatures) -> None:
        """Keep a stretch of a long video's windows until its item is written."""

    def drop_staged(self, item_ids: Iterable[str]) -> None:
        """Forget the staged windows of videos that will not be finished."""


def tally(report: IndexReport, work: dict[str, Work], records: Sequence[ItemRecord]) -> None:
    """Count committed records in ``report``: added or re-encoded, and the failed ones with why."""
    for r in records:
        if work[r.row.id].is_new:
            report.added += 1
        else:
            report.updated += 1
        if r.row.status == "failed":
            report.failed.append((r.row.id, r.row.reason or ""))


@dataclass
class _LongVideo:
    """What is kept of a long video between its stretches: sums and one thumbnail, never its
    windows (those are staged in the store as they come, so memory does not grow with length)."""

    hash: str = ""
    duration: float = 0.0
    windows: int = 0
    raw_sum: np.ndarray | None = None  # (Dv,) float64 sum of its windows' raw features
    preview: tuple[int, bytes] | None = None  # (position, JPEG): the thumbnail nearest the middle so far
    missing: int = 0
    reason: str | None = None  # set when a stretch failed: the video fails as a whole


class Batch:
    """Decoded files waiting to be encoded, per modality; :meth:`flush` encodes and commits them."""

    encode_windows = 32  # windows encoded together (normalised float clips are 4x the uint8 ones)

    def __init__(self, store: ItemSink, model: FMNModel, work: dict[str, Work], report: IndexReport) -> None:
        self.store = store
        self.model = model
        self.work = work
        self.report = report
        self.items: dict[str, list[Decoded]] = {"video": [], "speech": []}
        self.failed: list[Decoded] = []
        self.long: dict[str, _LongVideo] = {}  # long videos started, not finished
        self.finished: list[ItemRecord] = []  # long videos complete, waiting for the commit

    def add(self, d: Decoded) -> None:
        if d.spans is not None:
            self._add_stretch(d)
        elif d.reason is not None:
            self.failed.append(d)
        else:
            self.items[self.work[d.id].entry.modality].append(d)

    def _add_stretch(self, d: Decoded) -> None:
        store = self.store
        video = self.long.setdefault(d.id, _LongVideo())
        if d.part == 0:
            video.hash, video.duration = d.hash, d.duration
        if d.reason is not None:
            video.reason = video.reason or d.reason
            store.drop_staged([d.id])
        elif video.reason is None and d.payload is not None and d.spans is not None:
            raw, vec, background = self._encode_windows(d.payload)
            spans = np.asarray(d.spans, dtype=np.float64)
            store.stage_windows(d.id, WindowFeatures(d.first, spans, raw, vec, d.previews, background))
            total = raw.sum(axis=0, dtype=np.float64)
            video.raw_sum = total if video.raw_sum is None else video.raw_sum + total
            video.windows += len(spans)
            video.missing += d.missing
            middle = d.total // 2
            for position, jpeg in d.previews.items():
                if video.preview is None or abs(position - middle) < abs(video.preview[0] - middle):
                    video.preview = (position, jpeg)
        if d.part == d.parts - 1:
            del self.long[d.id]
            self.finished.append(self._long_record(d.id, video))

    def abandon(self) -> None:
        """Drop the staged windows of long videos left unfinished (a cancelled run)."""
        self.store.drop_staged(list(self.long))
        self.long.clear()

    def _encode_windows(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Raw features, common-space vectors and P(background) (None: no such class) of windows."""
        import torch

        from fmn_core.features.video import normalize_clip

        model = self.model
        raws, vecs = [], []
        for i in range(0, len(clips), self.encode_windows):
            raw = model.video_raw_from_clips(normalize_clip(torch.from_numpy(clips[i : i + self.encode_windows])))
            raws.append(raw.numpy())
            vecs.append(model.embed_video(raw).numpy())
        raw_all = np.concatenate(raws)
        return raw_all, np.concatenate(vecs), model.background_probability(torch.from_numpy(raw_all))

    def _long_record(self, item_id: str, video: _LongVideo) -> ItemRecord:
        import torch

        if video.reason is not None or video.raw_sum is None:
            reason = video.reason or f"{self.work[item_id].entry.path}: no window could be decoded"
            return self._record(Decoded(item_id, video.hash, video.duration, reason=reason), "failed")
        # The video as one item (the mean of its windows): what a search *from* it starts with.
        whole = (video.raw_sum / video.windows).astype(np.float32)
        whole_vec = self.model.embed_video(torch.from_numpy(whole[None]))[0].numpy()
        if video.missing:
            gap = f"{video.missing} sampled frames could not be read (a broken stretch?); the last good frame stood in"
            log.warning("%s: %s", item_id, gap)
            self.report.gaps.append((item_id, gap))
        preview = None if video.preview is None else video.preview[1]
        decoded = Decoded(item_id, video.hash, video.duration, preview)
        return self._record(decoded, "ok", whole, whole_vec, video.windows)

    def full(self, size: int) -> bool:
        return any(len(v) >= size for v in self.items.values()) or len(self.failed) >= size or bool(self.finished)

    def flush(self) -> int:
        """Encode and commit everything waiting; returns how many files were committed."""
        records = [self._record(d, "failed") for d in self.failed] + self.finished
        for modality, decoded in self.items.items():
            if decoded:
                raw, vec = self._encode(modality, decoded)
                records += [self._record(d, "ok", raw[i], vec[i]) for i, d in enumerate(decoded)]
        if not records:
            return 0
        self.store.write_items(records)
        tally(self.report, self.work, records)
        self.items = {"video": [], "speech": []}
        self.failed = []
        self.finished = []
        return len(records)

    def _encode(self, modality: str, decoded: list[Decoded]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from fmn_core.features.video import normalize_clip

        model = self.model
        if modality == "video":
            clips = normalize_clip(torch.from_numpy(np.stack([d.payload for d in decoded])))  # type: ignore[misc]
            raw = model.video_raw_from_clips(clips)
            vec = model.embed_video(raw)
        else:
            raw = model.speech_raw_from_mfcc([torch.from_numpy(d.payload) for d in decoded])
            vec = model.embed_speech(raw)
        return raw.numpy(), vec.numpy()

    def _record(
        self,
        d: Decoded,
        status: str,
        raw: np.ndarray | None = None,
        vec: np.ndarray | None = None,
        windows: int = 0,
    ) -> ItemRecord:
        w = self.work[d.id]
        e = w.entry
        row = StoredItem(
            e.id,
            stored_path(self.store.library, e.path),
            e.modality,
            w.size,
            w.mtime_ns,
            d.hash,
            d.duration,
            e.label,
            e.text,
            status,
            d.reason,
            windows,
        )
        return ItemRecord(row, d.preview, raw, vec)


__all__ = ["Batch", "ItemSink", "tally"]
