"""Training on several processes at once: `torchrun` starts them, this module joins them up.

``torchrun --nproc_per_node N -m fmn_core.cli train ...`` runs N copies of `fmn train`, each told
its place in its environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``). ``joined`` makes them one process group (NCCL between GPUs, gloo on CPUs) and
says who this process is (``Dist``). Every rank then draws the same batches from the same seeded
generators and encodes its share of each; DistributedDataParallel averages the gradients, so every
rank takes the same optimizer step. Rank 0 alone validates, writes the work checkpoints and the
model, and draws progress bars; a resumed run takes rank 0's checkpoint, sent to every rank.

Without torchrun's environment no group is made: ``SINGLE`` stands for the one process, and every
helper here then does nothing, so that training is exactly what it was before.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.distributed as dist
from torch import nn

from fmn_core.errors import FmnError

log = logging.getLogger(__name__)

# How long a rank waits for the others at a collective before the run fails. Generous: ranks wait
# while rank 0 alone computes a corpus's Whisper frames (minutes) or chooses the memory.
_TIMEOUT = datetime.timedelta(hours=2)
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class DistributedError(FmnError):
    """The processes of a distributed run cannot be joined up, or do not see the same data."""


@dataclass(frozen=True)
class Dist:
    """This process's place in a run: its rank among ``world`` processes, and the device it trains on.

    ``active`` is False for a plain, single-process run (``SINGLE``): then there is no process
    group and every method is a no-op, returning what a single process has.
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0  # the rank among this machine's processes: its GPU
    local_world: int = 1  # processes on this machine (they share its cores)
    device: torch.device = torch.device("cpu")
    active: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that validates, writes checkpoints and the model, and reports."""
        return self.rank == 0

    def sizes(self, n: int) -> list[int]:
        """How ``n`` items of a batch are shared out: contiguous runs, differing by at most one."""
        bounds = [n * r // self.world for r in range(self.world + 1)]
        return [b - a for a, b in pairwise(bounds)]

    def share(self, n: int) -> slice:
        """This rank's items of a batch of ``n`` (all of them in a single process)."""
        start = n * self.rank // self.world
        return slice(start, n * (self.rank + 1) // self.world)

    def wrap(self, module: nn.Module, find_unused_parameters: bool = False) -> nn.Module:
        """``module`` in DistributedDataParallel (gradients averaged over the ranks), or itself in a single process.

        Args:
            module: on ``self.device``.
            find_unused_parameters: some parameters take no part in some steps (DDP must look for them).
        """
        if not self.active:
            return module
        # No device_ids even on a GPU: DDP would move the inputs itself, and the LSTM's lengths must
        # stay on the CPU. Buffers (rank 0's at the start) are synced before each forward only where
        # they are running statistics (batch norm): the memory banks do not change while training.
        has_running_stats = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
        ddp = nn.parallel.DistributedDataParallel
        if "forward_sync_buffers" not in inspect.signature(ddp.__init__).parameters:
            # torch before 2.13 (a GPU image's own build, say): there, broadcast_buffers=False would
            # also skip the sync at the start, so buffers are synced before every forward instead.
            return ddp(module, find_unused_parameters=find_unused_parameters)
        return ddp(module, find_unused_parameters=find_unused_parameters, forward_sync_buffers=has_running_stats)

    def gather(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """Every rank's share ``(n_r, ...)`` of a batch of ``n`` rows, in order, with the gradient flowing back.

        Each rank then computes the loss of the whole batch; a row's gradient is summed over the
        ranks' losses, and DDP's average over ranks makes it the gradient of one batch's loss.
        """
        if not self.active:
            return x
        sizes = self.sizes(n)
        most = max(sizes)
        padded = torch.cat([x, x.new_zeros((most - len(x), *x.shape[1:]))]) if len(x) < most else x
        rows: torch.Tensor = _GatherRows.apply(padded)
        return torch.cat([rows[r * most : r * most + size] for r, size in enumerate(sizes)])

    def barrier(self) -> None:
        if self.active:
            dist.barrier(device_ids=[self.local_rank] if self.device.type == "cuda" else None)

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 does the work inside first, the others after it (to read what it cached)."""
        if not self.is_main:
            self.barrier()
        yield  # (an error on rank 0 skips its barrier: torchrun then stops the waiting ranks)
        if self.is_main:
            self.barrier()

    def broadcast_ints(self, values: list[int]) -> list[int]:
        """Rank 0's ``values`` on every rank (each rank passes as many)."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.int64, device=self.device)
        dist.broadcast(t, 0)
        return [int(v) for v in t.tolist()]

    def broadcast_module(self, module: nn.Module) -> None:
        """Give every rank rank 0's parameters and buffers (the same architecture on every rank)."""
        if not self.active:
            return
        with torch.no_grad():
            for t in module.state_dict().values():  # tensors that share the module's storage
                dist.broadcast(t, 0)

    def sum(self, values: list[float]) -> list[float]:
        """``values`` summed over the ranks."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return [float(v) for v in t.tolist()]

    def check_same(self, what: str, values: list[int]) -> None:
        """Fail unless every rank has rank 0's ``values`` (a digest of the data it read).

        Raises:
            DistributedError: this rank read other data than rank 0.
        """
        if self.broadcast_ints(values) != values:
            raise DistributedError(
                f"rank {self.rank} read other {what} than rank 0 ({values}); every node must see the same "
                "manifest and media (same paths, same files)"
            )


SINGLE = Dist()


class _GatherRows(torch.autograd.Function):
    """All-gather of equal ``(m, ...)`` shares into ``(world * m, ...)``; backward: the sum of their gradients."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        # Every rank's loss reads every rank's rows: this rank's rows get the sum of their gradients.
        # An all-reduce, not a reduce-scatter, which gloo lacks; the rows are a batch's vectors, small.
        total = grad.contiguous().clone()
        dist.all_reduce(total)
        m = len(total) // dist.get_world_size()
        rank = dist.get_rank()
        return total[rank * m : (rank + 1) * m]


def torchrun_env() -> dict[str, str] | None:
    """torchrun's variables for this process, or None when torchrun did not start it.

    Raises:
        DistributedError: some of them are set and others missing.
    """
    present = {k: os.environ[k] for k in _ENV if k in os.environ}
    if "WORLD_SIZE" not in present:
        return None
    missing = [k for k in _ENV if k not in present]
    if missing:
        raise DistributedError(
            f"WORLD_SIZE is set but {', '.join(missing)} is not: start distributed training with "
            "`torchrun --nproc_per_node N -m fmn_core.cli train ...`"
        )
    return present


@contextmanager
def joined(device: torch.device) -> Iterator[Dist]:
    """This process's place in a torchrun run, its process group made for the block and taken down after.

    Without torchrun's environment: ``SINGLE`` on ``device``, and no group. With it: NCCL when
    ``device`` is a GPU (each process on the GPU of its local rank), gloo on the CPU.

    Raises:
        DistributedError: torchrun's environment is incomplete, or more processes per machine than GPUs.
    """
    env = torchrun_env()
    if env is None:
        yield Dist(device=device)
        return
    rank, world, local_rank = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DistributedError(
                f"this machine has {torch.cuda.device_count()} GPUs for {local_world} processes: start at most "
                "one process per GPU (torchrun --nproc_per_node), or train on the CPU with --device cpu"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=_TIMEOUT)
    log.info("rank %d of %d (%s, %s)", rank, world, backend, device)
    try:
        yield Dist(rank, world, local_rank, local_world, device, active=True)
    finally:
        dist.destroy_process_group()
