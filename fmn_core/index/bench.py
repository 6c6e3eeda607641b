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

from fmn_core.eval.latency import encode_latency
from fmn_core.index.decoding import thumbnail_jpeg, waveform_peaks
from fmn_core.index.indexer import Indexer
from fmn_core.index.ranking import Collection
from fmn_core.index.records import ItemRecord, StoredItem
from fmn_core.index.results import Item
from fmn_core.index.retriever import Retriever, model_identity
from fmn_core.index.store import Store
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
    seed: int = 0

    @classmethod
    def quick(cls) -> BenchConfig:
        """A smoke run: a few clips, small libraries, few repeats."""
        return cls(
            clips=4, reopen_items=2_000, reopen_repeats=2, sizes=(1_000, 10_000), queries=10, query_threads=(1,),
            encode_runs=3, scan_media=1_000, scan_other=10_000, long_copies=(1, 2), small_recipe=True,
            moment_hours=1.0,
            moment_queries=5,
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
        ix, ro = d["indexing"], d["reopen"]
        lines = [
            f"model: {d['model']}",
            f"machine: {d['machine']['cpus']} CPUs, torch {d['machine']['torch_threads']} threads, "
            f"load average at start {d['machine']['load_average'][0]:.2f}",
            "",
            "| what | figure |",
            "| --- | --- |",
            f"| indexing, {ix['clips']} x {ix['clip_seconds']:.0f} s clips ({ix['jobs']} decoding processes) "
            f"| {ix['clips_per_second']:.2f} clips/s ({ix['seconds']:.1f} s from a cold start"
            + (
                f"; {ix['steady_clips_per_second']:.2f} clips/s after the first batch"
                if ix["steady_clips_per_second"]
                else ""
            )
            + ") |",
            f"| re-open a {ro['items']}-item library (median of {ro['repeats']}) | {ro['seconds_median']:.3f} s "
            f"(model load {ro['model_load_seconds']:.3f} s) |",
        ]
        for q in d["query"]:
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
            q = mo["query"]
            lines.append(
                f"| speech query -> top 10 moments of {q['hours']:g} h of video ({q['windows']:,} windows) "
                f"| p50 {q['p50_ms']:.1f} ms, p95 {q['p95_ms']:.1f} ms (ranking alone p50 {q['rank_p50_ms']:.1f} ms) |"
            )
        lines.append(f"| peak memory (max RSS) | {d['peak_rss_mib']:.0f} MiB |")
        return "\n".join(lines)


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
    from fmn_core.corpus.video import RenderSettings, write_clip
    from fmn_core.corpus.vocabulary import DEFAULT_CLASSES

    library = work / "clips"
    settings = RenderSettings(min_seconds=cfg.clip_seconds, max_seconds=cfg.clip_seconds)
    log(f"rendering {cfg.clips} clips of {cfg.clip_seconds:.0f} s ...")
    for i in range(cfg.clips):
        key = DEFAULT_CLASSES[i % len(DEFAULT_CLASSES)]
        write_clip(key, cfg.seed + i, library / key / f"{key}_{i:03d}.mp4", settings)
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


def _unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def build_synthetic_library(folder: Path, model: FMNModel, n: int, seed: int = 0) -> None:
    """An indexed library of ``n`` items (half video, half speech) with random features.

    The files are small stand-ins: re-opening only looks at their size and time, which match
    the index, so the work done is that of re-opening a real library of ``n`` items. Previews are
    real-sized (a JPEG thumbnail, 200 peaks).
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    store = Store(folder)
    store.attach_model(model_identity(model, store), model.net.memory.snapshot())
    frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    thumb, peaks = thumbnail_jpeg(frame), waveform_peaks(rng.standard_normal(24000).astype(np.float32)).tobytes()
    dims = {"video": model.cfg.video.feature_dim, "speech": model.cfg.speech.output_dim}
    batch: list[ItemRecord] = []
    for i in range(n):
        modality = "video" if i % 2 == 0 else "speech"
        label = f"class_{i % 20:02d}"
        path = folder / label / f"item_{i:06d}.{'mp4' if modality == 'video' else 'wav'}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"\0" * 64)
        st = path.stat()
        row = StoredItem(
            path.relative_to(folder).as_posix(),
            path.relative_to(folder).as_posix(),
            modality,
            st.st_size,
            st.st_mtime_ns,
            "0" * 32,
            4.0 if modality == "video" else 1.5,
            label,
            None,
            "ok",
            None,
        )
        raw = rng.standard_normal(dims[modality], dtype=np.float32)
        vec = _unit_rows(rng, 1, model.cfg.embed_dim)[0]
        batch.append(ItemRecord(row, thumb if modality == "video" else peaks, raw, vec))
        if len(batch) == 1000:
            store.write_items(batch)
            batch = []
    store.write_items(batch)
    store.close()


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


class _PooledRows:
    """``(n, D)`` raw features that repeat a pool of rows: gathering any rows costs what real ones cost."""

    def __init__(self, pool: np.ndarray, n: int) -> None:
        self.pool, self.n = pool, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, rows: Any) -> np.ndarray:
        picked: np.ndarray = self.pool[np.asarray(rows) % len(self.pool)]
        return picked


class _SyntheticItems(Sequence[Item]):
    """Items made on demand (a million Item objects would measure Python, not search); with
    ``per_item`` > 1, rows are windows, ``per_item`` consecutive ones per long video."""

    def __init__(self, n: int, per_item: int = 1) -> None:
        self.n, self.per_item = n, per_item

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        i = int(i) + (self.n if int(i) < 0 else 0)
        if not 0 <= i < self.n:
            raise IndexError(i)
        i //= self.per_item
        seconds = 4.0 if self.per_item == 1 else float(self.per_item)
        return Item(f"video_{i:07d}", Path(f"/synthetic/video_{i:07d}.mp4"), "video", None, None, seconds, "ok", None)


def synthetic_retriever(model: FMNModel, n: int, seed: int = 0, windows_per_video: int = 1) -> Retriever:
    """An in-memory retriever over ``n`` synthetic videos, or ``n`` windows of long videos of
    ``windows_per_video`` windows each (one every second, as the model's hop)."""
    rng = np.random.default_rng(seed)
    r = Retriever(model)
    pool = rng.standard_normal((4096, model.cfg.video.feature_dim), dtype=np.float32)
    spans = None
    if windows_per_video > 1:
        fe = model.video_frontend
        starts = (np.arange(n) % windows_per_video) * fe.hop
        spans = np.stack([starts, starts + fe.window], axis=1)
    r._collections["video"] = Collection(
        _SyntheticItems(n, windows_per_video), _unit_rows(rng, n, model.cfg.embed_dim), _PooledRows(pool, n), spans
    )
    return r


def speech_wav(path: Path, seconds: float = 1.5, seed: int = 0) -> Path:
    """A speech-like test file: a voiced, syllable-modulated harmonic signal with noise, 16 kHz."""
    from fmn_core.media.audio_io import SAMPLE_RATE, write_wav

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 120 + 20 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5  # four syllables a second
    wave = 0.3 * voiced * envelope + 0.01 * rng.standard_normal(len(t))
    write_wav(path, (wave / np.abs(wave).max() * 0.8).astype(np.float32))
    return path


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
import json, resource, sys, time
from fmn_core.index.indexer import Indexer
from fmn_core.index.retriever import model_identity
from fmn_core.index.store import Store
from fmn_core.inference import FMNModel
library, model_path, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = FMNModel.load(model_path)
store = Store(library)
store.attach_model(model_identity(model, store), model.net.memory.snapshot())
start = time.perf_counter()
report = Indexer(store, model, jobs=jobs).run()
seconds = time.perf_counter() - start
rows = store.rows()
print(json.dumps({
    "seconds": seconds, "failed": report.failed, "windows": sum(r.windows for r in rows.values()),
    "rss_main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rss_worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
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


def run_bench(cfg: BenchConfig, model: str | os.PathLike[str] | None = None, log: Log = print) -> BenchResult:
    """Measure everything in ``cfg``; see the module docstring."""
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
        data["indexing"] = bench_indexing(cfg, fmn, work, log)
        data["reopen"] = bench_reopen(cfg, model_path, fmn, work, log)
        data["query"] = bench_queries(cfg, fmn, work, log)
        data["encode"] = bench_encoding(cfg, model_path, fmn, log)
        data["scan"] = bench_scan(cfg, work, log)
        data["moments"] = bench_moments(cfg, model_path, fmn, work, log)
        data["peak_rss_mib"] = _rss_mib()
    return BenchResult(data)


__all__ = [
    "BenchConfig",
    "BenchResult",
    "build_synthetic_library",
    "run_bench",
    "speech_wav",
    "synthetic_retriever",
]
