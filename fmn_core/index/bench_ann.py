"""`fmn bench` stage `ann`: approximate search at the sizes archives reach.

Uniform random vectors are searched unlike real ones (no approximate index does well on them), so the
library's vectors are drawn around real ones: the shipped demo library is indexed with the model,
and each synthetic item is one of its video vectors moved away from it by noise shaped like the
spread within a class (a per-dimension profile of the residuals from the class means), by a
cosine drawn from the cosines real videos of one class have to each other. The queries are the
demo library's real speech vectors. Recall@10 is measured against the exact top 10 of the same
vectors; latency both for the index alone and end to end (a spoken query, file to ranked list).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fmn_core.index.ann import AnnIndex, row_keys
from fmn_core.index.ranking import Collection, nearest_rows
from fmn_core.index.retriever import RERANK, Retriever
from fmn_core.index.synthetic import speech_wav, synthetic_retriever
from fmn_core.inference import REPO_ROOT, FMNModel

Log = Callable[[str], None]
_CHUNK = 100_000  # synthetic rows drawn at a time


def real_vectors(model: FMNModel, work: Path, log: Log) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(video vectors, their labels, speech vectors)`` of the demo library, indexed here with ``model``."""
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
    return np.asarray(video.vec, np.float32), labels, np.asarray(speech.vec, np.float32)


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


def _exact_top(vecs: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """``(Q, k)`` rows of the exact top ``k`` by inner product, scanned in chunks."""
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    for start in range(0, len(vecs), 250_000):
        sims = queries @ vecs[start : start + 250_000].T
        idx = np.argpartition(-sims, min(k, sims.shape[1]) - 1, axis=1)[:, :k]
        all_s = np.concatenate([best_s, np.take_along_axis(sims, idx, 1)], axis=1)
        all_i = np.concatenate([best_i, idx + start], axis=1)
        order = np.argsort(-all_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(all_s, order, 1), np.take_along_axis(all_i, order, 1)
    return best_i


def _percentiles(seconds: list[float]) -> dict[str, float]:
    return {"p50_ms": 1000 * float(np.percentile(seconds, 50)), "p95_ms": 1000 * float(np.percentile(seconds, 95))}


def bench_ann(
    sizes: tuple[int, ...], model: FMNModel, work: Path, log: Log, queries: int = 200
) -> list[dict[str, Any]]:
    """Build, recall@10 against exact, latency and memory of the approximate index at each size.

    Recall@10 is the product's: the index's best ``RERANK`` rows re-ranked by their exact cosine,
    against the exact top 10.
    """
    real, labels, speech = real_vectors(model, work, log)
    rng = np.random.default_rng(7)
    q = speech[rng.integers(0, len(speech), queries)]
    out = []
    for n in sizes:
        log(f"approximate search over {n:,} vectors shaped like real ones ...")
        vecs = np.empty((n, real.shape[1]), np.float32)  # filled in place: no second copy at 10M rows
        filled = 0
        for chunk in shaped_vectors(real, labels, n):
            vecs[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        exact = _exact_top(vecs, q, 10)
        ann = AnnIndex(vecs.shape[1], "bench")
        start = time.perf_counter()
        ann.sync(row_keys([f"v{i}" for i in range(n)], {}), vecs)
        build = time.perf_counter() - start
        graph, scan, recall = [], [], []
        probe = Collection([], vecs, None)
        for i, query in enumerate(q):
            t0 = time.perf_counter()
            rows = ann.search(query, RERANK)
            t1 = time.perf_counter()
            nearest_rows(probe, query, RERANK)
            scan.append(time.perf_counter() - t1)
            graph.append(t1 - t0)
            top10 = rows[np.argsort(-(vecs[rows] @ query))[:10]]  # the index's 200, re-ranked exactly
            recall.append(len(set(top10.tolist()) & set(exact[i].tolist())) / 10)
        r = synthetic_retriever(model, n, vecs=vecs)
        r._collections["video"].ann = ann
        wav = speech_wav(work / "ann-query.wav")
        for _ in range(3):
            r.search(r.query_from_file(wav), top=10)
        total = []
        for _ in range(30):
            t0 = time.perf_counter()
            r.search(r.query_from_file(wav), top=10)
            total.append(time.perf_counter() - t0)
        timing = _percentiles(graph)
        out.append({
            "size": n, "build_seconds": build, "graph_mib": ann.memory_bytes() / 2**20,
            "recall_at_10": float(np.mean(recall)), "graph": timing, "exact_scan": _percentiles(scan),
            "end_to_end": _percentiles(total),
        })  # fmt: skip
        log(f"  built in {build:.0f} s, recall@10 {np.mean(recall):.3f}, index p50 {timing['p50_ms']:.1f} ms")
        del r, ann, vecs
    return out


__all__ = ["bench_ann", "real_vectors", "shaped_vectors"]
