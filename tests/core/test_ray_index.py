"""Indexing on Ray: the index a local run makes, resumable, with no item lost or duplicated."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fmn_core.cli import main
from fmn_core.index.decoding import Decoded, DecodeJob, decode_item
from fmn_core.index.identity import model_identity
from fmn_core.index.indexer import Encoder
from fmn_core.index.library import scan_library
from fmn_core.index.location import INDEX_DIRNAME
from fmn_core.index.plan import IndexReport, Work, plan_run
from fmn_core.index.ray_index import Cluster, RayClusterError, RayIndexer, ray_cluster
from fmn_core.index.retriever import Retriever
from fmn_core.index.shards import SHARDS_DIRNAME, ShardSink, merge_shards, model_key, read_shard, shard_name
from fmn_core.index.store import Store
from fmn_core.inference import FMNModel
from tests.core.test_index import folder_library
from tests.core.test_index_moments import save_windowed_model

LOG_DIR = ".decoded"  # hidden, so the library's scan skips it: which files the workers decoded


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Cluster]:
    """One local Ray for the module (starting one takes seconds), two CPUs: two workers at once."""
    with ray_cluster("local", cpus=2) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random model whose windows make a short recipe video a long video."""
    return save_windowed_model(tmp_path_factory.mktemp("model") / "m")


def make_library(tiny_corpus: Path, out: Path, videos: int = 2, speech: int = 3, recipe: Path | None = None) -> Path:
    """``out/<label>/<file>`` copied from the corpus (times kept), with a long video and a corrupt file."""
    folder_library(tiny_corpus, out, videos, speech)
    if recipe is not None:
        (out / "recipes").mkdir()
        shutil.copy2(recipe / "recipes" / "recipe_000.mp4", out / "recipes" / "kitchen.mp4")
        (out / "bad").mkdir()
        (out / "bad" / "corrupt.mp4").write_bytes(b"\0" * 4096)
    return out


def logging_decode(job: DecodeJob) -> Decoded:
    """decode_item, noting the file in the library's hidden log (workers are other processes)."""
    log = Path(job.path).parents[1] / LOG_DIR
    log.mkdir(exist_ok=True)
    with open(log / "decoded.txt", "a", encoding="utf-8") as f:
        f.write(f"{Path(job.path).name}\n")
    return decode_item(job)


def dying_decode(job: DecodeJob) -> Decoded:
    """The worker dies the first time it decodes a ``die_once*`` file, and each time it decodes a ``die_always*``."""
    name = Path(job.path).name
    marker = Path(job.path).parents[1] / LOG_DIR / f"{name}.died"
    if name.startswith("die_always") or (name.startswith("die_once") and not marker.exists()):
        marker.parent.mkdir(exist_ok=True)
        marker.touch()
        os._exit(1)  # no cleanup, as a worker killed by the OOM killer
    return logging_decode(job)


def decoded(library: Path) -> list[str]:
    log = library / LOG_DIR / "decoded.txt"
    return log.read_text(encoding="utf-8").split() if log.is_file() else []


def on_ray(workers: int = 2, **kw: Any) -> Callable[[Store, FMNModel], RayIndexer]:
    """What makes a Retriever index on the module's Ray."""
    return lambda store, model: RayIndexer(store, model, workers=workers, **kw)


def snapshot(library: Path) -> dict[str, object]:
    """Everything a search reads from an index: rows, vectors per modality, window spans and previews."""
    with Store(library) as store:
        rows, vectors = store.load()
        previews = {i: store.preview(i) for i in rows}
        windows = {i: [(a, b) for a, b, _ in store.window_previews(i)] for i, r in rows.items() if r.windows}
        staged = store.staged()
    return {"rows": rows, "vectors": vectors, "previews": previews, "windows": windows, "staged": staged}


def assert_same_index(a: dict[str, object], b: dict[str, object]) -> None:
    ra, rb = a["rows"], b["rows"]
    assert isinstance(ra, dict) and isinstance(rb, dict)
    assert sorted(ra) == sorted(rb)
    for i in ra:
        x, y = ra[i], rb[i]
        assert (x.status, x.hash, x.windows, x.modality, x.label, x.size, x.mtime_ns) == (
            y.status, y.hash, y.windows, y.modality, y.label, y.size, y.mtime_ns
        ), i  # fmt: skip
        assert (x.reason is None) == (y.reason is None) and x.duration == pytest.approx(y.duration), i
    va, vb = a["vectors"], b["vectors"]
    assert isinstance(va, dict) and isinstance(vb, dict)
    for m in ("video", "speech"):
        assert va[m].ids == vb[m].ids
        np.testing.assert_allclose(va[m].vec, vb[m].vec, atol=1e-5)
        np.testing.assert_allclose(va[m].raw, vb[m].raw, atol=1e-5)
        if va[m].spans is not None or vb[m].spans is not None:
            np.testing.assert_array_equal(va[m].spans, vb[m].spans)
    assert a["previews"] == b["previews"] and a["windows"] == b["windows"]
    assert a["staged"] == b["staged"] == 0


# First in the file: these two need no Ray session of this process to be running yet.


def test_an_unreachable_cluster_fails_fast_and_writes_nothing(
    tiny_corpus: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = make_library(tiny_corpus, tmp_path / "lib", videos=1, speech=1)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    assert main(["index", str(lib), "--model", str(model_dir), "--ray", f"127.0.0.1:{port}"]) == 2
    assert time.perf_counter() - start < 10
    err = capsys.readouterr().err.strip()
    assert "cannot reach a Ray cluster at 127.0.0.1" in err and "ray start --head" in err and "\n" not in err
    assert not (lib / INDEX_DIRNAME).exists()
    assert main(["index", str(lib), "--ray", "ray://head:10001"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_a_port_that_is_not_ray_fails_within_seconds() -> None:
    with socket.socket() as s:  # something listens there, but it is not a Ray head node
        s.bind(("0.0.0.0", 0))
        s.listen()
        start = time.perf_counter()
        with (
            pytest.raises(RayClusterError, match="cannot join the Ray cluster"),
            ray_cluster(f"127.0.0.1:{s.getsockname()[1]}", timeout=3),
        ):
            pass
    assert time.perf_counter() - start < 45  # Ray's three waits of 5 s, and importing it on a busy machine


def test_a_ray_run_makes_the_index_a_local_run_makes(
    ray_session: Cluster,
    tiny_corpus: Path,
    recipe_corpus: Path,
    model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    local = make_library(tiny_corpus, tmp_path / "local", recipe=recipe_corpus)
    on_cluster = tmp_path / "ray"
    shutil.copytree(local, on_cluster)  # same files, same times: same ids, same plan
    first = Retriever.open(local, model_dir, jobs=1)
    first.close()
    r = Retriever.open(on_cluster, model_dir, indexer=on_ray(decode=logging_decode))
    try:
        assert r.report.failed and r.report.failed[0][0] == "bad/corrupt.mp4"
        assert (r.report.added, r.report.encoded, len(r.report.failed)) == (7, 7, 1)
        ok = [it.modality for it in r.items() if it.status == "ok"]
        assert sorted(ok) == ["speech"] * 3 + ["video"] * 3  # searchable at once, as after a local run
    finally:
        r.close()
    assert_same_index(snapshot(local), snapshot(on_cluster))
    reopened = Retriever.open(on_cluster, model_dir, jobs=1)  # as the app opens it: nothing to do
    reopened.close()
    assert (reopened.report.encoded, reopened.report.unchanged) == (0, 7)
    assert decoded(on_cluster).count("kitchen.mp4") >= 1  # the long video went through the workers too
    assert not any((on_cluster / INDEX_DIRNAME / SHARDS_DIRNAME).iterdir())  # every shard merged and removed

    # Files removed and added: the next Ray run (from the command line) follows them, as a local one does.
    for lib in (local, on_cluster):
        sorted(lib.rglob("*.wav"))[0].unlink()
        shutil.copy2(sorted(tiny_corpus.rglob("*.wav"))[-1], lib / "added.wav")
    again = Retriever.open(local, model_dir, jobs=1)
    again.close()
    assert (again.report.added, again.report.removed, again.report.unchanged) == (1, 1, 6)
    capsys.readouterr()
    assert main(["index", str(on_cluster), "--model", str(model_dir), "--ray", "local", "--workers", "2"]) == 0
    assert again.report.summary().split(" (")[0] in capsys.readouterr().out  # the same counts as the local run
    assert_same_index(snapshot(local), snapshot(on_cluster))


def test_shards_carry_what_a_local_run_commits(
    tiny_corpus: Path, recipe_corpus: Path, model_dir: Path, tmp_path: Path
) -> None:
    """No Ray: a worker's encoder writes shards here, and merging them makes the local run's index."""
    local = make_library(tiny_corpus, tmp_path / "local", recipe=recipe_corpus)
    sharded = tmp_path / "sharded"
    shutil.copytree(local, sharded)
    Retriever.open(local, model_dir, jobs=1).close()
    model = FMNModel.load(model_dir)
    with Store(sharded) as store:
        store.attach_model(model_identity(model, store), model.net.memory.snapshot())
        key, folder = model_key(store.model_identity() or {}), store.folder / SHARDS_DIRNAME
        folder.mkdir()
        report = IndexReport()
        work, _, _ = plan_run(store.library, store.rows(), scan_library(sharded), report, model.video_frontend)
        by_id = {w.entry.id: w for w in work}
        sink = ShardSink(folder, store.library, key, by_id, report)
        Encoder(model, jobs=1, batch_size=3).encode(sink, work, report)
        assert sorted(i for i, _ in sink.written) == sorted(by_id) and report.gaps == []
        shards = [read_shard(folder / name, key, by_id[i], store.library) for i, name in sink.written]
        assert all(s is not None for s in shards)
        merge_shards(store, [s for s in shards if s is not None])
        first, name = sink.written[0]
        changed = Work(by_id[first].entry, by_id[first].size + 1, by_id[first].mtime_ns, False)
        assert read_shard(folder / name, key, changed, store.library) is None  # of another version of the file
        assert not (folder / name).exists()  # which is deleted: never merged
    assert_same_index(snapshot(local), snapshot(sharded))


def _shard_path(library: Path, model_dir: Path, item_id: str) -> Path:
    """Where a worker writes ``item_id``'s shard (the model attached to the library's index first)."""
    model = FMNModel.load(model_dir)
    with Store(library) as store:
        store.attach_model(model_identity(model, store), model.net.memory.snapshot())
        key = model_key(store.model_identity() or {})
        folder = store.folder / SHARDS_DIRNAME
    entry = next(e for e in scan_library(library) if e.id == item_id)
    st = entry.path.stat()
    return folder / shard_name(key, Work(entry, st.st_size, st.st_mtime_ns, True))


def test_a_half_written_shard_is_encoded_again(
    ray_session: Cluster, tiny_corpus: Path, model_dir: Path, tmp_path: Path
) -> None:
    lib = make_library(tiny_corpus, tmp_path / "lib", videos=1, speech=2)
    wav = sorted(p.relative_to(lib).as_posix() for p in lib.rglob("*.wav"))[0]
    shard = _shard_path(lib, model_dir, wav)
    shard.parent.mkdir()
    shard.write_bytes(b"PK\x03\x04" + os.urandom(100))  # the start of a zip, cut: storage that lost the rest
    (shard.parent / f".{shard.name}.0123.tmp").write_bytes(b"PK")  # a temporary file its killed worker left
    r = Retriever.open(lib, model_dir, indexer=on_ray(decode=logging_decode))
    r.close()
    assert (r.report.added, r.report.failed) == (3, [])
    assert Path(wav).name in decoded(lib)  # encoded again, not read from the broken shard
    with Store(lib) as store:
        assert store.count("ok") == 3 and len(store.rows()) == 3 and store.features(wav) is not None
    assert list(shard.parent.iterdir()) == []


@pytest.mark.slow  # five workers die and start again
def test_a_worker_that_dies_has_its_share_retried(
    ray_session: Cluster, tiny_corpus: Path, model_dir: Path, tmp_path: Path
) -> None:
    lib = make_library(tiny_corpus, tmp_path / "lib", videos=1, speech=3)
    wav = next(lib.rglob("*.wav"))
    shutil.copy2(wav, wav.with_name("die_once.wav"))
    shutil.copy2(wav, wav.with_name("die_always.wav"))
    r = Retriever.open(lib, model_dir, indexer=on_ray(decode=dying_decode, batch_size=4, retries=1))
    r.close()
    log = decoded(lib)
    assert log.count("die_once.wav") == 1 and "die_always.wav" not in log, log  # died once, decoded on the retry
    failed = dict(r.report.failed)
    assert list(failed) == [f"{wav.parent.name}/die_always.wav"] and "a Ray worker died each time" in next(
        iter(failed.values())
    )
    with Store(lib) as store:
        rows = store.rows()
        assert len(rows) == 6 and store.count("ok") == 5  # every file once: none lost, none twice
        assert sorted(set(log)) == sorted(log)  # and no file but the one whose worker died was encoded twice


_KILLED_DRIVER = textwrap.dedent(
    """
    import os, signal, sys
    from fmn_core.index.ray_index import RayIndexer
    from fmn_core.index.retriever import Retriever
    from tests.core.test_ray_index import logging_decode

    library, model_dir = sys.argv[1], sys.argv[2]

    def progress(done, total):
        print(done, total, flush=True)
        if done >= 1:
            os.kill(os.getpid(), signal.SIGKILL)  # the driver dies: no cleanup of any kind

    Retriever.open(library, model_dir, progress=progress,
                   indexer=lambda s, m: RayIndexer(s, m, workers=2, batch_size=1, decode=logging_decode))
    """
)


@pytest.mark.slow
def test_a_run_whose_driver_died_is_finished_by_the_next(
    ray_session: Cluster, tiny_corpus: Path, model_dir: Path, tmp_path: Path
) -> None:
    lib = make_library(tiny_corpus, tmp_path / "lib", videos=2, speech=4)
    run = subprocess.run(
        [sys.executable, "-c", _KILLED_DRIVER, str(lib), str(model_dir)],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]
    with Store(lib) as store:
        committed = set(store.rows())
        assert store.integrity_check() == "ok" and len(committed) >= 1
    first = decoded(lib)
    shards = list((lib / INDEX_DIRNAME / SHARDS_DIRNAME).glob("*.npz"))
    (lib / LOG_DIR / "decoded.txt").unlink()
    r = Retriever.open(lib, model_dir, indexer=on_ray(decode=logging_decode))
    r.close()
    assert r.report.added == 6 - len(committed) and r.report.unchanged == len(committed)
    again = decoded(lib)
    # Files the killed run committed or left a shard for are not decoded again.
    assert len(again) <= 6 - len(committed) - len(shards) and len(set(first) | set(again)) == 6
    with Store(lib) as store:
        assert store.count("ok") == 6 and len(store.rows()) == 6
    assert list((lib / INDEX_DIRNAME / SHARDS_DIRNAME).iterdir()) == []


def test_the_ray_bench_stage_compares_worker_counts(ray_session: Cluster, model_dir: Path, tmp_path: Path) -> None:
    from fmn_core.index.bench import _ray_lines
    from fmn_core.index.bench_ray import bench_ray

    figures = bench_ray(3, (1, 2), model_dir, tmp_path, log=lambda line: None, clip_seconds=1.0)
    assert [r["workers"] for r in figures["runs"]] == [1, 2] and figures["clips"] == 3
    assert all(r["clips_per_second"] > 0 for r in figures["runs"]) and figures["speedup"] > 0
    assert "2 worker(s)" in "\n".join(_ray_lines(figures))


def test_actors_go_on_gpus_where_the_cluster_has_them() -> None:
    from fmn_core.index.ray_index import _placement

    assert _placement(Cluster("local", 2, 0), None, "auto") == (2, 1.0, 0.0, "cpu")  # one CPU actor per core
    assert _placement(Cluster("h:6379", 16, 0), 3, "auto") == (3, 1.0, 0.0, "cpu")
    assert _placement(Cluster("h:6379", 32, 2), None, "auto") == (2, 8.0, 1.0, "cuda")  # its CPUs decode for it
    assert _placement(Cluster("h:6379", 6, 2), None, "auto") == (2, 3.0, 1.0, "cuda")
    assert _placement(Cluster("h:6379", 32, 2), None, "cpu") == (32, 1.0, 0.0, "cpu")
    with pytest.raises(RayClusterError, match="no GPU"):
        _placement(Cluster("local", 2, 0), None, "cuda")


class _OtherModelOnTheNodes(RayIndexer):
    """As if the nodes' model file at the model's path were another one."""

    def _worker_args(self, merger: Any) -> dict[str, Any]:
        return {**super()._worker_args(merger), "checkpoint": "0" * 32}


def test_a_node_without_the_runs_model_stops_the_run_saying_so(
    ray_session: Cluster, tiny_corpus: Path, model_dir: Path, tmp_path: Path
) -> None:
    lib = make_library(tiny_corpus, tmp_path / "lib", videos=1, speech=1)
    with pytest.raises(RayClusterError, match="is not the one the run was started with"):
        Retriever.open(lib, model_dir, indexer=lambda store, model: _OtherModelOnTheNodes(store, model, workers=1))
    with Store(lib) as store:
        assert store.count() == 0  # nothing merged; the next run with the right model starts afresh
