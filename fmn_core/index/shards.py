"""Shards: what a Ray worker writes for each file it encoded, merged into the library's index by
the run that asked for it (``index.ray_index``).

A shard is one ``.npz`` file (arrays and a JSON header, nothing pickled) in the index folder's
``shards/``, named by the model's identity and the file's id, size and modification time: the
same file encoded twice by the same model has one name, so a retried task overwrites its own
shard, never adds a second one. A worker writes it under a temporary name and renames it, so a
shard is whole or absent; one that cannot be read anyway (storage that lost its tail) is
ignored, deleted and encoded again. A shard outlives the run that asked for it until it is
merged: a run whose driver died leaves its finished shards, and the next run merges them
instead of encoding those files again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from fmn_core.index.library import stored_path
from fmn_core.index.plan import IndexReport, Work
from fmn_core.index.records import ItemRecord, StoredItem, WindowFeatures
from fmn_core.index.store import Store

SHARD_VERSION = 1  # of the file layout; a shard of another version is encoded again
SHARDS_DIRNAME = "shards"  # inside the library's index folder
_TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class Shard:
    """One encoded file as a worker left it: its record, a long video's windows, what went wrong in it."""

    record: ItemRecord
    windows: WindowFeatures | None = None
    gap: str | None = None  # a long video indexed around unreadable frames: what was missing


def model_key(identity: dict[str, Any]) -> str:
    """A short stable name for a model identity (:func:`~fmn_core.index.identity.model_identity`)."""
    return hashlib.blake2b(json.dumps(identity, sort_keys=True).encode(), digest_size=16).hexdigest()


def shard_name(key: str, work: Work) -> str:
    """The file name of ``work``'s shard for the model ``key``: one per file version and model."""
    text = "\0".join((key, work.entry.id, str(work.size), str(work.mtime_ns)))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest() + ".npz"


def write_shard(path: Path, key: str, work: Work, shard: Shard) -> None:
    """Write ``shard`` to ``path`` whole or not at all (a temporary file, renamed)."""
    r, w = shard.record, shard.windows
    header = {"version": SHARD_VERSION, "model": key, "size": work.size, "mtime_ns": work.mtime_ns,
              "row": r.row.__dict__, "gap": shard.gap}  # fmt: skip
    arrays: dict[str, np.ndarray] = {"header": np.frombuffer(json.dumps(header).encode(), np.uint8)}
    for name, a in (("raw", r.raw), ("vec", r.vec)):
        if a is not None:
            arrays[name] = np.asarray(a, np.float32)
    if r.preview is not None:
        arrays["preview"] = np.frombuffer(r.preview, np.uint8)
    if w is not None:
        positions = sorted(w.previews)
        arrays |= {"w_spans": np.asarray(w.spans, np.float64), "w_raw": w.raw, "w_vec": w.vec,
                   "w_preview_at": np.asarray(positions, np.int64),
                   "w_preview_len": np.asarray([len(w.previews[p]) for p in positions], np.int64),
                   "w_preview": np.frombuffer(b"".join(w.previews[p] for p in positions), np.uint8)}  # fmt: skip
        if w.background is not None:
            arrays["w_background"] = np.asarray(w.background, np.float64)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{_TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def read_shard(path: Path, key: str, work: Work, library: Path) -> Shard | None:
    """``work``'s shard at ``path``, or None when there is none that can be used.

    A shard that cannot be read, or that is of another model, layout or version of the file, is
    deleted: the file is encoded again. The row's path, label and transcript are taken from
    ``work`` (a manifest may have changed them since, without changing the file).
    """
    try:  # (opened here: np.load leaves a file it fails to read open)
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            header = json.loads(bytes(z["header"]).decode())
            fresh = (header["version"], header["model"], header["size"], header["mtime_ns"], header["row"]["id"]) == (
                SHARD_VERSION, key, work.size, work.mtime_ns, work.entry.id
            )  # fmt: skip
            shard = _shard_from(z, header, work, library) if fresh else None
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
        shard = None  # left half-written (a worker killed on storage that kept part of a file): encode again
    if shard is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return shard


def _shard_from(z: Any, header: dict[str, Any], work: Work, library: Path) -> Shard | None:
    e = work.entry
    row = replace(StoredItem(**header["row"]), path=stored_path(library, e.path), label=e.label, text=e.text)
    files = set(z.files)
    raw = z["raw"] if "raw" in files else None
    vec = z["vec"] if "vec" in files else None
    preview = bytes(z["preview"]) if "preview" in files else None
    if (row.status == "ok") != (raw is not None and vec is not None):
        return None
    windows = None
    if row.windows > 0:
        lengths = z["w_preview_len"].tolist()
        blob, starts = bytes(z["w_preview"]), np.concatenate([[0], np.cumsum(lengths)]).tolist()
        previews = {int(p): blob[starts[i] : starts[i + 1]] for i, p in enumerate(z["w_preview_at"].tolist())}
        background = z["w_background"] if "w_background" in files else None
        windows = WindowFeatures(0, z["w_spans"], z["w_raw"], z["w_vec"], previews, background)
        if len(windows.spans) != row.windows or len(windows.raw) != row.windows or len(windows.vec) != row.windows:
            return None
    return Shard(ItemRecord(row, preview, raw, vec), windows, header.get("gap"))


def merge_shards(store: Store, shards: Sequence[Shard]) -> None:
    """Commit shards to the store in one transaction, through its normal write path: a long
    video's windows are staged, then written with its item (or not at all)."""
    if not shards:
        return
    with store.transaction():
        for s in shards:
            if s.windows is not None:
                store.drop_staged([s.record.row.id])
                store.stage_windows(s.record.row.id, s.windows)
        store.write_items([s.record for s in shards])


def remove_shards(folder: Path, names: Iterable[str]) -> None:
    """Delete merged shards (a shard already gone is no error)."""
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()


def sweep_shards(folder: Path) -> int:
    """Delete every shard and temporary file left in ``folder`` (once no worker writes there)."""
    removed = 0
    if folder.is_dir():
        for p in folder.iterdir():
            if p.suffix in (".npz", _TMP_SUFFIX) and p.is_file():
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    removed += 1
    return removed


class ShardSink:
    """What a Ray worker's :class:`~fmn_core.index.indexer.Encoder` commits to: each finished file
    becomes a shard in ``folder``, its long video's windows with it.

    Args:
        folder: the shards folder (shared by the workers and the run that merges them).
        library: the library folder, as the run that merges the shards sees it.
        key: the model's :func:`model_key`.
        work: the files this worker encodes, by id.
        report: the worker's report (where the encoder notes a long video's unreadable stretches).
    """

    def __init__(self, folder: Path, library: Path, key: str, work: dict[str, Work], report: IndexReport) -> None:
        self.folder = folder
        self.library = library
        self.key = key
        self.work = work
        self.report = report
        self.written: list[tuple[str, str]] = []  # (item id, shard file name), in the order written
        self._staged: dict[str, list[WindowFeatures]] = {}

    def stage_windows(self, item_id: str, stretch: WindowFeatures) -> None:
        """Keep a stretch of a long video's windows until its item is written."""
        self._staged.setdefault(item_id, []).append(stretch)

    def drop_staged(self, item_ids: Iterable[str]) -> None:
        """Forget the stretches of videos that will not be finished."""
        for i in item_ids:
            self._staged.pop(i, None)

    def write_items(self, records: Sequence[ItemRecord]) -> None:
        """Write one shard per record; a long video's holds all its windows."""
        gaps = dict(self.report.gaps)
        for r in records:
            item_id = r.row.id
            stretches = sorted(self._staged.pop(item_id, []), key=lambda s: s.first)
            windows = _joined(stretches) if r.row.windows > 0 else None
            name = shard_name(self.key, self.work[item_id])
            write_shard(self.folder / name, self.key, self.work[item_id], Shard(r, windows, gaps.get(item_id)))
            self.written.append((item_id, name))


def _joined(stretches: Sequence[WindowFeatures]) -> WindowFeatures:
    """A long video's stretches (in time order) as one."""
    previews: dict[int, bytes] = {}
    for s in stretches:
        previews |= s.previews
    backgrounds = [s.background for s in stretches if s.background is not None]
    background = np.concatenate(backgrounds) if backgrounds and len(backgrounds) == len(stretches) else None
    return WindowFeatures(
        stretches[0].first if stretches else 0,
        np.concatenate([s.spans for s in stretches]) if stretches else np.zeros((0, 2)),
        np.concatenate([s.raw for s in stretches]) if stretches else np.zeros((0, 0), np.float32),
        np.concatenate([s.vec for s in stretches]) if stretches else np.zeros((0, 0), np.float32),
        previews,
        background,
    )


__all__ = [
    "SHARDS_DIRNAME",
    "SHARD_VERSION",
    "Shard",
    "ShardSink",
    "merge_shards",
    "model_key",
    "read_shard",
    "remove_shards",
    "shard_name",
    "sweep_shards",
    "write_shard",
]
