"""Flat files of a big library's features, mapped in memory instead of held whole (issue 15).

Joining every row's ``vec`` and ``raw`` blobs into two matrices costs about 3 KB of memory per
row (30 GB at 10M rows), twice over while the blobs are fetched. Above a size (the retriever uses
its approximate-search threshold), :meth:`~fmn_core.index.store.Store.load` instead gives each
modality's rows as two ``.npy`` files (float32, ``(N, E)`` and ``(N, D)``) opened read-only with
``np.memmap``: the approximate index reads ``vec`` only to sync itself (a batch at a time) and a
search reads ``raw`` only at the few hundred rows it scores with S.

The files are a cache of the SQLite index, never the truth, like ``ann-<modality>.faiss``. A
``rows-<modality>.json`` sidecar names them and says what they hold: the layout version, the
model identity, the row count and widths, and a fingerprint of the rows. Each row has a key (its
item id, window, content hash and time of indexing: :data:`RowKey`) and a 16-byte digest of it,
kept in a third file; the fingerprint is the hash of the digests in the library's order. Any
write of an item through the store sets its time of indexing, so features written again, items
added or removed and another model all change the fingerprint. Blobs edited in SQLite by hand,
bypassing the store, are not seen: the rows are not read to check them, which is the point.

When the rows have changed (items indexed, re-indexed or removed), the files are *updated*:
written anew in the library's order, each row whose digest the old files hold copied from them
and only the others read from SQLite, so the SQLite reads are proportional to the change (copying
the kept rows is a sequential pass over the old files: at 1M rows with 1 % changed, 8.5 s above a
plain open against 14.5 s for a rebuild, ``docs/benchmarks.md``). Files that are missing,
cannot be read whole (truncated), or were made for another model, version or width are rebuilt
from SQLite alone, streaming the blobs a batch at a time, with a warning.

A rebuild writes new files under fresh names (``rows-<modality>-<random>.vec.npy``), renames
each into place from a temporary name, then writes the sidecar the same way: a kill -9 at any
point leaves the old sidecar naming the old files (still whole) or the new sidecar naming the
new ones. Fresh names also mean a file still mapped by an open search (or, on Windows, locked by
the mapping) is never written over; files no sidecar names are removed when they can be.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fmn_core.index.location import LibraryIndexError

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # of the files' layout and the fingerprint; another version is rebuilt
BATCH = 50_000  # rows written at a time (~150 MB of blobs at E=256, D=512)
PARTS = ("vec", "raw", "keys")  # the files of one build: features, and the rows' digests

# One searchable row as the fingerprint sees it: (item id, window position or -1, content hash, time indexed).
RowKey = tuple[str, int, str, float]

# Rows to read from SQLite: their positions in the library's order (ascending) -> their (vec, raw) blobs.
Fetch = Callable[[Sequence[int]], Iterable[tuple[bytes, bytes]]]


def row_digests(rows: Sequence[RowKey]) -> np.ndarray:
    """Each row's 16-byte digest (``S16``), in order: what tells a kept row from a changed one."""
    out = np.empty(len(rows), dtype="S16")
    for i, (item_id, window, content, indexed_at) in enumerate(rows):
        out[i] = hashlib.blake2b(f"{item_id}\0{window}\0{content}\0{indexed_at!r}".encode(), digest_size=16).digest()
    return out


def fingerprint(digests: np.ndarray) -> str:
    """A hash of the rows' digests, in order: what the files must have been written from."""
    return hashlib.blake2b(np.ascontiguousarray(digests, dtype="S16").tobytes(), digest_size=16).hexdigest()


NONE_YET = "none was written yet"


class RowCache:
    """The flat files of one modality's rows, in an index folder.

    Args:
        folder: the index folder.
        modality: 'video' or 'speech'.
        identity: the model identity (JSON); files made with another are rebuilt.
    """

    def __init__(self, folder: Path, modality: str, identity: str) -> None:
        self.folder = folder
        self.modality = modality
        self.identity = identity
        self.sidecar = folder / f"rows-{modality}.json"

    def open(self, fp: str, count: int) -> tuple[np.ndarray, np.ndarray] | str:
        """``(vec, raw)`` mapped read-only when the stored files hold ``count`` rows of fingerprint
        ``fp``; else why they cannot be used."""
        meta = self._meta()
        if isinstance(meta, str):
            return meta
        if meta.get("fingerprint") != fp or meta.get("count") != count:
            return f"its rows are not the library index's ({meta.get('count')} rows, now {count})"
        files = self._files(meta)
        return files if isinstance(files, str) else (files[0], files[1])

    def stored(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
        """The stored files ``(vec, raw, keys)`` mapped read-only, whatever rows they hold, when
        they were made for this model and can be read whole; else why not."""
        meta = self._meta()
        return meta if isinstance(meta, str) else self._files(meta)

    def _meta(self) -> dict[str, Any] | str:
        if not self.sidecar.is_file():
            return NONE_YET
        try:
            meta = json.loads(self.sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            return f"its description cannot be read ({e})"
        if not isinstance(meta, dict) or meta.get("version") != CACHE_VERSION or meta.get("identity") != self.identity:
            return "it was made for another model or version"
        return meta

    def _files(self, meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
        count, arrays = meta.get("count"), []
        for part in PARTS:
            try:
                # np.load checks the header, and refuses a file shorter than its shape (truncated).
                a = np.load(self.folder / str(meta[f"{part}_file"]), mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, KeyError, TypeError) as e:
                return f"its {part} file cannot be read ({e})"
            dtype, shape = (
                (np.dtype("S16"), (count,)) if part == "keys" else (np.float32, (count, meta.get(f"{part}_dim")))
            )
            if a.dtype != dtype or a.shape != shape:
                return f"its {part} file holds {a.dtype} {a.shape}, its description says otherwise"
            arrays.append(a)
        return arrays[0], arrays[1], arrays[2]

    def write(
        self,
        fp: str,
        digests: np.ndarray,
        fetch: Fetch,
        old: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Write the files of the rows with these digests (the library's order) and map them.

        Args:
            fp: the rows' fingerprint (of ``digests``).
            digests: :func:`row_digests` of the rows.
            fetch: reads the blobs of the rows at some positions from SQLite.
            old: the files of :meth:`stored`: rows they hold are copied, not fetched.

        Returns:
            ``(vec, raw)`` mapped read-only, and how many rows were copied from ``old``.

        Raises:
            LibraryIndexError: the rows have differing widths, or the files cannot be written.
        """
        token = secrets.token_hex(8)
        names = {part: f"rows-{self.modality}-{token}.{part}.npy" for part in PARTS}
        tmps = [self.folder / (name + ".tmp") for name in names.values()]
        try:
            dims, kept = self._write(tmps, digests, fetch, old)
            for tmp, name in zip(tmps, names.values(), strict=True):
                os.replace(tmp, self.folder / name)
            meta = {"version": CACHE_VERSION, "identity": self.identity, "fingerprint": fp, "count": len(digests),
                    "dtype": "float32", "vec_dim": dims[0], "raw_dim": dims[1],
                    **{f"{part}_file": name for part, name in names.items()}}  # fmt: skip
            side_tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
            side_tmp.write_text(json.dumps(meta), encoding="utf-8")
            os.replace(side_tmp, self.sidecar)
        except BaseException as e:
            for tmp in tmps:
                tmp.unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise LibraryIndexError(f"{self.folder}: cannot write the {self.modality} feature files ({e})") from e
            raise
        old = None  # unmapped, so that the old files can go (on Windows a mapped file cannot)
        self._remove_others(set(names.values()))
        opened = self.open(fp, len(digests))
        if isinstance(opened, str):  # just written: only another process writing at once could do this
            raise LibraryIndexError(f"{self.sidecar}: the feature files just written cannot be read: {opened}")
        return opened[0], opened[1], kept

    @staticmethod
    def _write(
        tmps: Sequence[Path],
        digests: np.ndarray,
        fetch: Fetch,
        old: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    ) -> tuple[tuple[int, int], int]:
        """Fill the temporary files, a batch of rows at a time; the widths ``(E, D)`` and the rows copied."""
        count = len(digests)
        source = _sources(old[2], digests) if old is not None else np.full(count, -1, dtype=np.int64)
        blobs = iter(fetch(np.flatnonzero(source < 0).tolist()))
        if old is not None:
            dims = (old[0].shape[1], old[1].shape[1])
        else:
            first = next(blobs, None)
            if first is None or count == 0:
                raise LibraryIndexError("no rows to write into the feature files")
            dims = (len(first[0]) // 4, len(first[1]) // 4)
            blobs = itertools.chain([first], blobs)
        if count == 0:
            raise LibraryIndexError("no rows to write into the feature files")
        files = [
            np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(count, d))
            for tmp, d in zip(tmps[:2], dims, strict=True)
        ]
        keys = np.lib.format.open_memmap(tmps[2], mode="w+", dtype="S16", shape=(count,))
        keys[:] = digests
        for lo in range(0, count, BATCH):
            hi = min(lo + BATCH, count)
            src = source[lo:hi]
            copied = np.flatnonzero(src >= 0)
            fetched = np.flatnonzero(src < 0)
            if old is not None and len(copied):
                for f, o in zip(files, old[:2], strict=True):
                    f[lo + copied] = o[src[copied]]
            batch = list(itertools.islice(blobs, len(fetched)))
            if len(batch) != len(fetched):
                raise LibraryIndexError(
                    f"rows {lo}..{hi}: {len(batch)} read for the feature files, {len(fetched)} expected"
                )
            for k, (f, d) in enumerate(zip(files, dims, strict=True)):
                joined = b"".join(b[k] for b in batch)
                if len(joined) != len(batch) * d * 4:
                    raise LibraryIndexError(f"rows {lo}..{hi}: features of differing widths")
                f[lo + fetched] = np.frombuffer(joined, dtype=np.float32).reshape(len(batch), d)
        if next(blobs, None) is not None:
            raise LibraryIndexError(f"more rows were read for the feature files than the {count} expected")
        for f in (*files, keys):
            f.flush()  # the page cache outlives a killed process; a power cut is SQLite's to survive
        return dims, int((source >= 0).sum())

    def _remove_others(self, keep: set[str]) -> None:
        """Remove this modality's files that the sidecar does not name (older builds, a killed one's)."""
        for path in self.folder.glob(f"rows-{self.modality}-*.npy*"):
            if path.name not in keep:
                with contextlib.suppress(OSError):  # still mapped on Windows: removed by a later rebuild
                    path.unlink()


def _sources(old_keys: np.ndarray, digests: np.ndarray) -> np.ndarray:
    """For each new row, the position of the old row with its digest, or -1 (``int64``)."""
    if not len(old_keys) or not len(digests):
        return np.full(len(digests), -1, dtype=np.int64)
    order = np.argsort(old_keys)  # reads the old digests once: 16 B a row
    ordered = np.asarray(old_keys)[order]
    at = np.minimum(np.searchsorted(ordered, digests), len(ordered) - 1)
    return np.where(ordered[at] == digests, order[at], -1).astype(np.int64)


__all__ = ["BATCH", "CACHE_VERSION", "NONE_YET", "Fetch", "RowCache", "RowKey", "fingerprint", "row_digests"]
