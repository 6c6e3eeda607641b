"""The on-disk library index: one SQLite database (WAL mode) per library, the source of truth.

It holds every item of the library (file identity, metadata, status, preview, raw and
common-space features as float32 blobs), the identity of the model that made the features, the
library's own memory banks (every buffer of :class:`~fmn_core.models.memory.PairedMemory`) and
the log of the changes made to them. Nothing is pickled: arrays are stored as raw bytes with
their dtype and shape, everything else as SQL values or JSON.
Where it lives: ``index.location``; the rows it reads and writes: ``index.records``.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmn_core.index.location import (
    DB_NAME,
    LibraryIndexError,
    index_dir_for,
)
from fmn_core.index.records import ItemRecord, LogRow, StoredItem, Vectors, WindowFeatures
from fmn_core.index.row_cache import NONE_YET, RowCache, RowKey, fingerprint, row_digests

SCHEMA_VERSION = 2  # 2: long videos as windows (the windows table, items.windows)
STATUSES = ("ok", "failed", "stale")  # 'stale': features of another model, waiting to be re-encoded

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,          -- relative to the library (POSIX) when inside it, else absolute
    modality TEXT NOT NULL CHECK (modality IN ('video', 'speech')),
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL,          -- blake2b of the file's bytes
    duration REAL NOT NULL DEFAULT 0,
    label TEXT,
    text TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'stale')),
    reason TEXT,
    windows INTEGER NOT NULL DEFAULT 0,  -- a long video: how many rows it has in `windows` (0: one clip)
    indexed_at REAL NOT NULL,
    vec BLOB,                    -- float32 normalised common-space vector (E,); NULL unless ok
    raw BLOB,                    -- float32 raw features (Dv,) or (Da,); NULL unless ok
    -- Last: reading a column means walking the overflow pages of the blobs before it.
    preview BLOB                 -- video: JPEG thumbnail; speech: float32 waveform peaks
);
CREATE TABLE IF NOT EXISTS windows (  -- a long video's overlapping windows, searched as moments
    item_id TEXT NOT NULL,       -- written and deleted with its item, in the same transaction
    idx INTEGER NOT NULL,        -- position in time
    start REAL NOT NULL,         -- seconds
    end REAL NOT NULL,
    vec BLOB NOT NULL,           -- float32 normalised common-space vector (E,)
    raw BLOB NOT NULL,           -- float32 raw features (Dv,)
    background REAL,             -- the I3D's P(nothing happens) here; NULL: the model has no such class
    preview BLOB,                -- JPEG thumbnail of its middle, about one per window length; else NULL
    PRIMARY KEY (item_id, idx)
);
-- A long video's windows written stretch by stretch while it is indexed (so the indexer's memory
-- does not grow with the video), moved to `windows` in the transaction that writes its item row.
-- Never searched: a killed run leaves rows here, which the next run over that video drops.
CREATE TABLE IF NOT EXISTS staged_windows (
    item_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    vec BLOB NOT NULL,
    raw BLOB NOT NULL,
    background REAL,
    preview BLOB,
    PRIMARY KEY (item_id, idx)
);
CREATE TABLE IF NOT EXISTS banks (
    name TEXT PRIMARY KEY,       -- buffer name in PairedMemory, e.g. 'video.slots'
    dtype TEXT NOT NULL,
    shape TEXT NOT NULL,         -- JSON list
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS updates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action INTEGER NOT NULL,     -- one confirm or automatic update; undo removes a whole action
    slot INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('append', 'average', 'replace')),
    video_id TEXT NOT NULL,
    speech_id TEXT NOT NULL,
    time REAL NOT NULL,
    query_source TEXT NOT NULL,
    m2 REAL,
    step INTEGER NOT NULL
);
"""

# Torch dtypes of memory-bank buffers and their numpy twins (for tobytes/frombuffer round trips).
_DTYPES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64", torch.bool: "bool"}


# A long video (row.windows > 0) takes its windows from those staged for it (stage_windows).


# (table, column, type) of the columns added to a table after its first release.
log = logging.getLogger(__name__)

_ADDED_COLUMNS = (("items", "windows", "INTEGER NOT NULL DEFAULT 0"), ("windows", "background", "REAL"))

# The windows of searchable long videos, in the index's order; {blobs}: ", w.vec, w.raw" or "".
_WINDOWS = (
    "SELECT w.item_id, w.idx, w.start, w.end, w.background{blobs} FROM windows w "
    "JOIN items i ON i.id = w.item_id WHERE i.status = 'ok' ORDER BY w.item_id, w.idx"
)

# The columns of StoredItem, in its order.
_ROW_COLUMNS = "id, path, modality, size, mtime_ns, hash, duration, label, text, status, reason, windows"
_WINDOW_COLUMNS = "item_id, idx, start, end, vec, raw, background, preview"


def _blob(a: np.ndarray | None) -> bytes | None:
    return None if a is None else np.ascontiguousarray(a, dtype=np.float32).tobytes()


class Store:
    """A library's index database.

    Safe to use from several threads (the app indexes in a worker and searches in the GUI
    thread): one connection, every access under a lock. Each write method commits on its own;
    :meth:`transaction` groups several into one commit.

    Args:
        library: the library folder.
        folder: where the index lives (default: :func:`index_dir_for`).
    """

    def __init__(self, library: str | os.PathLike[str], folder: str | os.PathLike[str] | None = None) -> None:
        self.library = Path(library).resolve()
        self.folder = Path(folder) if folder is not None else index_dir_for(self.library)
        self.path = self.folder / DB_NAME
        self._lock = threading.RLock()
        self._depth = 0  # nesting of transaction(); commits happen at depth 0
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            # WAL: readers never block the writer, and a killed writer loses only its open
            # transaction. synchronous=NORMAL is durable against a killed process (not power loss).
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise LibraryIndexError(
                f"{self.path}: the library index is damaged ({e}); delete the folder {self.folder} to rebuild it"
            ) from e
        self._check_schema()

    def _check_schema(self) -> None:
        version = self.get_meta("schema")
        if version is not None and int(version) > SCHEMA_VERSION:
            raise LibraryIndexError(
                f"{self.path}: index made by a newer FMN Studio (schema {version}, this one reads {SCHEMA_VERSION})"
            )
        # Columns added since a table was first made (CREATE TABLE IF NOT EXISTS leaves an old
        # table as it was). Schema 1 knew no windows: its long videos are single items, encoded
        # again as windows by the next indexing run (the plan sees a long video without windows).
        with self.transaction() as db:
            for table, column, kind in _ADDED_COLUMNS:
                if column not in {r[1] for r in db.execute(f"PRAGMA table_info({table})")}:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        if version is None or int(version) < SCHEMA_VERSION:
            self.set_meta("schema", str(SCHEMA_VERSION))

    def close(self) -> None:
        """Close the database (later calls fail)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Everything inside commits together, or not at all."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self._db
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        """A value of the meta table, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the meta table."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- model identity -----------------------------------------------------------------------

    def model_identity(self) -> dict[str, Any] | None:
        """The identity of the model the features were made with (None for a new index)."""
        value = self.get_meta("model")
        return None if value is None else json.loads(value)

    def attach_model(self, identity: dict[str, Any], banks: dict[str, torch.Tensor]) -> bool:
        """Bind the index to a model.

        A new index takes the model's identity and its banks. An index made with another model
        keeps its files' metadata and previews, but its features are marked stale (re-encoded by
        the next indexing run), its banks restart from the model's and its update log is
        cleared, since slots of one model's raw features mean nothing to another.

        Args:
            identity: JSON-able description of the model (checkpoint hash, config, front ends).
            banks: the model's memory buffers (``PairedMemory.snapshot()``).

        Returns:
            True when the features were invalidated (or the index is new).
        """
        current = self.model_identity()
        if current == identity:
            return False
        with self.transaction() as db:
            db.execute("UPDATE items SET status = 'stale', raw = NULL, vec = NULL, windows = 0")
            db.execute("DELETE FROM windows")
            db.execute("DELETE FROM staged_windows")
            db.execute("DELETE FROM updates")
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('model', ?)", (json.dumps(identity),))
            self.save_banks(banks)
        return True

    # -- items --------------------------------------------------------------------------------

    def rows(self) -> dict[str, StoredItem]:
        """Every item without blobs, by id."""
        with self._lock:
            cur = self._db.execute(f"SELECT {_ROW_COLUMNS} FROM items")
            return {r[0]: StoredItem(*r) for r in cur}

    def count(self, status: str | None = None) -> int:
        """Number of items (of one status)."""
        with self._lock:
            if status is None:
                return int(self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0])
            return int(self._db.execute("SELECT COUNT(*) FROM items WHERE status = ?", (status,)).fetchone()[0])

    def write_items(self, records: Sequence[ItemRecord]) -> None:
        """Insert or replace items, in one commit."""
        now = time.time()
        values = [
            (
                r.row.id,
                r.row.path,
                r.row.modality,
                r.row.size,
                r.row.mtime_ns,
                r.row.hash,
                r.row.duration,
                r.row.label,
                r.row.text,
                r.row.status,
                r.row.reason,
                r.row.windows,
                now,
                _blob(r.vec),
                _blob(r.raw),
                r.preview,
            )
            for r in records
        ]
        long_videos = [(r.row.id,) for r in records if r.row.windows > 0]
        with self.transaction() as db:
            db.executemany("DELETE FROM windows WHERE item_id = ?", [(r.row.id,) for r in records])
            db.executemany(
                f"INSERT OR REPLACE INTO items ({_ROW_COLUMNS}, indexed_at, vec, raw, preview) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            db.executemany(
                f"INSERT INTO windows ({_WINDOW_COLUMNS}) "
                f"SELECT {_WINDOW_COLUMNS} FROM staged_windows WHERE item_id = ?",
                long_videos,
            )
            db.executemany("DELETE FROM staged_windows WHERE item_id = ?", long_videos)
            for r in records:
                if r.row.windows > 0:
                    n = db.execute("SELECT COUNT(*) FROM windows WHERE item_id = ?", (r.row.id,)).fetchone()[0]
                    if n != r.row.windows:  # rolls the whole write back: never a video with holes
                        raise LibraryIndexError(
                            f"{r.row.id}: {n} of its {r.row.windows} windows were staged (another indexing run "
                            "over the same library dropped them?); index it again"
                        )

    def stage_windows(self, item_id: str, stretch: WindowFeatures) -> None:
        """Write a stretch of a long video's windows, to be committed with its item by :meth:`write_items`."""
        rows = [
            (item_id, stretch.first + i, float(start), float(end), _blob(stretch.vec[i]), _blob(stretch.raw[i]),
             None if stretch.background is None else float(stretch.background[i]),
             stretch.previews.get(stretch.first + i))
            for i, (start, end) in enumerate(stretch.spans)
        ]  # fmt: skip
        with self.transaction() as db:
            db.executemany(
                f"INSERT OR REPLACE INTO staged_windows ({_WINDOW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    def drop_staged(self, item_ids: Iterable[str]) -> None:
        """Forget the staged windows of videos whose indexing did not finish."""
        with self.transaction() as db:
            db.executemany("DELETE FROM staged_windows WHERE item_id = ?", [(i,) for i in item_ids])

    def staged(self) -> int:
        """How many windows are staged (0 once every started video is committed or dropped)."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM staged_windows").fetchone()[0])

    def update_files(self, rows: Iterable[StoredItem]) -> None:
        """Update what can change without re-encoding: path, size, mtime, label and text."""
        values = [(r.path, r.size, r.mtime_ns, r.label, r.text, r.id) for r in rows]
        with self.transaction() as db:
            db.executemany(
                "UPDATE items SET path = ?, size = ?, mtime_ns = ?, label = ?, text = ? WHERE id = ?", values
            )

    def delete_items(self, ids: Iterable[str]) -> None:
        """Drop items (files gone from the library)."""
        keys = [(i,) for i in ids]
        with self.transaction() as db:
            db.executemany("DELETE FROM windows WHERE item_id = ?", keys)
            db.executemany("DELETE FROM staged_windows WHERE item_id = ?", keys)
            db.executemany("DELETE FROM items WHERE id = ?", keys)

    def preview(self, item_id: str) -> bytes | None:
        """An item's preview blob (JPEG thumbnail or float32 peaks), or None."""
        with self._lock:
            row = self._db.execute("SELECT preview FROM items WHERE id = ?", (item_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def window_previews(self, item_id: str) -> list[tuple[float, float, bytes]]:
        """A long video's stored window thumbnails: ``(start, end, JPEG)`` in time order."""
        with self._lock:
            cur = self._db.execute(
                "SELECT start, end, preview FROM windows WHERE item_id = ? AND preview IS NOT NULL ORDER BY idx",
                (item_id,),
            )
            return [(float(a), float(b), bytes(p)) for a, b, p in cur]

    def window_preview(self, item_id: str, at: float) -> bytes | None:
        """The stored window thumbnail of a long video whose window's middle is nearest ``at`` seconds."""
        with self._lock:
            row = self._db.execute(
                "SELECT preview FROM windows WHERE item_id = ? AND preview IS NOT NULL "
                "ORDER BY ABS((start + end) / 2 - ?), idx LIMIT 1",
                (item_id, at),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def features(self, item_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(raw, vec)`` of one ok item, or None."""
        with self._lock:
            row = self._db.execute("SELECT raw, vec FROM items WHERE id = ? AND status = 'ok'", (item_id,)).fetchone()
        if row is None:
            return None
        return np.frombuffer(row[0], dtype=np.float32).copy(), np.frombuffer(row[1], dtype=np.float32).copy()

    def load(self, map_above: int | None = None) -> tuple[dict[str, StoredItem], dict[str, Vectors]]:
        """Every item (by id) and each modality's searchable rows (:class:`Vectors`).

        The blobs of a modality are joined once and viewed as one matrix: no per-row array is made.

        Args:
            map_above: a modality of more rows than this gets its ``vec`` and ``raw`` as files
                mapped in memory, read-only (``index.row_cache``, rebuilt from the blobs when they
                do not match), not as joined blobs; None: always joined.
        """
        with self._lock, self._snapshot():
            # Most libraries are small: count their rows (at least as many as will be searchable)
            # before planning, so that a small one's reload reads its items once, not twice.
            if map_above is None or self._most_rows() <= map_above:
                return self._load_joined()
            fetched = self._db.execute(f"SELECT {_ROW_COLUMNS}, indexed_at FROM items ORDER BY id").fetchall()
            windowed = self._db.execute(_WINDOWS.format(blobs="")).fetchall()
            rows = {r[0]: StoredItem(*r[:12]) for r in fetched}
            plans = {m: _searchable_rows(fetched, windowed, m, blobs=False) for m in ("video", "speech")}
            if all(len(plan) <= map_above for plan in plans.values()):
                return self._load_joined()  # long videos counted but not windowed yet: small after all
            indexed_at = {r[0]: float(r[12]) for r in fetched}
            vectors = {}
            for modality, plan in plans.items():
                keys = [(p[0], p[1], rows[p[0]].hash, indexed_at[p[0]]) for p in plan]
                if not plan:
                    vectors[modality] = _vectors([], [], [], bool(windowed))
                elif len(plan) > map_above:
                    vectors[modality] = _vectors(plan, *self._mapped(modality, keys), bool(windowed))
                else:  # the other modality is the big one: this one is joined, as it always was
                    blobs = list(self._blobs(modality, keys))
                    vectors[modality] = _vectors(plan, [b[0] for b in blobs], [b[1] for b in blobs], bool(windowed))
            return rows, vectors

    def _most_rows(self) -> int:
        """The rows of the larger modality, counting every window a long video is to have."""
        counted = self._db.execute(
            "SELECT COALESCE(MAX(n), 0) FROM (SELECT SUM(MAX(windows, 1)) AS n FROM items "
            "WHERE status = 'ok' GROUP BY modality)"
        ).fetchone()[0]
        return int(counted)

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the database (WAL: writers of other processes go on)."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN")
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if outer:
                    self._db.execute("COMMIT")  # nothing was written: only ends the read

    def _mapped(self, modality: str, keys: list[RowKey]) -> tuple[np.ndarray, np.ndarray]:
        """A big modality's ``(vec, raw)`` as mapped files: updated when the rows have changed
        (kept rows copied, the others read), rebuilt from the blobs when the files cannot be used."""
        cache = RowCache(self.folder, modality, json.dumps(self.model_identity(), sort_keys=True))
        digests = row_digests(keys)
        fp = fingerprint(digests)
        opened = cache.open(fp, len(keys))
        if not isinstance(opened, str):
            return opened
        stored = cache.stored()
        if isinstance(stored, str):
            level = logging.INFO if stored == NONE_YET else logging.WARNING
            log.log(level, "%s: %s feature files rebuilt from the library index: %s", self.folder, modality, stored)

        def fetch(wanted: Sequence[int]) -> Iterator[tuple[bytes, bytes]]:
            if len(wanted) == len(keys):
                return self._blobs(modality, keys)  # one pass over the table beats a lookup a row
            return self._blobs_at(modality, [keys[i] for i in wanted])

        vec, raw, kept = cache.write(fp, digests, fetch, None if isinstance(stored, str) else stored)
        if not isinstance(stored, str):
            log.info("%s: %s feature files updated: %d of %d rows kept, %d read from the library index",
                     self.folder, modality, kept, len(keys), len(keys) - kept)  # fmt: skip
        return vec, raw

    def _blobs(self, modality: str, keys: Sequence[RowKey]) -> Iterator[tuple[bytes, bytes]]:
        """``(vec, raw)`` blobs of a modality's rows in ``keys``'s order (all its rows), read a row at a time."""
        cur = self._db.execute(
            "SELECT id, vec, raw FROM items WHERE modality = ? AND status = 'ok' ORDER BY id", (modality,)
        )
        at = 0
        for item_id, vec, raw in cur:
            if at < len(keys) and keys[at][0] == item_id and keys[at][1] >= 0:  # a long video: its windows
                for wvec, wraw in self._db.execute(
                    "SELECT vec, raw FROM windows WHERE item_id = ? ORDER BY idx", (item_id,)
                ):
                    yield bytes(wvec), bytes(wraw)
                    at += 1
            else:
                yield bytes(vec), bytes(raw)
                at += 1
        if at != len(keys):
            raise LibraryIndexError(f"{self.path}: {at} {modality} rows read, {len(keys)} expected")

    def _blobs_at(self, modality: str, keys: Sequence[RowKey]) -> Iterator[tuple[bytes, bytes]]:
        """``(vec, raw)`` blobs of some of a modality's rows, in ``keys``'s order, each looked up."""
        for item_id, window, _, _ in keys:
            if window >= 0:
                row = self._db.execute(
                    "SELECT vec, raw FROM windows WHERE item_id = ? AND idx = ?", (item_id, window)
                ).fetchone()
            else:
                row = self._db.execute(
                    "SELECT vec, raw FROM items WHERE id = ? AND modality = ? AND status = 'ok'", (item_id, modality)
                ).fetchone()
            if row is None:
                raise LibraryIndexError(f"{self.path}: {modality} row {item_id} ({window}) is gone from the index")
            yield bytes(row[0]), bytes(row[1])

    def _load_joined(self) -> tuple[dict[str, StoredItem], dict[str, Vectors]]:
        """:meth:`load` with every modality's blobs joined in memory."""
        with self._lock:
            fetched = self._db.execute(f"SELECT {_ROW_COLUMNS}, vec, raw FROM items ORDER BY id").fetchall()
            windowed = self._db.execute(_WINDOWS.format(blobs=", w.vec, w.raw")).fetchall()
        rows = {r[0]: StoredItem(*r[:12]) for r in fetched}
        vectors = {}
        for modality in ("video", "speech"):
            parts = _searchable_rows(fetched, windowed, modality, blobs=True)
            vectors[modality] = _vectors(parts, [p[5] for p in parts], [p[6] for p in parts], bool(windowed))
        return rows, vectors

    # -- memory banks and their log -----------------------------------------------------------

    def save_banks(self, buffers: dict[str, torch.Tensor]) -> None:
        """Store every memory buffer (bit for bit)."""
        values = []
        for name, t in buffers.items():
            if t.dtype not in _DTYPES:
                raise LibraryIndexError(f"memory buffer {name} has unsupported dtype {t.dtype}")
            a = t.detach().cpu().contiguous().numpy()
            values.append((name, _DTYPES[t.dtype], json.dumps(list(a.shape)), a.tobytes()))
        with self.transaction() as db:
            db.execute("DELETE FROM banks")
            db.executemany("INSERT INTO banks (name, dtype, shape, data) VALUES (?, ?, ?, ?)", values)

    def load_banks(self) -> dict[str, torch.Tensor] | None:
        """The stored memory buffers, or None when none are stored."""
        with self._lock:
            fetched = self._db.execute("SELECT name, dtype, shape, data FROM banks").fetchall()
        if not fetched:
            return None
        return {
            name: torch.from_numpy(np.frombuffer(data, dtype=dtype).reshape(json.loads(shape)).copy())
            for name, dtype, shape, data in fetched
        }

    def log_updates(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Append bank changes (dicts with the columns of ``updates`` but seq/action) as one action.

        Returns:
            Their sequence numbers.
        """
        with self.transaction() as db:
            action = int(db.execute("SELECT COALESCE(MAX(action), 0) + 1 FROM updates").fetchone()[0])
            seqs = []
            for r in rows:
                cur = db.execute(
                    "INSERT INTO updates (action, slot, kind, video_id, speech_id, time, query_source, m2, step) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        action,
                        r["slot"],
                        r["kind"],
                        r["video_id"],
                        r["speech_id"],
                        r["time"],
                        r["query_source"],
                        r["m2"],
                        r["step"],
                    ),
                )
                seqs.append(int(cur.lastrowid or 0))
        return seqs

    def delete_updates(self, seqs: Iterable[int]) -> None:
        """Remove logged changes (an undone action)."""
        with self.transaction() as db:
            db.executemany("DELETE FROM updates WHERE seq = ?", [(s,) for s in seqs])

    def updates(self) -> list[LogRow]:
        """The whole log, oldest first."""
        with self._lock:
            cur = self._db.execute(
                "SELECT seq, action, slot, kind, video_id, speech_id, time, query_source, m2, step "
                "FROM updates ORDER BY seq"
            )
            return [LogRow(*r) for r in cur]

    def integrity_check(self) -> str:
        """SQLite's own consistency check: 'ok' when the file is sound."""
        with self._lock:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])


def _searchable_rows(fetched: Sequence[Any], windowed: Sequence[Any], modality: str, blobs: bool) -> list[Any]:
    """A modality's searchable rows in the index's order: a clip's own, or its windows in order.

    Each is ``(id, window position or -1, start, end, background)``, then ``vec, raw`` with
    ``blobs`` (the items' rows then end with their vec and raw columns, as the windows' do).
    """
    by_item: dict[str, list[Any]] = {}
    for w in windowed:
        by_item.setdefault(w[0], []).append(tuple(w))
    out: list[Any] = []
    for r in fetched:
        if r[2] != modality or r[9] != "ok":
            continue
        if r[11] and r[0] in by_item:
            out += by_item[r[0]]
        else:
            out.append((r[0], -1, np.nan, np.nan, None, *(r[12:14] if blobs else ())))
    return out


def _vectors(
    plan: Sequence[Any], vec: np.ndarray | Sequence[bytes], raw: np.ndarray | Sequence[bytes], windowed: bool
) -> Vectors:
    """A modality's :class:`Vectors` from its :func:`_searchable_rows` and their features: arrays
    (mapped files), or one blob per row, joined once and viewed as one matrix (no per-row array)."""
    if not plan:
        return Vectors([], np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32))

    def matrix(rows: np.ndarray | Sequence[bytes]) -> np.ndarray:
        if isinstance(rows, np.ndarray):
            return rows
        return np.frombuffer(b"".join(rows), dtype=np.float32).reshape(len(plan), -1)

    spans = np.array([(p[2], p[3]) for p in plan], dtype=np.float64) if windowed else None
    background = np.array([np.nan if p[4] is None else p[4] for p in plan]) if windowed else None
    return Vectors([p[0] for p in plan], matrix(raw), matrix(vec), spans, background)


__all__ = ["SCHEMA_VERSION", "STATUSES", "Store"]
