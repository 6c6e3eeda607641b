"""`fmn bench`: how fast the library index and search are, and how much memory they take.

Figures (each in the JSON and the table):

- indexing throughput: rendered 4 s cooking clips (the corpus renderer, 320x240) decoded and
  encoded with the model's compact I3D, from a cold start (worker start-up included);
- re-opening an indexed 10k-item library: ``Retriever.open`` end to end (model load, scan of the
  folder, comparison with the index, reading every vector), files unchanged;
- speech-query latency end to end (a 1.5 s WAV file -> MFCC -> Bi-LSTM -> ranked list of 10) at
  several library sizes; the ranked videos are synthetic vectors (their cost is that of real
  ones: the same matrix product, the same S re-ranking);
- per-query encoding latency of the model: a 3 s spoken phrase and a 4 s clip, file to
  common-space vector (``eval.latency``), on the CPU and, when there is one, on CUDA;
- finding a library's files (``scan_library``) in a folder of 10k media files and in one of 1M
  other files, and one look of the library watcher (``library_signature``);
- long videos: indexing a rendered recipe video repeated to several lengths (as windows), each
  run in a fresh process so that its peak memory (the indexing process's and its largest
  decoding worker's) is its own; and a spoken query's moments over 100 hours of indexed windows
  (synthetic vectors, as above);
- indexing on a local Ray with 1 and 2 workers, the same rendered clips (``index.bench_ray``);
- peak resident memory of the process after each stage (``resource.getrusage``).

The shipped model is used when present, else a random model of the default configuration (the
speed of a network does not depend on its weights); the output says which.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmn_core.errors import FmnError
from fmn_core.eval.latency import encode_latency
from fmn_core.index.identity import model_identity
from fmn_core.index.indexer import Indexer
from fmn_core.index.retriever import Retriever
from fmn_core.index.store import Store
from fmn_core.index.synthetic import (
    build_synthetic_library,
    render_clips,
    speech_wav,
    synthetic_retriever,
)
from fmn_core.inference import DEFAULT_MODEL_DIR, FMNModel

Log = Callable[[str], None]


@dataclass(frozen=True)
class BenchConfig:
    """What to measure."""

    clips: int = 24  # rendered clips indexed for the throughput figure
    clip_seconds: float = 4.0  # their duration
    jobs: int | None = None  # decoding processes (default: all cores)
    reopen_items: int = 10_000  # items of the library re-opened
    reopen_repeats: int = 3  # re-opens timed (the median is reported)
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)  # videos ranked per speech query
    queries: int = 50  # queries timed per size (fewer, at least 20, above 100k)
    query_threads: tuple[int, ...] = (1, 2)  # Retriever.query_threads settings compared (1: its default)
    encode_runs: int = 20  # timed encodings of each query kind
    scan_media: int = 10_000  # media files of the folder scanned and watched
    scan_other: int = 1_000_000  # other files of the folder that holds no media
    long_copies: tuple[int, ...] = (1, 8, 38)  # a ~95 s recipe repeated: ~1.5 min, ~13 min, ~1 hour
    small_recipe: bool = False  # a two-step recipe at 96x72 instead (smoke runs)
    moment_hours: float = 100.0  # indexed video a moment query searches (windows at the model's hop)
    moment_queries: int = 30
    ann_sizes: tuple[int, ...] = (1_000_000,)  # vectors the approximate search index is measured over
    ray_clips: int = 500  # rendered clips indexed on a local Ray (0: skip the stage)
    ray_workers: tuple[int, ...] = (1, 2)  # Ray workers compared on them
    seed: int = 0

    @classmethod
    def quick(cls) -> BenchConfig:
        """A smoke run: a few clips, small libraries, few repeats."""
        return cls(
            clips=4, reopen_items=2_000, reopen_repeats=2, sizes=(1_000, 10_000), queries=10, query_threads=(1,),
            encode_runs=3, scan_media=1_000, scan_other=10_000, long_copies=(1, 2), small_recipe=True,
            moment_hours=1.0,
            moment_queries=5,
            ann_sizes=(20_000,),
            ray_clips=8,
        )  # fmt: skip

    def with_sizes(self, sizes: Sequence[int]) -> BenchConfig:
        """The same with other library sizes."""
        return dataclasses.replace(self, sizes=tuple(sizes))


@dataclass
class BenchResult:
    """Every figure, JSON-ready."""

    data: dict[str, Any] = field(default_factory=dict)

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write the figures as JSON."""
        Path(path).write_text(json.dumps(self.data, indent=2) + "\n", encoding="utf-8")

    def table(self) -> str:
        """The figures as a readable table."""
        d = self.data
        lines = [
            f"model: {d['model']}",
            f"machine: {d['machine']['cpus']} CPUs, torch {d['machine']['torch_threads']} threads, "
            f"load average at start {d['machine']['load_average'][0]:.2f}",
            "",
            "| what | figure |",
            "| --- | --- |",
            *_indexing_lines(d),
        ]
        for q in d.get("query", []):
            lines.append(
                f"| speech query -> top 10 of {q['size']:,} videos, end to end, {q['threads']} torch thread(s) "
                f"| p50 {q['p50_ms']:.1f} ms, "
                f"p95 {q['p95_ms']:.1f} ms (ranking alone p50 {q['rank_p50_ms']:.1f} ms) |"
            )
        for device, figures in d.get("encode", {}).items():
            for what, f in figures.items():
                figure = f"p50 {f['p50_ms']:.1f} ms, p95 {f['p95_ms']:.1f} ms"
                lines.append(f"| encode {what.replace('_', ' ')} on {device} | {figure} |")
        sc = d.get("scan")
        if sc:
            lines += [
                f"| scan a folder of {sc['media']:,} media files | {sc['media_seconds']:.3f} s; one watcher look "
                f"{sc['look_seconds']:.3f} s |",
                f"| scan a folder of {sc['other']:,} other files (no media) | {sc['other_seconds']:.2f} s |",
            ]
        mo = d.get("moments")
        if mo:
            for run in mo["indexing"]:
                lines.append(
                    f"| index a {run['video_seconds'] / 60:.1f} min video as {run['windows']:,} windows "
                    f"({run['jobs']} decoding processes) | {run['realtime']:.1f}x real time ({run['seconds']:.1f} s); "
                    f"peak RSS {run['rss_main_mib']:.0f} MiB, largest worker {run['rss_worker_mib']:.0f} MiB |"
                )
                tenths = [t for t in run.get("rss_by_tenth_mib") or [] if t is not None]
                if tenths:
                    lines.append(
                        f"| ... its peak RSS in each tenth of the video | {', '.join(f'{t:.0f}' for t in tenths)} MiB |"
                    )
            q = mo["query"]
            lines.append(
                f"| speech query -> top 10 moments of {q['hours']:g} h of video ({q['windows']:,} windows) "
                f"| p50 {q['p50_ms']:.1f} ms, p95 {q['p95_ms']:.1f} ms (ranking alone p50 {q['rank_p50_ms']:.1f} ms) |"
            )
        for a in d.get("ann") or []:
            lines.append(
                f"| approximate search over {a['size']:,} vectors | built in {a['build_seconds']:.0f} s, "
                f"{a['graph_mib']:.0f} MiB (peak RSS {a['rss']['build_peak_mib']:.0f} MiB); "
                f"recall@10 {a['recall_at_10']:.3f}; index search p50 {a['graph']['p50_ms']:.1f} ms, "
                f"p95 {a['graph']['p95_ms']:.1f} ms (exact scan {a['exact_scan']['p50_ms']:.1f} ms); "
                f"search step p50 {a['search_step']['p50_ms']:.1f} ms, p95 {a['search_step']['p95_ms']:.1f} ms; "
                f"end to end p50 {a['end_to_end']['p50_ms']:.1f} ms, p95 {a['end_to_end']['p95_ms']:.1f} ms |"
            )
        lines += _ray_lines(d.get("ray"))
        lines.append(f"| peak memory (max RSS) | {d['peak_rss_mib']:.0f} MiB |")
        return "\n".join(lines)


def _indexing_lines(d: dict[str, Any]) -> list[str]:
    """Table rows of the local indexing and re-opening stages (those that ran)."""
    lines = []
    ix, ro = d.get("indexing"), d.get("reopen")
    if ix:
        steady = ix["steady_clips_per_second"]
        lines.append(
            f"| indexing, {ix['clips']} x {ix['clip_seconds']:.0f} s clips ({ix['jobs']} decoding processes) "
            f"| {ix['clips_per_second']:.2f} clips/s ({ix['seconds']:.1f} s from a cold start"
            + (f"; {steady:.2f} clips/s after the first batch" if steady else "")
            + ") |"
        )
    if ro:
        lines.append(
            f"| re-open a {ro['items']}-item library (median of {ro['repeats']}) | {ro['seconds_median']:.3f} s "
            f"(model load {ro['model_load_seconds']:.3f} s) |"
        )
    return lines


def _ray_lines(ray: dict[str, Any] | None) -> list[str]:
    """Table rows of the `ray` stage."""
    if not ray:
        return []
    lines = []
    for run in ray["runs"]:
        steady = run["steady_clips_per_second"]
        lines.append(
            f"| indexing on a local Ray ({ray['cpus']} CPUs), {ray['clips']} x {ray['clip_seconds']:.0f} s clips, "
            f"{run['workers']} worker(s) | {run['clips_per_second']:.2f} clips/s ({run['seconds']:.1f} s"
            + (f"; {steady:.2f} clips/s once its workers are up" if steady else "")
            + ") |"
        )
    steady_speedup = f", {ray['steady_speedup']:.2f}x once up" if ray["steady_speedup"] else ""
    lines.append(
        f"| ... most workers against one | {ray['speedup']:.2f}x{steady_speedup} "
        f"(Ray itself started in {ray['ray_start_seconds']:.1f} s) |"
    )
    return lines


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _load_model(model: str | os.PathLike[str] | None, work: Path, log: Log) -> tuple[FMNModel, Path, str]:
    """The model to measure with, saved to a file (re-opening hashes and loads it like a real one)."""
    if model is not None or (DEFAULT_MODEL_DIR / "model.safetensors").is_file():
        m = FMNModel.load(model)
        assert m.path is not None
        return m, m.path, f"{m.name} ({m.path})"
    from fmn_core.models import create_fmn

    try:  # the configuration `fmn train` builds by default (speech frames stacked by 3)
        from fmn_core.training.train_config import DEFAULT_FMN as cfg
    except ImportError:
        from fmn_core.models import FMNConfig

        cfg = FMNConfig()
    log("no shipped model yet: measuring with a random model of the default configuration")
    torch.manual_seed(0)
    m = FMNModel(create_fmn(cfg).eval(), cfg)
    path = m.save(work / "random-model")
    return FMNModel.load(path), path, "random model of the default configuration (no shipped model yet)"


def bench_indexing(cfg: BenchConfig, model: FMNModel, work: Path, log: Log) -> dict[str, Any]:
    """Render clips into a fresh library and time indexing them."""
    library = work / "clips"
    log(f"rendering {cfg.clips} clips of {cfg.clip_seconds:.0f} s ...")
    render_clips(library, cfg.clips, cfg.clip_seconds, cfg.seed)
    store = Store(library)
    store.attach_model(model_identity(model, store), model.net.memory.snapshot())
    indexer = Indexer(store, model, jobs=cfg.jobs)
    commits: list[tuple[float, int]] = []  # (time, clips committed)
    log("indexing ...")
    start = time.perf_counter()
    report = indexer.run(progress=lambda done, total: commits.append((time.perf_counter(), done)))
    seconds = time.perf_counter() - start
    store.close()
    if report.failed:
        raise RuntimeError(f"benchmark clips failed to index: {report.failed[:3]}")
    # Once the first batch is in, workers are up and the pipeline is full: the rate a long run sees.
    done = [(t, n) for t, n in commits if n > 0]
    steady = (done[-1][1] - done[0][1]) / (done[-1][0] - done[0][0]) if len(done) > 1 else None
    return {
        "clips": cfg.clips,
        "clip_seconds": cfg.clip_seconds,
        "jobs": indexer.jobs,
        "seconds": seconds,
        "clips_per_second": cfg.clips / seconds,
        "steady_clips_per_second": steady,
        "peak_rss_mib": _rss_mib(),
    }


def bench_reopen(cfg: BenchConfig, model_path: Path, model: FMNModel, work: Path, log: Log) -> dict[str, Any]:
    """Time re-opening an indexed library of ``cfg.reopen_items`` items."""
    library = work / "reopen"
    log(f"building an indexed {cfg.reopen_items}-item library ...")
    build_synthetic_library(library, model, cfg.reopen_items, cfg.seed)
    times, loads = [], []
    for _ in range(cfg.reopen_repeats):
        start = time.perf_counter()
        FMNModel.load(model_path)
        loads.append(time.perf_counter() - start)
        start = time.perf_counter()
        r = Retriever.open(library, model_path)
        times.append(time.perf_counter() - start)
        if r.report.encoded or len(r.items()) != cfg.reopen_items:
            raise RuntimeError(f"re-open did work it should not have: {r.report.summary()}")
        r.close()
    return {
        "items": cfg.reopen_items,
        "repeats": cfg.reopen_repeats,
        "seconds": times,
        "seconds_median": float(np.median(times)),
        "model_load_seconds": float(np.median(loads)),
        "peak_rss_mib": _rss_mib(),
    }


def bench_queries(cfg: BenchConfig, model: FMNModel, work: Path, log: Log) -> list[dict[str, Any]]:
    """Speech-query latency, file to ranked list, at each library size and torch thread count."""
    wav = speech_wav(work / "query.wav")
    out = []
    for n in cfg.sizes:
        log(f"speech queries against {n:,} videos ...")
        r = synthetic_retriever(model, n, cfg.seed)
        repeats = cfg.queries if n <= 100_000 else max(20, cfg.queries // 2)
        for threads in cfg.query_threads:
            r.query_threads = threads
            out.append({"size": n, "threads": threads, **_time_queries(r, wav, repeats)})
        del r
    return out


def _time_queries(r: Retriever, wav: Path, repeats: int) -> dict[str, Any]:
    for _ in range(3):  # warm-up: first calls allocate and pick kernels
        r.search(r.query_from_file(wav), top=10)
    total, ranking = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = r.search(r.query_from_file(wav), top=10)
        total.append(time.perf_counter() - start)
        ranking.append(result.seconds)
    return {
        "queries": repeats,
        "p50_ms": 1000 * float(np.percentile(total, 50)),
        "p95_ms": 1000 * float(np.percentile(total, 95)),
        "rank_p50_ms": 1000 * float(np.percentile(ranking, 50)),
        "peak_rss_mib": _rss_mib(),
    }


def bench_encoding(cfg: BenchConfig, model_path: Path, model: FMNModel, log: Log) -> dict[str, Any]:
    """Per-query encoding latency (file -> common-space vector) on the CPU, and on CUDA when present."""
    figures = {"cpu": encode_latency(model, cfg.encode_runs)}
    log(f"encoding on cpu: {figures['cpu']}")
    if torch.cuda.is_available():
        figures["cuda"] = encode_latency(FMNModel.load(model_path, "cuda"), cfg.encode_runs)
        log(f"encoding on cuda: {figures['cuda']}")
    return figures


def _empty_files(root: Path, n: int, name: str) -> None:
    """``n`` empty files in folders of 1,000 (the scan goes by name; content does not matter)."""
    for start in range(0, n, 1000):
        folder = root / f"{start // 1000:04d}"
        folder.mkdir(parents=True)
        for i in range(start, min(n, start + 1000)):
            os.close(os.open(folder / name.format(i), os.O_CREAT | os.O_WRONLY, 0o644))


def bench_scan(cfg: BenchConfig, work: Path, log: Log) -> dict[str, Any]:
    """How long finding a library's files takes (the app and `fmn index` both do it), and one watcher look."""
    from fmn_core.errors import FmnError
    from fmn_core.index.library import scan_library
    from fmn_core.index.watch import library_signature

    log(f"scanning folders of {cfg.scan_media:,} media files and {cfg.scan_other:,} other files ...")
    media, other = work / "scan-media", work / "scan-other"
    _empty_files(media, cfg.scan_media, "VID_{:06d}.mp4")
    _empty_files(other, cfg.scan_other, "page{:07d}.html")

    def median_seconds(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            with contextlib.suppress(FmnError):  # "no media": what the folder of other files is there to show
                fn()
            times.append(time.perf_counter() - start)
        return sorted(times)[1]

    figures = {
        "media": cfg.scan_media,
        "media_seconds": median_seconds(lambda: scan_library(media)),
        "look_seconds": median_seconds(lambda: library_signature(media)),
        "other": cfg.scan_other,
        "other_seconds": median_seconds(lambda: scan_library(other)),
    }
    shutil.rmtree(other)  # a million inodes: give them back before the next stage
    return figures


_INDEX_ONE = """
import json, os, resource, sys, threading, time
from fmn_core.index.indexer import Indexer
from fmn_core.index.identity import model_identity
from fmn_core.index.store import Store
from fmn_core.inference import FMNModel
library, model_path, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = FMNModel.load(model_path)
store = Store(library)
store.attach_model(model_identity(model, store), model.net.memory.snapshot())
# The process's resident memory every 0.25 s, with how much of the video was encoded by then:
# whether memory grows with the video's length shows as a rising peak from one tenth to the next.
samples, done, running = [], [0, 1], True
def sample():
    while running:
        with open("/proc/self/status") as f:
            rss = next((int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS")), 0.0)
        samples.append((done[0] / max(done[1], 1), rss))
        time.sleep(0.25)
def progress(d, total):
    done[0], done[1] = d, total
if os.path.exists("/proc/self/status"):
    threading.Thread(target=sample, daemon=True).start()
start = time.perf_counter()
report = Indexer(store, model, jobs=jobs).run(progress=progress)
seconds = time.perf_counter() - start
running = False
rows = store.rows()
tenths = [max((r for f, r in samples if k / 10 <= f < (k + 1) / 10 or (k == 9 and f == 1)), default=None)
          for k in range(10)]
print(json.dumps({
    "seconds": seconds, "failed": report.failed, "windows": sum(r.windows for r in rows.values()),
    "rss_main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rss_worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    "rss_by_tenth_mib": tenths,
}))
"""


def bench_moments(cfg: BenchConfig, model_path: Path, model: FMNModel, work: Path, log: Log) -> dict[str, Any]:
    """Long videos indexed as windows (speed, peak memory by length), and moment queries over many hours."""
    import subprocess
    import sys

    from fmn_core.corpus.recipes import RecipeSettings, write_recipe
    from fmn_core.corpus.video import RenderSettings
    from fmn_core.media.video_io import probe_video, repeat_video

    source = work / "recipe.mp4"
    log("rendering a recipe video ...")
    settings = RecipeSettings()
    if cfg.small_recipe:
        small = RenderSettings(width=96, height=72, min_seconds=1.0, max_seconds=1.5)
        settings = RecipeSettings(steps=(2, 2), idle_seconds=(1.0, 2.0), render=small)
    write_recipe(cfg.seed, source, settings)
    jobs = cfg.jobs or os.cpu_count() or 1
    runs = []
    for copies in cfg.long_copies:
        library = work / f"long-{copies}"
        library.mkdir()
        repeat_video(source, library / "kitchen.mp4", copies)
        seconds = probe_video(library / "kitchen.mp4").duration_s
        log(f"indexing a {seconds / 60:.1f} min video in a fresh process ...")
        done = subprocess.run(
            [sys.executable, "-c", _INDEX_ONE, str(library), str(model_path), str(jobs)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"indexing the long video failed: {done.stderr[-2000:]}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        if figures["failed"]:
            raise RuntimeError(f"the long video failed to index: {figures['failed']}")
        runs.append({"copies": copies, "video_seconds": seconds, "jobs": jobs, "realtime": seconds / figures["seconds"],
                     **figures})  # fmt: skip
        shutil.rmtree(library)
    fe = model.video_frontend
    per_video = int(1800 / fe.hop)  # half-hour recordings
    n = int(cfg.moment_hours * 3600 / fe.hop)
    log(f"moment queries over {cfg.moment_hours:g} h of video ({n:,} windows) ...")
    r = synthetic_retriever(model, n, cfg.seed, windows_per_video=min(per_video, n))
    query = {
        "hours": cfg.moment_hours,
        "windows": n,
        **_time_queries(r, speech_wav(work / "moment-query.wav"), cfg.moment_queries),
    }
    del r
    return {"indexing": runs, "query": query}


def _bench_ann(cfg: BenchConfig, model: FMNModel, work: Path, log: Log) -> list[dict[str, Any]] | None:
    if not cfg.ann_sizes:
        return None
    from fmn_core.index.bench_ann import bench_ann

    return bench_ann(cfg.ann_sizes, model, work, log)


def _bench_ray(cfg: BenchConfig, model_path: Path, work: Path, log: Log) -> dict[str, Any] | None:
    if not cfg.ray_clips:
        return None
    from fmn_core.index.bench_ray import bench_ray  # imports Ray: only when the stage runs

    return bench_ray(cfg.ray_clips, cfg.ray_workers, model_path, work, log, cfg.clip_seconds, cfg.seed)


STAGES = ("indexing", "reopen", "query", "encode", "scan", "moments", "ann", "ray")


def run_bench(
    cfg: BenchConfig,
    model: str | os.PathLike[str] | None = None,
    log: Log = print,
    only: Sequence[str] | None = None,
) -> BenchResult:
    """Measure everything in ``cfg`` (the stages of :data:`STAGES`, or those in ``only``); see the module docstring.

    Raises:
        FmnError: ``only`` names a stage there is not.
    """
    unknown = sorted(set(only or ()) - set(STAGES))
    if unknown:
        raise FmnError(f"no bench stage {', '.join(unknown)}; the stages are {', '.join(STAGES)}")
    with tempfile.TemporaryDirectory(prefix="fmn-bench-") as tmp:
        work = Path(tmp)
        fmn, model_path, description = _load_model(model, work, log)
        data: dict[str, Any] = {
            "model": description,
            "machine": {
                "platform": platform.platform(),
                "processor": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "load_average": list(os.getloadavg()),
                "torch": torch.__version__,
            },
            "config": dataclasses.asdict(cfg),
        }
        stages: dict[str, Callable[[], Any]] = {
            "indexing": lambda: bench_indexing(cfg, fmn, work, log),
            "reopen": lambda: bench_reopen(cfg, model_path, fmn, work, log),
            "query": lambda: bench_queries(cfg, fmn, work, log),
            "encode": lambda: bench_encoding(cfg, model_path, fmn, log),
            "scan": lambda: bench_scan(cfg, work, log),
            "moments": lambda: bench_moments(cfg, model_path, fmn, work, log),
            "ann": lambda: _bench_ann(cfg, fmn, work, log),
            "ray": lambda: _bench_ray(cfg, model_path, work, log),
        }
        for name, stage in stages.items():
            if only is None or name in only:
                data[name] = stage()
        data["peak_rss_mib"] = _rss_mib()
    return BenchResult(data)


__all__ = ["STAGES", "BenchConfig", "BenchResult", "run_bench"]
