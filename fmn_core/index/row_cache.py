"""Flat files of a big library's features, mapped in memory instead of held whole (issue 15).

Joining every row's ``vec`` and ``raw`` blobs into two matrices costs about 3 KB of memory per
row (30 GB at 10M rows), twice over while the blobs are fetched. Above a size (the retriever uses
its approximate-search threshold), :meth:`~fmn_core.index.store.Store.load` instead gives each
modality's rows as two ``.npy`` files (float32, ``(N, E)`` and ``(N, D)``) opened read-only with
``np.memmap``: the approximate index reads ``vec`` only to sync itself (a batch at a time) and a
search reads ``raw`` only at the few hundred rows it scores with S.

The files are a cache of the SQLite index, never the truth, like ``ann-<modality>.faiss``. A
``rows-<modality>.json`` sidecar names them and says what they hold: the layout version, the
model identity, the row count and widths, and a fingerprint of the rows (each row's item id,
window, content hash and time of indexing, in the library's order). Any write of an item through
the store sets its time of indexing, so features written again, items added or removed and
another model all change the fingerprint. Files that do not match it, are missing or cannot be
read whole (truncated) are rebuilt from SQLite, streaming the blobs a batch at a time, with a
message. Blobs edited in SQLite by hand, bypassing the store, are not seen: the rows are not read
to check them, which is the point.

A rebuild writes new files under fresh names (``rows-<modality>-<random>.vec.npy``), renames
each into place from a temporary name, then writes the sidecar the same way: a kill -9 at any
point leaves the old sidecar naming the old files (still whole) or the new sidecar naming the
new ones. Fresh names also mean a file still mapped by an open search (or, on Windows, locked by
the mapping) is never written over; files no sidecar names are removed when they can be.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fmn_core.index.location import LibraryIndexError

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # of the files' layout and the fingerprint; another version is rebuilt
BATCH = 50_000  # rows written at a time while rebuilding (~150 MB of blobs at E=256, D=512)

# One searchable row as the fingerprint sees it: (item id, window position or -1, content hash, time indexed).
RowKey = tuple[str, int, str, float]


def fingerprint(rows: Iterable[RowKey]) -> str:
    """A hash of the rows, in order: what the files must have been written from."""
    h = hashlib.blake2b(digest_size=16)
    for item_id, window, content, indexed_at in rows:
        h.update(f"{item_id}\0{window}\0{content}\0{indexed_at!r}\n".encode())
    return h.hexdigest()


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
        if not self.sidecar.is_file():
            return "none was written yet"
        try:
            meta = json.loads(self.sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            return f"its description cannot be read ({e})"
        if meta.get("version") != CACHE_VERSION or meta.get("identity") != self.identity:
            return "it was made for another model or version"
        if meta.get("fingerprint") != fp or meta.get("count") != count:
            return f"its rows are not the library index's ({meta.get('count')} rows, now {count})"
        arrays = []
        for part in ("vec", "raw"):
            try:
                # np.load checks the header, and refuses a file shorter than its shape (truncated).
                a = np.load(self.folder / str(meta[f"{part}_file"]), mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, KeyError, TypeError) as e:
                return f"its {part} file cannot be read ({e})"
            if a.dtype != np.float32 or a.shape != (count, meta.get(f"{part}_dim")):
                return f"its {part} file holds {a.dtype} {a.shape}, its description says otherwise"
            arrays.append(a)
        return arrays[0], arrays[1]

    def write(self, fp: str, count: int, blobs: Iterable[tuple[bytes, bytes]]) -> tuple[np.ndarray, np.ndarray]:
        """Write the files from ``count`` rows' ``(vec, raw)`` float32 blobs, in order, and map them.

        Raises:
            LibraryIndexError: the rows have differing widths, or the files cannot be written.
        """
        token = secrets.token_hex(8)
        names = {part: f"rows-{self.modality}-{token}.{part}.npy" for part in ("vec", "raw")}
        tmps = [self.folder / (name + ".tmp") for name in names.values()]
        try:
            dims = self._write(tmps, count, iter(blobs))
            for tmp, name in zip(tmps, names.values(), strict=True):
                os.replace(tmp, self.folder / name)
            meta = {"version": CACHE_VERSION, "identity": self.identity, "fingerprint": fp, "count": count,
                    "dtype": "float32", "vec_dim": dims[0], "raw_dim": dims[1],
                    "vec_file": names["vec"], "raw_file": names["raw"]}  # fmt: skip
            side_tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
            side_tmp.write_text(json.dumps(meta), encoding="utf-8")
            os.replace(side_tmp, self.sidecar)
        except BaseException as e:
            for tmp in tmps:
                tmp.unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise LibraryIndexError(f"{self.folder}: cannot write the {self.modality} feature files ({e})") from e
            raise
        self._remove_others(set(names.values()))
        opened = self.open(fp, count)
        if isinstance(opened, str):  # just written: only another process writing at once could do this
            raise LibraryIndexError(f"{self.sidecar}: the feature files just written cannot be read: {opened}")
        return opened

    @staticmethod
    def _write(tmps: Sequence[Path], count: int, blobs: Any) -> tuple[int, int]:
        """Fill the two temporary files; the widths ``(E, D)``."""
        first = next(blobs, None)
        if first is None or count == 0:
            raise LibraryIndexError("no rows to write into the feature files")
        dims = (len(first[0]) // 4, len(first[1]) // 4)
        files = [
            np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(count, d))
            for tmp, d in zip(tmps, dims, strict=True)
        ]
        batch: list[tuple[bytes, bytes]] = [first]
        done = 0

        def flush() -> None:
            nonlocal done
            for k, (f, d) in enumerate(zip(files, dims, strict=True)):
                joined = b"".join(b[k] for b in batch)
                if len(joined) != len(batch) * d * 4:
                    raise LibraryIndexError(f"rows {done}..{done + len(batch)}: features of differing widths")
                f[done : done + len(batch)] = np.frombuffer(joined, dtype=np.float32).reshape(len(batch), d)
            done += len(batch)
            batch.clear()

        for row in blobs:
            batch.append(row)
            if len(batch) == BATCH:
                flush()
        flush()
        if done != count:
            raise LibraryIndexError(f"{done} rows were read for the feature files, {count} expected")
        for f in files:
            f.flush()  # the page cache outlives a killed process; a power cut is SQLite's to survive
        files.clear()  # unmapped: the files are renamed next
        return dims

    def _remove_others(self, keep: set[str]) -> None:
        """Remove this modality's files that the sidecar does not name (older builds, a killed one's)."""
        for path in self.folder.glob(f"rows-{self.modality}-*.npy*"):
            if path.name not in keep:
                with contextlib.suppress(OSError):  # still mapped on Windows: removed by a later rebuild
                    path.unlink()


__all__ = ["BATCH", "CACHE_VERSION", "RowCache", "RowKey", "fingerprint"]
