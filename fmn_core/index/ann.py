"""Approximate nearest neighbours for the cosine stage of big libraries (usearch HNSW).

Below :data:`ANN_THRESHOLD` rows the cosine stage is one exact matrix-vector product (a few
milliseconds). Above it, the rows worth scoring with S are found in an HNSW graph over the same
normalised common-space vectors, stored as float16, kept beside the SQLite index
(``ann-<modality>.usearch`` and its ``.json`` sidecar) and brought up to date when the library is
reloaded. The ranking that users see stays exact: the rows found are scored with S as before.

Every row has a key that does not depend on its position in the library, a 64-bit hash of its
item's id, its file's content hash and its window's position, so adding or removing files changes
only their own rows' keys: the graph is synced by adding the keys it lacks and removing the keys
that are gone. The graph is a cache of the SQLite index, never the truth: a file that does not
match its sidecar (another model, another version, another width), cannot be read, or was left
half-written by a killed process is rebuilt from the vectors, with a message. It is written to a
temporary file and renamed over the old one, so a kill -9 leaves the old graph or the new one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmn_core.errors import FmnError

log = logging.getLogger(__name__)

ANN_THRESHOLD = 500_000  # rows of one modality above which the cosine stage is approximate
ANN_VERSION = 1  # of the file layout and the key scheme; another version is rebuilt
CONNECTIVITY = 32  # HNSW neighbours per node
EXPANSION_ADD = 256  # candidates kept while a row is inserted
EXPANSION_SEARCH = 512  # candidates kept while searching: well above the rows re-ranked (RERANK)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # spreads the window positions of one item over the key space


def row_keys(ids: Sequence[str], hashes: dict[str, str]) -> np.ndarray:
    """A stable key per searchable row: hash(item id, content hash) mixed with the row's position
    within its item (its window), so the key survives other files being added or removed.

    Args:
        ids: the item of each row; an item's rows are consecutive (its windows, in time order).
        hashes: the content hash of each item's file.

    Returns:
        ``(N,)`` uint64 keys.
    """
    keys = np.empty(len(ids), dtype=np.uint64)
    start = 0
    while start < len(ids):
        item = ids[start]
        end = start
        while end < len(ids) and ids[end] == item:
            end += 1
        digest = hashlib.blake2b(f"{item}\0{hashes.get(item, '')}".encode(), digest_size=8).digest()
        base = np.uint64(int.from_bytes(digest, "little"))
        with np.errstate(over="ignore"):  # wrapping arithmetic is the point
            keys[start:end] = base + np.arange(end - start, dtype=np.uint64) * _GOLDEN
        start = end
    return keys


@dataclass(frozen=True)
class SyncReport:
    """What bringing a graph up to date did."""

    added: int
    removed: int
    rebuilt: str | None  # why the graph was built from scratch; None when it was synced


class AnnIndex:
    """An HNSW graph over one modality's rows, keyed by :func:`row_keys`.

    Args:
        dim: the common space's width.
        identity: what makes vectors comparable (the model's identity); a graph of another is rebuilt.
        path: where the graph is kept (None: in memory only, for benchmarks and tests).
    """

    def __init__(self, dim: int, identity: str, path: Path | None = None) -> None:
        self.dim = dim
        self.identity = identity
        self.path = path
        self._index = self._new()
        self._sorted_keys = np.zeros(0, dtype=np.uint64)  # the library's keys, sorted
        self._rows = np.zeros(0, dtype=np.int64)  # the row of each sorted key
        self._loaded = path is None  # the stored graph is read once, at the first sync

    def _new(self) -> Any:
        from usearch.index import Index

        return Index(
            ndim=self.dim, metric="ip", dtype="f16", connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH,
        )  # fmt: skip

    def __len__(self) -> int:
        return int(len(self._index))

    def memory_bytes(self) -> int:
        """What the graph and its vectors take in memory."""
        return int(self._index.memory_usage)

    # -- keeping it in step with the library ------------------------------------------------------

    def sync(self, keys: np.ndarray, vecs: np.ndarray) -> SyncReport:
        """Bring the graph to exactly ``keys`` (row i has vector ``vecs[i]``), loading the stored
        graph first when there is one that fits, and save it when anything changed."""
        rebuilt = None if self._loaded else self._load()
        self._loaded = True
        order = np.argsort(keys, kind="stable")
        self._sorted_keys, self._rows = keys[order], order.astype(np.int64)
        have = np.asarray(self._index.keys, dtype=np.uint64) if len(self._index) else np.zeros(0, np.uint64)
        gone = np.setdiff1d(have, keys, assume_unique=True)
        new = np.setdiff1d(keys, have, assume_unique=True)
        if len(gone):
            self._index.remove(gone)
        if len(new):
            rows = self._rows[np.searchsorted(self._sorted_keys, new)]
            self._index.add(new, np.ascontiguousarray(vecs[rows], dtype=np.float32), threads=os.cpu_count() or 1)
        if len(gone) or len(new) or rebuilt is not None:
            self._save()
        return SyncReport(int(len(new)), int(len(gone)), rebuilt)

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        """Rows of the ``k`` nearest vectors to ``query`` (inner product), in library order."""
        if not len(self._index):
            return np.zeros(0, dtype=np.int64)
        found = self._index.search(np.ascontiguousarray(query, dtype=np.float32), min(k, len(self._index)))
        keys = np.asarray(found.keys, dtype=np.uint64).reshape(-1)
        at = np.minimum(np.searchsorted(self._sorted_keys, keys), len(self._sorted_keys) - 1)
        return np.sort(self._rows[at[self._sorted_keys[at] == keys]])  # every key the graph holds is a row

    # -- on disk ----------------------------------------------------------------------------------

    def _sidecar(self) -> dict[str, Any]:
        return {"version": ANN_VERSION, "identity": self.identity, "dim": self.dim, "dtype": "f16"}

    def _load(self) -> str | None:
        """Load the stored graph; why it could not be used (it is then rebuilt), or None."""
        if self.path is None:
            return None
        side = self.path.with_suffix(".json")
        if not self.path.is_file() or not side.is_file():
            return "no graph was stored yet"
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            return self._rebuild(f"its description cannot be read ({e})")
        expected = self._sidecar()
        if {k: meta.get(k) for k in expected} != expected or meta.get("count") is None:
            return self._rebuild("it was made for another model or version")
        try:
            self._index.load(str(self.path))
        except Exception as e:  # usearch raises RuntimeError and ValueError on a damaged file
            return self._rebuild(f"it cannot be read ({e})")
        if len(self._index) != meta["count"]:
            return self._rebuild(f"it holds {len(self._index)} rows, its description says {meta['count']}")
        return None

    def _rebuild(self, why: str) -> str:
        log.warning("%s: approximate search graph rebuilt from the index: %s", self.path, why)
        self._index = self._new()
        return why

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self._index.save(str(tmp))
            os.replace(tmp, self.path)
            side = self.path.with_suffix(".json")
            side_tmp = side.with_name(side.name + ".tmp")
            side_tmp.write_text(json.dumps({**self._sidecar(), "count": len(self._index)}), encoding="utf-8")
            os.replace(side_tmp, side)
        except OSError as e:
            raise FmnError(f"{self.path}: cannot write the approximate search graph ({e})") from e


__all__ = ["ANN_THRESHOLD", "AnnIndex", "SyncReport", "row_keys"]
