"""`fmn bench` stage `ann`: approximate search at the sizes archives reach.

Uniform random vectors are searched unlike real ones (no approximate index does well on them), so the
library's vectors are drawn around real ones: the shipped demo library is indexed with the model,
and each synthetic item is one of its video vectors moved away from it by noise shaped like the
spread within a class (a per-dimension profile of the residuals from the class means), by a
cosine drawn from the cosines real videos of one class have to each other. The queries are the
demo library's real speech vectors. Recall@10 is measured against the exact top 10 of the same
vectors; latency for the index alone, for the search step (index, then S on the rows it found, as
``Retriever.search`` times itself) and end to end (a spoken query, file to ranked list).

Nothing of a size is held in memory whole but the index, so that the figures are the index's and
10M rows fit beside it: the drawn vectors are written to a float16 file in the work folder (5 GB
at 10M rows) and read from it a block at a time, for the exact top 10 (a running top 10 per
query), the timed exact scan and the index's build (the product's ``AnnIndex.sync``, handed the
file mapped in memory). The exact top 10 is that of the float16 values, computed in float32. The
retriever timed end to end gets the same mapped file as its vectors: with an index it never reads
them to search, and its raw features are a pool of rows, as in the other synthetic benches.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch

from fmn_core.index.ann import AnnIndex, row_keys
from fmn_core.index.ranking import Collection, nearest_rows
from fmn_core.index.results import Query
from fmn_core.index.retriever import RERANK, Retriever
from fmn_core.index.synthetic import speech_wav, synthetic_retriever
from fmn_core.inference import REPO_ROOT, FMNModel

Log = Callable[[str], None]
_CHUNK = 100_000  # synthetic rows drawn at a time
SCAN_BLOCK = 1_000_000  # rows read from the file at a time (1 GB as float32): the exact passes' memory
_PRODUCT_ROWS = 250_000  # rows of one (queries x rows) similarity product in the exact top 10 (200 MB)


def real_vectors(model: FMNModel, work: Path, log: Log) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(video vectors, their labels, speech vectors, speech raw features)`` of the demo library,
    indexed here with ``model``."""
    library = work / "demo"
    shutil.copytree(REPO_ROOT / "assets" / "demo", library, ignore=shutil.ignore_patterns(".fmn-index"))
    log("indexing the demo library for real vectors ...")
    r = Retriever.open(library, model)
    try:
        rows, vectors = r.store.load() if r.store is not None else ({}, {})
    finally:
        r.close()
    video, speech = vectors["video"], vectors["speech"]
    if not len(video.ids) or not len(speech.ids):
        raise RuntimeError(f"the demo library gave no vectors to draw from: {r.report.failed[:3]}")
    labels = np.array([rows[i].label or "" for i in video.ids])
    as32 = [np.asarray(a, np.float32) for a in (video.vec, speech.vec, speech.raw)]
    return as32[0], labels, as32[1], as32[2]


def shaped_vectors(real: np.ndarray, labels: np.ndarray, n: int, seed: int = 0) -> Iterator[np.ndarray]:
    """``n`` unit vectors around ``real`` ones, in chunks (see the module docstring)."""
    means = {c: real[labels == c].mean(axis=0) for c in set(labels.tolist())}
    residuals = np.stack([v - means[c] for v, c in zip(real, labels.tolist(), strict=True)])
    profile = residuals.std(axis=0)
    profile /= np.sqrt((profile**2).sum())
    cos = real @ real.T
    same = (labels[:, None] == labels[None, :]) & ~np.eye(len(real), dtype=bool)
    targets = np.clip(cos[same], 0.3, 0.999)
    for start in range(0, n, _CHUNK):
        rng = np.random.default_rng([seed, start])
        m = min(_CHUNK, n - start)
        source = real[rng.integers(0, len(real), m)]
        spread = np.sqrt(1 / rng.choice(targets, m) ** 2 - 1)[:, None]
        x = source + spread * profile * rng.standard_normal((m, real.shape[1]))
        yield (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def write_rows(chunks: Iterable[np.ndarray], path: Path, dim: int) -> np.memmap:
    """Rows given a chunk at a time written to ``path`` as float16, and the file mapped read-only."""
    n = 0
    with path.open("wb") as f:
        for chunk in chunks:
            f.write(np.ascontiguousarray(chunk, dtype=np.float16).tobytes())
            n += len(chunk)
    return np.memmap(path, dtype=np.float16, mode="r", shape=(n, dim))


def float_blocks(vecs: np.ndarray, rows: int = SCAN_BLOCK) -> Iterator[np.ndarray]:
    """``vecs`` as float32 copies of ``rows`` rows at a time, in order."""
    for start in range(0, len(vecs), rows):
        yield np.asarray(vecs[start : start + rows], dtype=np.float32)


def exact_top(blocks: Iterable[np.ndarray], queries: np.ndarray, k: int) -> np.ndarray:
    """``(Q, k)`` rows of the exact top ``k`` by inner product, best first, over rows given a block
    at a time in order (a running top ``k`` per query: memory does not grow with the rows)."""
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    offset = 0
    for block in blocks:
        for start in range(0, len(block), _PRODUCT_ROWS):
            sims = queries @ block[start : start + _PRODUCT_ROWS].T
            idx = np.argpartition(-sims, min(k, sims.shape[1]) - 1, axis=1)[:, :k]
            all_s = np.concatenate([best_s, np.take_along_axis(sims, idx, 1)], axis=1)
            all_i = np.concatenate([best_i, idx + offset + start], axis=1)
            order = np.argsort(-all_s, axis=1, kind="stable")[:, :k]
            best_s, best_i = np.take_along_axis(all_s, order, 1), np.take_along_axis(all_i, order, 1)
        offset += len(block)
    return best_i


def _scan_seconds(vecs: np.ndarray, queries: np.ndarray) -> list[float]:
    """Per query, the exact cosine stage the index replaces (``nearest_rows``) over every row, timed
    a block of float32 rows in memory at a time and summed (the few-row merge of the blocks' picks,
    negligible, is not timed): at 10M rows the float32 vectors (9.5 GiB) are not held whole beside the index."""
    seconds = np.zeros(len(queries))
    for block in float_blocks(vecs):
        held = Collection([], block, None)
        keep = min(RERANK, len(block))
        for i, q in enumerate(queries):
            t0 = time.perf_counter()
            nearest_rows(held, q, keep)
            seconds[i] += time.perf_counter() - t0
    return seconds.tolist()


def _status_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (0 where there is none)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next((int(line.split()[1]) / 1024 for line in f if line.startswith(field + ":")), 0.0)
    except OSError:
        return 0.0


class PeakRss:
    """The process's resident memory at its highest while the ``with`` block runs, sampled every
    0.1 s: all of it (VmRSS) and its own (RssAnon, without the pages of mapped files, which the
    kernel drops and reads again as it needs; a bench reading a 5 GB file mapped would otherwise
    count it as the index's)."""

    def __init__(self) -> None:
        self.peak_mib = self.peak_anon_mib = 0.0
        self._running = False
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.peak_mib = max(self.peak_mib, _status_mib("VmRSS"))
            self.peak_anon_mib = max(self.peak_anon_mib, _status_mib("RssAnon"))
            if not self._running:
                return
            time.sleep(0.1)

    def __enter__(self) -> PeakRss:
        self._running = True
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._running = False
        self._thread.join()


def _percentiles(seconds: list[float]) -> dict[str, float]:
    return {"p50_ms": 1000 * float(np.percentile(seconds, 50)), "p95_ms": 1000 * float(np.percentile(seconds, 95))}


def _time_retriever(
    r: Retriever, raw_queries: np.ndarray, wav: Path, runs: int = 30
) -> tuple[dict[str, float], dict[str, float]]:
    """The search step (``SearchResult.seconds``: the index, S on the rows found, the hits) over real
    speech queries' features, and end to end (a spoken file encoded, then searched) ``runs`` times."""
    queries = [Query("speech", torch.from_numpy(raw.copy()), "bench") for raw in raw_queries]
    for q in queries[:3]:
        r.search(q, top=10)
    step = [r.search(q, top=10).seconds for q in queries]
    for _ in range(3):
        r.search(r.query_from_file(wav), top=10)
    total = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r.search(r.query_from_file(wav), top=10)
        total.append(time.perf_counter() - t0)
    return _percentiles(step), _percentiles(total)


def bench_ann(
    sizes: tuple[int, ...], model: FMNModel, work: Path, log: Log, queries: int = 200
) -> list[dict[str, Any]]:
    """Build, recall@10 against exact, latency and memory of the approximate index at each size.

    Recall@10 is the product's: the index's best ``RERANK`` rows re-ranked by their exact cosine,
    against the exact top 10.
    """
    real, labels, speech, speech_raw = real_vectors(model, work, log)
    rng = np.random.default_rng(7)
    picked = rng.integers(0, len(speech), queries)
    q, q_raw = speech[picked], speech_raw[picked]
    wav = speech_wav(work / "ann-query.wav")
    out = []
    for n in sizes:
        log(f"approximate search over {n:,} vectors shaped like real ones ...")
        path = work / f"ann-{n}.f16"
        t0 = time.perf_counter()
        vecs = write_rows(shaped_vectors(real, labels, n), path, real.shape[1])
        t1 = time.perf_counter()
        exact = exact_top(float_blocks(vecs), q, 10)
        drawn, exact_seconds = t1 - t0, time.perf_counter() - t1
        scan = _scan_seconds(vecs, q)
        log(f"  drawn in {drawn:.0f} s, exact top 10 in {exact_seconds:.0f} s, exact scan p50 {np.median(scan):.3f} s")
        anon_before = _status_mib("RssAnon")
        ann = AnnIndex(vecs.shape[1], "bench")
        with PeakRss() as build_rss:
            start = time.perf_counter()
            keys = row_keys([f"v{i}" for i in range(n)], {})  # as Retriever.reload does before syncing
            keyed = time.perf_counter()
            ann.sync(keys, vecs)
            build = time.perf_counter() - start
        anon_index = _status_mib("RssAnon") - anon_before
        graph, recall = [], []
        with PeakRss() as search_rss:
            for i, query in enumerate(q):
                t0 = time.perf_counter()
                rows = ann.search(query, RERANK)
                graph.append(time.perf_counter() - t0)
                top10 = rows[np.argsort(-(np.asarray(vecs[rows], np.float32) @ query))[:10]]  # the 200, re-ranked
                recall.append(len(set(top10.tolist()) & set(exact[i].tolist())) / 10)
            r = synthetic_retriever(model, n, vecs=vecs)  # the mapped file: never read with an index
            r._collections["video"].ann = ann
            step, total = _time_retriever(r, q_raw, wav)
        timing = _percentiles(graph)
        out.append({
            "size": n, "build_seconds": build, "graph_mib": ann.memory_bytes() / 2**20,
            "bytes_per_row": ann.memory_bytes() / n, "index_rss_mib": anon_index,
            "recall_at_10": float(np.mean(recall)), "graph": timing, "exact_scan": _percentiles(scan),
            "search_step": step, "end_to_end": total, "draw_seconds": drawn, "exact_top_seconds": exact_seconds,
            "keys_seconds": keyed - start,
            "rss": {
                "build_peak_mib": build_rss.peak_mib, "build_peak_anon_mib": build_rss.peak_anon_mib,
                "search_peak_mib": search_rss.peak_mib, "search_peak_anon_mib": search_rss.peak_anon_mib,
            },
        })  # fmt: skip
        log(
            f"  built in {build:.0f} s ({ann.memory_bytes() / 2**20:.0f} MiB, {anon_index:.0f} MiB resident), "
            f"recall@10 {np.mean(recall):.3f}, index p50 {timing['p50_ms']:.1f} ms, "
            f"search step p50 {step['p50_ms']:.1f} ms, end to end p50 {total['p50_ms']:.1f} ms, "
            f"peak RSS {build_rss.peak_mib:.0f} MiB (own {build_rss.peak_anon_mib:.0f})"
        )
        del r, ann, vecs, keys
        path.unlink()
    return out


__all__ = ["PeakRss", "bench_ann", "exact_top", "float_blocks", "real_vectors", "shaped_vectors", "write_rows"]
