"""Peak memory of opening a big library's features: joined blobs against mapped files (issue 15).

    python -m fmn_core.index.bench_open WORK --rows 200000

builds (once) an index of ``--rows`` video clips with random features of the shipped widths
(common space 256, raw 512; no previews: loading never reads them), then loads it in fresh
processes, each printing its peak resident memory: joined (``Store.load()``, as before), mapped
with the files rebuilt from SQLite (the first open, or after a change), and mapped from the files
(every later open); then it writes ``--change`` items again (new features, spread over the
library, as re-indexing changed files does) and loads once more: the files are updated, reading
only those rows from SQLite.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from fmn_core.index.records import ItemRecord, StoredItem
from fmn_core.index.store import Store

E, D = 256, 512  # the shipped model's common space and raw video features
_BATCH = 10_000


def _write(store: Store, numbers: np.ndarray, rng: np.random.Generator) -> None:
    """Write clips ``v<number>`` with random unit vectors (again, if they exist: new features)."""
    n = len(numbers)
    vec = rng.standard_normal((n, E), dtype=np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    raw = rng.standard_normal((n, D), dtype=np.float32)
    store.write_items([
        ItemRecord(StoredItem(f"v{k:09d}", f"v{k:09d}.mp4", "video", 1, 1, f"{k:x}-{rng.integers(1 << 30)}",
                              5.0, None, None, "ok", None), None, raw[i], vec[i])
        for i, k in enumerate(numbers.tolist())
    ])  # fmt: skip


def build(work: Path, rows: int) -> None:
    """An index of ``rows`` ok video clips with random unit vectors."""
    rng = np.random.default_rng(0)
    (work / "index").mkdir(parents=True)
    with Store(work / "lib", work / "index") as store:
        store.set_meta("model", json.dumps({"bench": "open"}))
        for start in range(0, rows, _BATCH):
            _write(store, np.arange(start, min(start + _BATCH, rows)), rng)


def change(work: Path, rows: int, count: int) -> None:
    """Write ``count`` of the ``rows`` clips again, spread evenly over the library."""
    with Store(work / "lib", work / "index") as store:
        _write(store, np.linspace(0, rows - 1, count).astype(np.int64), np.random.default_rng(1))


def measure(work: Path, mode: str) -> None:
    """Load once (``mode``: joined or mapped) and print seconds and peak RSS."""
    started = time.perf_counter()
    with Store(work / "lib", work / "index") as store:
        _, vectors = store.load(map_above=None if mode == "joined" else 0)
        n = len(vectors["video"].ids)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    # Resident now, the process's own memory and pages of mapped files (which the kernel can drop).
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    anon, mapped = (int(status[k].split()[0]) / 2**20 for k in ("RssAnon", "RssFile"))
    print(f"{mode:>8}: {n:,} rows, {time.perf_counter() - started:.1f} s, peak RSS {peak:.2f} GiB; "
          f"after: own {anon:.2f} GiB, file pages {mapped:.2f} GiB", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--no-joined", action="store_true", help="skip the joined load (6.6 GB a million rows)")
    parser.add_argument("--change", type=int, default=1000, help="items written again before the last load")
    parser.add_argument("--measure", choices=("joined", "mapped"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.work, args.measure)
        return
    if not (args.work / "index").is_dir():
        started = time.perf_counter()
        build(args.work, args.rows)
        print(f"built {args.rows:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
    for path in (args.work / "index").glob("rows-*"):
        path.unlink()  # the first mapped open rebuilds the files, the second reads them
    size = sum(p.stat().st_size for p in (args.work / "index").glob("index.sqlite*"))
    print(f"index: {size / 2**30:.2f} GiB (free disk {shutil.disk_usage(args.work).free / 2**30:.0f} GiB)")
    this = [sys.executable, "-m", "fmn_core.index.bench_open", str(args.work), "--measure"]
    for mode in ("mapped",) if args.no_joined else ("joined", "mapped"):
        subprocess.run([*this, mode], check=True)
    print("(again, from the files)", flush=True)
    subprocess.run([*this, "mapped"], check=True)
    if args.change:
        change(args.work, args.rows, args.change)
        print(f"(after {args.change:,} items were written again: the files updated)", flush=True)
        subprocess.run([*this, "mapped"], check=True)


if __name__ == "__main__":
    main()
