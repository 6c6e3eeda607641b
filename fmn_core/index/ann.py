"""Approximate nearest neighbours for the cosine stage of big libraries (FAISS, IVF, float16).

Below :data:`ANN_THRESHOLD` rows the cosine stage is one exact matrix-vector product. Above it,
the rows worth scoring with S are found in an inverted-file index over the same normalised
common-space vectors, stored as float16, kept beside the SQLite index (``ann-<modality>.faiss``
and its ``.json`` sidecar) and brought up to date when the library is reloaded. The ranking users
see stays exact: the rows found are scored with S as before.

Why IVF with float16 and not a graph (HNSW, in FAISS or usearch): measured on a million vectors
drawn around real ones and queried with real speech vectors (docs/benchmarks.md, "Approximate
search"), IVF4096 with float16 vectors found the exact top 10 for 0.999 of queries at 1.2 ms,
while HNSW reached 0.52–0.71 even with wide searches: a speech query lies far from every video
(best cosine about 0.7) and the top scores are within 0.0002 of each other, which graphs handle
badly and lossy codes (PQ, int8) worse. IVF also removes rows, which FAISS's HNSW cannot.

Every row has a key that does not depend on its position in the library, a 64-bit hash of its
item's id, its file's content hash and its window's position, so adding or removing files changes
only their own rows' keys: the index is synced by adding the keys it lacks and removing the keys
that are gone. The index is a cache of the SQLite index, never the truth: a file that does not
match its sidecar (another model, version or width), cannot be read, was left half-written by a
killed process, or was trained on far fewer rows than the library now has is rebuilt from the
vectors, with a message. It is written to a temporary file and renamed over the old one, so a
kill -9 leaves the old index or the new one.
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

ANN_THRESHOLD = 150_000  # rows above which the cosine stage is approximate (exact: ~13 ms at 100k, 32 at 250k)
ANN_VERSION = 2  # of the file layout and the key scheme; another version is rebuilt
LISTS = 4096  # inverted lists (clusters) of a big index; fewer for a smaller one (ROWS_PER_LIST)
ROWS_PER_LIST = 64  # at least this many training rows per list
TRAIN_ROWS = 262_144  # rows the clustering is trained on (a sample of the library)
PROBES = 64  # lists searched per query: the exact top 200 for 0.9995 of queries at 1M (measured)
RETRAIN_GROWTH = 4  # rebuild when the library is this many times the rows the index was trained on
ADD_BATCH = 100_000  # rows handed to FAISS at a time: the float32 copy it needs is one batch, not the library
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # spreads the window positions of one item over the key space


def load_faiss() -> Any:
    """FAISS, or a clear error saying what to install (the exact search needs nothing of it)."""
    # Its loader logs each CPU build it tries (AVX512, AVX2) at INFO, failures included: noise to a user.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    try:
        import faiss
    except ImportError as e:
        raise FmnError(
            f"this library is large enough for approximate search, which needs FAISS ({e}): "
            "pip install faiss-cpu, or run `make setup`"
        ) from e
    return faiss


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
    """An IVF index over one modality's rows, keyed by :func:`row_keys`.

    Args:
        dim: the common space's width.
        identity: what makes vectors comparable (the model's identity); an index of another is rebuilt.
        path: where the index is kept (None: in memory only, for benchmarks and tests).
    """

    def __init__(self, dim: int, identity: str, path: Path | None = None) -> None:
        self.dim = dim
        self.identity = identity
        self.path = path
        self._index: Any = None  # built at the first sync, when the rows to train on are known
        self._trained_on = 0
        self._sorted_keys = np.zeros(0, dtype=np.uint64)  # the library's keys, sorted
        self._rows = np.zeros(0, dtype=np.int64)  # the row of each sorted key
        self._loaded = path is None  # the stored index is read once, at the first sync

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def memory_bytes(self) -> int:
        """About what the index takes in memory: float16 vectors and int64 ids, plus the centroids."""
        if self._index is None:
            return 0
        return len(self) * (2 * self.dim + 8) + int(self._index.nlist) * self.dim * 4

    def _new(self, vecs: np.ndarray) -> Any:
        """An empty index trained on a sample of ``vecs``."""
        faiss = load_faiss()

        lists = max(1, min(LISTS, len(vecs) // ROWS_PER_LIST))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, lists, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
        rng = np.random.default_rng(0)
        sample = vecs if len(vecs) <= TRAIN_ROWS else vecs[np.sort(rng.choice(len(vecs), TRAIN_ROWS, replace=False))]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.nprobe = min(PROBES, lists)
        self._trained_on = len(vecs)
        return index

    # -- keeping it in step with the library ------------------------------------------------------

    def sync(self, keys: np.ndarray, vecs: np.ndarray) -> SyncReport:
        """Bring the index to exactly ``keys`` (row i has vector ``vecs[i]``), loading the stored
        index first when there is one that fits, and save it when anything changed.

        Args:
            keys: ``(N,)`` uint64 keys of the rows (:func:`row_keys`).
            vecs: ``(N, E)`` normalised vectors, float32 or float16, in memory or a file mapped in
                memory (``np.memmap``): the rows added are read in library order, a batch at a time.
        """
        rebuilt = None if self._loaded else self._load()
        self._loaded = True
        if self._index is not None and len(keys) > RETRAIN_GROWTH * max(self._trained_on, 1):
            rebuilt = self._rebuild(f"the library has grown to {len(keys):,} rows from {self._trained_on:,}")
        if self._index is None:
            self._index = self._new(vecs)
        order = np.argsort(keys, kind="stable")
        self._sorted_keys, self._rows = keys[order], order.astype(np.int64)
        have = self._stored_keys()
        gone = np.setdiff1d(have, keys, assume_unique=True)
        new = np.setdiff1d(keys, have, assume_unique=True)
        if len(gone):
            self._index.remove_ids(gone.view(np.int64))
        if len(new):
            # Library order, front to back, rather than key order: a mapped file is then read once,
            # sequentially, and a batch's float32 copy is all the memory the adding takes.
            rows = np.sort(self._rows[np.searchsorted(self._sorted_keys, new)])
            for start in range(0, len(rows), ADD_BATCH):
                part = rows[start : start + ADD_BATCH]
                self._index.add_with_ids(np.ascontiguousarray(vecs[part], dtype=np.float32), keys[part].view(np.int64))
        if len(gone) or len(new) or rebuilt is not None:
            self._save()
        return SyncReport(int(len(new)), int(len(gone)), rebuilt)

    def _stored_keys(self) -> np.ndarray:
        """Every key the index holds (read from its inverted lists)."""
        faiss = load_faiss()

        lists = self._index.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(lists.nlist)
            if lists.list_size(i)
        ]
        return np.concatenate(parts).view(np.uint64) if parts else np.zeros(0, np.uint64)

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        """Rows of the ``k`` nearest vectors to ``query`` (inner product), in library order."""
        if not len(self):
            return np.zeros(0, dtype=np.int64)
        _, found = self._index.search(np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1), min(k, len(self)))
        keys = found[0][found[0] != -1].astype(np.int64).view(np.uint64)
        at = np.minimum(np.searchsorted(self._sorted_keys, keys), len(self._sorted_keys) - 1)
        return np.sort(self._rows[at[self._sorted_keys[at] == keys]])  # every key the index holds is a row

    # -- on disk ----------------------------------------------------------------------------------

    def _sidecar(self) -> dict[str, Any]:
        return {"version": ANN_VERSION, "identity": self.identity, "dim": self.dim, "dtype": "f16"}

    def _load(self) -> str | None:
        """Load the stored index; why it could not be used (it is then rebuilt), or None."""
        faiss = load_faiss()

        if self.path is None:
            return None
        side = self.path.with_suffix(".json")
        if not self.path.is_file() or not side.is_file():
            return "no index was stored yet"
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            return self._rebuild(f"its description cannot be read ({e})")
        expected = self._sidecar()
        if {k: meta.get(k) for k in expected} != expected or meta.get("count") is None:
            return self._rebuild("it was made for another model or version")
        try:
            index: Any = faiss.read_index(str(self.path))
        except Exception as e:  # FAISS raises RuntimeError on a damaged file
            return self._rebuild(f"it cannot be read ({e})")
        if index.ntotal != meta["count"] or index.d != self.dim:
            return self._rebuild(f"it holds {index.ntotal} rows, its description says {meta['count']}")
        index.nprobe = min(PROBES, index.nlist)
        self._index, self._trained_on = index, int(meta.get("trained_on", index.ntotal))
        return None

    def _rebuild(self, why: str) -> str:
        log.warning("%s: approximate search index rebuilt from the library index: %s", self.path, why)
        self._index = None
        return why

    def _save(self) -> None:
        faiss = load_faiss()

        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            faiss.write_index(self._index, str(tmp))
            os.replace(tmp, self.path)
            side = self.path.with_suffix(".json")
            side_tmp = side.with_name(side.name + ".tmp")
            meta = {**self._sidecar(), "count": len(self), "trained_on": self._trained_on}
            side_tmp.write_text(json.dumps(meta), encoding="utf-8")
            os.replace(side_tmp, side)
        except (OSError, RuntimeError) as e:
            raise FmnError(f"{self.path}: cannot write the approximate search index ({e})") from e


__all__ = ["ANN_THRESHOLD", "AnnIndex", "SyncReport", "load_faiss", "row_keys"]
