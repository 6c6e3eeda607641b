"""`fmn bench` stage `ray`: indexing on a local Ray with one worker and with more.

The same rendered clips (4 s, 320x240, as the `indexing` stage's) are indexed from scratch once
per worker count, on one local Ray that has as many CPUs as the most workers asked for, so each
run has the same cluster and only the number of actors encoding at once changes. Each run is
timed from the start of the indexing run to the last merged shard (actors starting and loading
the model included), and in its steady state: from the first merged shard to the last, the rate a
long run sees once its actors are up. Ray's own start-up is reported apart.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fmn_core.index.identity import model_identity
from fmn_core.index.location import INDEX_DIRNAME
from fmn_core.index.ray_index import RayIndexer, ray_cluster
from fmn_core.index.store import Store
from fmn_core.index.synthetic import render_clips
from fmn_core.inference import FMNModel

Log = Callable[[str], None]


def bench_ray(
    clips: int,
    workers: Sequence[int],
    model_path: Path,
    work: Path,
    log: Log,
    clip_seconds: float = 4.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Index ``clips`` rendered clips on a local Ray once per worker count of ``workers``.

    Returns:
        The figures: per run its seconds, clips/s cold and steady; the steady speed-up of the
        most workers over the fewest.

    Raises:
        RuntimeError: a clip failed to index (the figures would not be comparable).
    """
    library = work / "ray-clips"
    log(f"rendering {clips} clips of {clip_seconds:.0f} s for the Ray stage ...")
    render_clips(library, clips, clip_seconds, seed)
    start = time.perf_counter()
    with ray_cluster("local", cpus=max(workers)) as cluster:
        ray_start = time.perf_counter() - start
        runs = []
        for n in workers:
            shutil.rmtree(library / INDEX_DIRNAME, ignore_errors=True)
            log(f"indexing {clips} clips on {cluster.describe()}, {n} worker(s) ...")
            runs.append(_one_run(library, model_path, n, clips))
            log(f"  {runs[-1]['clips_per_second']:.2f} clips/s ({runs[-1]['seconds']:.1f} s)")
    first, last = runs[0], runs[-1]
    steady = (last["steady_clips_per_second"] or 0) / (first["steady_clips_per_second"] or float("inf"))
    return {
        "clips": clips,
        "clip_seconds": clip_seconds,
        "cpus": cluster.cpus,
        "ray_start_seconds": ray_start,
        "runs": runs,
        "speedup": last["clips_per_second"] / first["clips_per_second"],
        "steady_speedup": steady or None,
    }


def _one_run(library: Path, model_path: Path, workers: int, clips: int) -> dict[str, Any]:
    model = FMNModel.load(model_path)
    store = Store(library)
    try:
        store.attach_model(model_identity(model, store), model.net.memory.snapshot())
        merged: list[tuple[float, int]] = []  # (time, clips merged)
        start = time.perf_counter()
        report = RayIndexer(store, model, workers=workers).run(
            progress=lambda done, total: merged.append((time.perf_counter(), done))
        )
        seconds = time.perf_counter() - start
    finally:
        store.close()
    if report.failed or report.added != clips:
        raise RuntimeError(f"benchmark clips failed to index on Ray: {report.summary()} {report.failed[:3]}")
    done = [(t, n) for t, n in merged if n > 0]
    steady = (done[-1][1] - done[0][1]) / (done[-1][0] - done[0][0]) if len(done) > 1 else None
    return {"workers": workers, "seconds": seconds, "clips_per_second": clips / seconds,
            "steady_clips_per_second": steady}  # fmt: skip


__all__ = ["bench_ray"]
