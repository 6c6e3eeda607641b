"""Indexing on Ray: ``fmn index LIBRARY --ray local|HOST:PORT``.

The run is the local one (:class:`~fmn_core.index.indexer.Indexer`: scan, plan, commit what
needs no encoding) with its encoding step done by Ray actors. The files to encode go, a few at a
time (a *unit*), to actors that each hold the model and decode and encode their files exactly as
a local run does (:class:`~fmn_core.index.indexer.Encoder`, on a GPU where the cluster has one),
writing one shard per file (``index.shards``). This process merges the shards into the library's
index as they come back, through the store's normal write path, so the index is the one a local
run makes and the app opens it unchanged. Every node must see the library, its index folder and
the model at the same paths (shared storage: docs/ray.md).

Ray core actors, not a Ray Data job: Ray Data (2.60) retries a batch whose worker died without
end and deprecates setting how often, so one file that kills its decoder would hang the run;
here each unit has :data:`RETRIES` and a culprit is found and recorded, as a local run does.

What happens when something fails:

- A worker that dies (killed, out of memory, its node lost): Ray restarts the actor and runs its
  unit again, up to :data:`RETRIES` times. A shard is named by the model and the file's id, size
  and time, so a unit run twice writes the same shards again, never a second copy, and the
  merge writes each item once. A unit whose worker dies every time is set aside and its files
  tried one per unit; a file that still takes its worker down is recorded as failed, as a local
  run records a file its decoder crashes on.
- This process dies: the shards written so far stay; the next run merges them instead of
  encoding those files again, and encodes only the rest.
- The cluster cannot be reached: :class:`RayClusterError` within :data:`CONNECT_TIMEOUT`
  seconds, raised by :func:`ray_cluster` before anything is written.

Ray is imported only here and only when a run asks for it (:func:`load_ray`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmn_core.errors import FmnError
from fmn_core.index.batches import tally
from fmn_core.index.decoding import Decoded, DecodeJob, decode_item
from fmn_core.index.indexer import Cancel, Encoder, Indexer, Progress
from fmn_core.index.library import LibraryEntry, stored_path
from fmn_core.index.plan import IndexReport, Work
from fmn_core.index.records import ItemRecord, StoredItem
from fmn_core.index.shards import (
    SHARDS_DIRNAME,
    ShardSink,
    merge_shards,
    model_key,
    read_shard,
    remove_shards,
    shard_name,
    sweep_shards,
)

if TYPE_CHECKING:
    from fmn_core.index.store import Store
    from fmn_core.inference import FMNModel

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0  # seconds to reach a cluster's head node before saying it cannot be reached
DEFAULT_PORT = 6379  # the port `ray start --head` listens on unless told otherwise
RETRIES = 3  # runs of a unit after the first when its worker dies
UNITS_PER_WORKER = 4  # a small run is cut finer than batch_size, so every worker gets a share
MAX_DECODERS_PER_GPU = 8  # decoding processes feeding one GPU actor
NAMESPACE = "fmn-index"


class RayClusterError(FmnError):
    """The Ray cluster cannot be reached or used."""


def load_ray() -> Any:
    """Ray, or a clear error saying what to install."""
    # Read when Ray is imported: how long a GCS client waits for a head node's answer (Ray's 30 s,
    # on top of its other waits, would keep a user who gave a wrong port waiting for a minute).
    os.environ.setdefault("RAY_py_gcs_connect_timeout_s", str(math.ceil(CONNECT_TIMEOUT)))
    try:
        import ray
    except ImportError as e:
        raise FmnError(f"indexing on Ray needs Ray ({e}): pip install ray, or run `make setup`") from e
    return ray


# -- the cluster -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """The Ray cluster a run uses."""

    address: str  # 'local', or the head node's HOST:PORT
    cpus: int
    gpus: int

    def describe(self) -> str:
        """One line for a terminal."""
        where = "a local Ray" if self.address == "local" else f"the Ray cluster at {self.address}"
        return f"{where}: {self.cpus} CPUs, {self.gpus} GPUs"


def parse_address(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` -> (host, port); the port defaults to :data:`DEFAULT_PORT`.

    Raises:
        RayClusterError: not such an address.
    """
    if "://" in text:
        raise RayClusterError(
            f"--ray {text}: give the head node's address as HOST:PORT (the one `ray start --head` printed, "
            "e.g. head:6379); Ray Client (ray://) addresses are not supported"
        )
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, str(DEFAULT_PORT)
    host = host.strip("[]")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RayClusterError(f"--ray {text}: expected `local` or the head node's HOST:PORT, e.g. head:6379")
    return host, int(port_text)


def check_reachable(host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail fast when nothing answers at the head node's address (Ray itself retries for minutes).

    Raises:
        RayClusterError: unknown host, refused, or no answer within ``timeout`` seconds.
    """
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return
    except socket.gaierror as e:
        why = f"unknown host: {e.strerror}"
    except TimeoutError:
        why = f"no answer within {timeout:g} s"
    except OSError as e:
        why = e.strerror or str(e)
    raise RayClusterError(
        f"cannot reach a Ray cluster at {host}:{port} ({why}); start its head node with "
        f"`ray start --head --port {port}`, or check the address and that the port is open. Nothing was written."
    )


@contextmanager
def ray_cluster(where: str = "local", cpus: int | None = None, timeout: float = CONNECT_TIMEOUT) -> Iterator[Cluster]:
    """Ray for the block: a local one (``where='local'``) or the cluster at ``HOST:PORT``, shut down after.

    A Ray session this process is already connected to is used as it is, and left running (for
    ``where='local'``, whatever it is; for an address, when it is that cluster's).

    Args:
        where: 'local' or the head node's address.
        cpus: the CPUs a local Ray gets (default: all cores).
        timeout: seconds to reach a cluster's head node.

    Raises:
        RayClusterError: the cluster cannot be reached or joined (nothing has been written).
        FmnError: Ray is not installed.
    """
    address = None if where == "local" else parse_address(where)
    if address is not None:
        check_reachable(*address, timeout)
    ray = load_ray()
    if ray.is_initialized():
        _check_same(ray, address)
        yield _cluster(ray, where)
        return
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR, "namespace": NAMESPACE}
    if address is None:
        # No usage report sent out (nothing may go to the network), and patience on a busy machine:
        # its raylet waits for agents that start slowly when the cores are shared.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        slow = {"raylet_start_wait_time_s": 120, "worker_register_timeout_seconds": 300}
        ray.init(num_cpus=cpus or os.cpu_count() or 1, _system_config=slow, **quiet)
    else:
        host, port = address
        quiet.pop("include_dashboard")
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        # Something answers there, but perhaps not Ray: Ray would wait for its head for minutes.
        try:
            with _environment({"RAY_gcs_server_port_wait_time_s": "1"}):  # one try, not twenty
                ray.init(address=where, **quiet)
        except Exception as e:  # Ray's own: ConnectionError, a version mismatch, a missing token ...
            ray.shutdown()  # what it set up before failing, so a later ray.init starts clean
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RayClusterError(f"cannot join the Ray cluster at {where}: {first}. Nothing was written.") from e
    try:
        yield _cluster(ray, where)
    finally:
        ray.shutdown()


def _check_same(ray: Any, address: tuple[str, int] | None) -> None:
    """Raise unless the Ray this process is connected to can stand for ``address`` (None: any)."""
    if address is None:
        return
    connected = str(ray.get_runtime_context().gcs_address)
    if not connected.endswith(f":{address[1]}"):
        raise RayClusterError(
            f"this process is already connected to the Ray at {connected}, not {address[0]}:{address[1]}"
        )


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Environment variables set for the block (those the user set are kept), then as they were."""
    before = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, old in before.items():
            if old is None:
                os.environ.pop(k, None)


def _cluster(ray: Any, where: str) -> Cluster:
    resources = ray.cluster_resources()
    return Cluster(where, int(resources.get("CPU", 0)), int(resources.get("GPU", 0)))


# -- the workers -----------------------------------------------------------------------------------


def _work_dict(w: Work) -> dict[str, Any]:
    e = w.entry
    return {"id": e.id, "path": str(e.path), "modality": e.modality, "label": e.label, "text": e.text,
            "size": w.size, "mtime_ns": w.mtime_ns, "is_new": w.is_new}  # fmt: skip


def _work_from(d: dict[str, Any]) -> Work:
    entry = LibraryEntry(d["id"], Path(d["path"]), d["modality"], d["label"], d["text"])
    return Work(entry, d["size"], d["mtime_ns"], d["is_new"])


class ShardWorker:
    """A Ray actor of the run: holds the model, encodes units of files into shards.

    Args:
        model_path: the model's checkpoint file (the same path on every node).
        checkpoint: its hash as this run's driver computed it; another file there is an error.
        key: the model identity's :func:`~fmn_core.index.shards.model_key`.
        library: the library folder.
        folder: the shards folder.
        device: where the model runs ('cpu' or 'cuda').
        jobs: decoding processes (1: decoded in the actor).
        batch_size: files encoded together.
        decode: as :class:`~fmn_core.index.indexer.Encoder`'s.

    Raises:
        FmnError: the shards folder or the right model is not on this node.
    """

    def __init__(
        self,
        model_path: str,
        checkpoint: str,
        key: str,
        library: str,
        folder: str,
        device: str,
        jobs: int,
        batch_size: int,
        decode: Callable[[DecodeJob], Decoded],
    ) -> None:
        import cv2
        import torch

        from fmn_core.inference import FMNModel

        torch.set_num_threads(1)  # one core per CPU actor; a GPU actor's decoders have their own
        cv2.setNumThreads(1)
        node = socket.gethostname()
        self.folder, self.library, self.key = Path(folder), Path(library), key
        if not self.folder.is_dir():
            raise FmnError(
                f"{folder} is not there on the Ray node {node}: every node must see the library and its index "
                "at the same path (shared storage, see docs/ray.md)"
            )
        model = FMNModel.load(model_path, device)
        if model.checkpoint_hash() != checkpoint:
            raise FmnError(
                f"the model at {model_path} on the Ray node {node} is not the one the run was started with: "
                "every node must see the same model file at that path"
            )
        self.encoder = Encoder(model, jobs, batch_size, decode)

    def encode(self, unit: str) -> list[tuple[str, str, str]]:
        """Encode a unit of files (a JSON list, :func:`_work_dict`) into shards.

        Returns:
            Per file: its id, its shard's name ('' when none) and the error that stopped the unit ('').
        """
        work = [_work_from(d) for d in json.loads(unit)]
        sink = ShardSink(self.folder, self.library, self.key, {w.entry.id: w for w in work}, IndexReport())
        error = ""
        try:
            self.encoder.encode(sink, work, sink.report)
        except Exception as e:  # not a file's fault (those are in its shard): the run stops with it
            error = f"{type(e).__name__}: {e}"
        written = dict(sink.written)
        return [(w.entry.id, written.get(w.entry.id, ""), "" if w.entry.id in written else error) for w in work]


# -- the run ---------------------------------------------------------------------------------------


class _Merger:
    """Merges shards into the store as they come, counting them in the run's report."""

    def __init__(self, indexer: RayIndexer, work: list[Work], report: IndexReport, progress: Progress | None) -> None:
        self.store = indexer.store
        self.folder = indexer.store.folder / SHARDS_DIRNAME
        self.key = model_key(indexer.store.model_identity() or {})
        self.work = {w.entry.id: w for w in work}
        self.report = report
        self.progress = progress
        self.tries = indexer.retries + 1
        self.merged: set[str] = set()

    def merge(self, written: Sequence[tuple[str, str]]) -> None:
        """Merge the shards ``(item id, shard name)`` (one commit); unreadable ones are left to encode again."""
        shards, names = [], []
        for item_id, name in written:
            w = self.work.get(item_id)
            if w is None or item_id in self.merged or not name:
                continue
            shard = read_shard(self.folder / name, self.key, w, self.store.library)
            if shard is not None:
                shards.append(shard)
                names.append(name)
                self.merged.add(item_id)
        merge_shards(self.store, shards)
        tally(self.report, self.work, [s.record for s in shards])
        self.report.gaps.extend((s.record.row.id, s.gap) for s in shards if s.gap)
        remove_shards(self.folder, names)
        if self.progress and shards:
            self.progress(len(self.merged), len(self.work))

    def resume(self, work: Sequence[Work]) -> list[Work]:
        """Merge the shards already written for ``work`` (by an earlier run, or by a call whose answer
        was lost with its worker); returns the files still to encode."""
        found = [(w.entry.id, shard_name(self.key, w)) for w in work]
        found = [(i, name) for i, name in found if (self.folder / name).is_file()]
        for start in range(0, len(found), 64):
            self.merge(found[start : start + 64])
        return [w for w in work if w.entry.id not in self.merged]

    def give_up(self, lost: Sequence[Work]) -> None:
        """Record files whose worker died every time it encoded them as failed."""
        records = []
        for w in lost:
            e = w.entry
            reason = (f"{e.path}: a Ray worker died each time it encoded this file ({self.tries} tries alone; "
                      "a decoder crash on a malformed file, or too little memory on the node?)")  # fmt: skip
            row = StoredItem(e.id, stored_path(self.store.library, e.path), e.modality, w.size, w.mtime_ns, "", 0.0,
                             e.label, e.text, "failed", reason)  # fmt: skip
            records.append(ItemRecord(row, None, None, None))
        if records:
            self.store.write_items(records)
            tally(self.report, self.work, records)
            self.merged.update(w.entry.id for w in lost)


class RayIndexer(Indexer):
    """Indexes a library like :class:`~fmn_core.index.indexer.Indexer`, encoding on Ray.

    Args:
        store: the library's index (on storage every node sees at the same path).
        model: the model; its identity must be attached to the store, and its checkpoint file is
            what each worker loads (at the same path on every node).
        cluster: 'local' or the head node's HOST:PORT, joined for the run unless this process is
            already connected to a Ray (:func:`ray_cluster`).
        workers: actors encoding at once (default: one per GPU of the cluster, else one per CPU).
        batch_size: files sent to an actor together, and encoded together.
        decode: as :class:`~fmn_core.index.indexer.Encoder`'s (a module-level function).
        device: where the actors run the model: 'auto' (on GPUs when the cluster has them),
            'cpu' or 'cuda'.
        retries: runs of a unit after the first when its worker dies.
    """

    def __init__(
        self,
        store: Store,
        model: FMNModel,
        cluster: str = "local",
        workers: int | None = None,
        batch_size: int = 8,
        decode: Callable[[DecodeJob], Decoded] = decode_item,
        device: str = "auto",
        retries: int = RETRIES,
    ) -> None:
        super().__init__(store, model, jobs=1, batch_size=batch_size, decode=decode)
        self.retries = retries
        self.cluster = cluster
        self.workers = workers
        self.device = device
        self._placement: tuple[int, float, float, str] = (1, 1.0, 0.0, "cpu")  # set by run(), for its cluster
        self._stopped = False  # a job stopped by cancel()

    def run(
        self,
        entries: Sequence[LibraryEntry] | None = None,
        progress: Progress | None = None,
        cancel: Cancel | None = None,
    ) -> IndexReport:
        """Bring the index up to date with ``entries``, as :meth:`Indexer.run` does, encoding on Ray.

        Raises:
            RayClusterError: the cluster cannot be reached (nothing written), or cannot run the job.
            FmnError: a worker cannot load the model or see the shards folder, or encoding failed
                (what was merged before stays).
        """
        if self.model.path is None:
            raise FmnError("indexing on Ray needs the model as a file the workers can load: save it first")
        with ray_cluster(self.cluster) as cluster:
            self._placement = _placement(cluster, self.workers, self.device)
            return super().run(entries, progress, cancel)

    def _encode_work(
        self, work: list[Work], report: IndexReport, progress: Progress | None, cancel: Cancel | None
    ) -> None:
        merger = _Merger(self, work, report, progress)
        merger.folder.mkdir(exist_ok=True)
        if progress:
            progress(0, len(work))
        todo = merger.resume(work)
        actors, cpus, gpus, _ = self._placement
        per_unit = self.batch_size * (int(cpus) if gpus else 1)  # a GPU actor's decoders start once per unit
        size = max(1, min(per_unit, math.ceil(len(todo) / (actors * UNITS_PER_WORKER))))
        lost = self._run_job([todo[i : i + size] for i in range(0, len(todo), size)], merger, cancel, depth=2)
        if lost and not self._stopped:
            # Each alone, one call at a time per actor: a call queued behind the culprit's dies with
            # its worker too. (Ray cannot always tell whether a call ran before its worker died:
            # the shards it wrote are kept.)
            log.info("a Ray worker died on every try of %d file(s): trying them one by one", len(lost))
            lost = self._run_job([[w] for w in merger.resume(lost)], merger, cancel, depth=1)
        if not self._stopped:
            merger.give_up(merger.resume(lost))
        report.pending = len(work) - len(merger.merged)
        report.cancelled = report.pending > 0
        if not report.cancelled:
            sweep_shards(merger.folder)  # what no file of the library needs now (another model's, a half-written one)

    def _worker_args(self, merger: _Merger) -> dict[str, Any]:
        """What each :class:`ShardWorker` is made with."""
        _, cpus, gpus, device = self._placement
        assert self.model.path is not None
        identity = self.store.model_identity() or {}
        return {
            "model_path": str(self.model.path.resolve()),
            "checkpoint": identity.get("checkpoint", ""),
            "key": merger.key,
            "library": str(self.store.library),
            "folder": str(merger.folder),
            "device": device,
            "jobs": max(1, int(cpus)) if gpus else 1,  # a GPU actor's decoding processes keep its GPU fed
            "batch_size": self.batch_size,
            "decode": self.decode,
        }

    def _run_job(self, units: list[list[Work]], merger: _Merger, cancel: Cancel | None, depth: int) -> list[Work]:
        """Run ``units`` on the cluster's actors, ``depth`` calls in flight per actor, merging as
        shards come; returns the files of units whose worker died on every try."""
        self._stopped = False
        if not units:
            return []
        ray = load_ray()
        count, cpus, gpus, _ = self._placement
        remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=-1, max_task_retries=self.retries)
        actors = [remote(ShardWorker).remote(**self._worker_args(merger)) for _ in range(min(count, len(units)))]
        try:
            return self._dispatch(ray, actors, units, merger, cancel, depth)
        finally:
            for actor in actors:
                ray.kill(actor)  # their cores go back to the cluster now, not when this process ends

    def _dispatch(
        self, ray: Any, actors: list[Any], units: list[list[Work]], merger: _Merger, cancel: Cancel | None, depth: int
    ) -> list[Work]:
        pending = deque(units)
        inflight: dict[Any, tuple[Any, list[Work]]] = {}  # call -> (actor, unit)

        def submit(actor: Any) -> None:
            if pending:
                unit = pending.popleft()
                inflight[actor.encode.remote(json.dumps([_work_dict(w) for w in unit]))] = (actor, unit)

        for _ in range(depth):  # with 2: one unit encoding, the next waiting, so no actor idles
            for actor in actors:
                submit(actor)
        lost: list[Work] = []
        while inflight:
            [call], _ = ray.wait(list(inflight), num_returns=1)
            actor, unit = inflight.pop(call)
            try:
                out = ray.get(call)
            except ray.exceptions.RayActorError as e:
                if e.actor_init_failed:  # the node lacks the shared folder or the model: no retry helps
                    raise RayClusterError(f"a Ray worker could not start: {_cause(e)}") from e
                lost += unit  # its worker died on every try: tried file by file after
                submit(actor)
                continue
            errors = [error for _, _, error in out if error]
            if errors:
                raise FmnError(f"encoding failed on the Ray cluster: {errors[0]} (what was merged before is kept)")
            merger.merge([(item_id, name) for item_id, name, _ in out])
            if cancel and cancel():
                self._stopped = True
                return []
            submit(actor)
        return lost


def _placement(cluster: Cluster, workers: int | None, device: str) -> tuple[int, float, float, str]:
    """(actors, CPUs per actor, GPUs per actor, device) for the job on ``cluster``.

    Raises:
        RayClusterError: GPUs asked for on a cluster without, or a cluster without CPUs.
    """
    if cluster.cpus < 1:
        raise RayClusterError(f"{cluster.describe()}: no CPU to run on (are its worker nodes up?)")
    on_gpu = device == "cuda" or (device == "auto" and cluster.gpus > 0)
    if not on_gpu:
        return max(1, workers or cluster.cpus), 1.0, 0.0, "cpu"
    if cluster.gpus < 1:
        raise RayClusterError(f"--device cuda: {cluster.describe()}, no GPU; leave --device out to encode on CPUs")
    actors = max(1, workers or cluster.gpus)
    decoders = max(1, min(MAX_DECODERS_PER_GPU, cluster.cpus // actors))
    return actors, float(decoders), 1.0, "cuda"


def _cause(e: BaseException) -> str:
    """What went wrong on a worker, without Ray's wrapping: the last error line of its traceback
    (an FmnError's message alone, as it is meant for the user)."""
    text = str(e).strip()
    for line in reversed(text.splitlines()):
        if "Error:" in line:
            line = line.strip()
            return line.split("FmnError: ", 1)[1] if "FmnError: " in line else line
    return text.splitlines()[0] if text else type(e).__name__


__all__ = [
    "CONNECT_TIMEOUT",
    "Cluster",
    "RayClusterError",
    "RayIndexer",
    "ShardWorker",
    "check_reachable",
    "load_ray",
    "parse_address",
    "ray_cluster",
]
