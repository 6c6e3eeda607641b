"""Workers: run slow calls (indexing, decoding, inference) on a QThreadPool and report back by signal.

superqt's pattern: a ``QRunnable`` carries a ``QObject`` whose signals are emitted from the pool
thread and delivered, queued, on the UI thread. A worker never touches a widget; whoever starts
it connects slots to its signals.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class WorkerSignals(QObject):
    """What a :class:`Worker` reports; connect to these before starting it."""

    started = Signal()
    progress = Signal(int, int)  # done, total
    result = Signal(object)  # the function's return value
    errored = Signal(object)  # the exception it raised
    finished = Signal()  # always last, after result or errored


class Worker(QRunnable):
    """Calls ``fn(*args, **kwargs)`` on a pool thread.

    When ``fn`` takes keyword arguments named ``progress`` or ``cancel`` (see ``wants``), it is
    given ``progress(done, total)``, which emits :attr:`WorkerSignals.progress`, and ``cancel()``,
    which returns True once :meth:`cancel` was called.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, wants: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the owner keeps a reference until finished; Qt must not free it first
        self.signals = WorkerSignals()
        self._cancelled = threading.Event()
        self._fn, self._args, self._kwargs = fn, args, dict(kwargs)
        if "progress" in wants:
            self._kwargs["progress"] = self.signals.progress.emit
        if "cancel" in wants:
            self._kwargs["cancel"] = self._cancelled.is_set

    def cancel(self) -> None:
        """Ask the function to stop (it polls ``cancel()``); the worker still emits finished."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def run(self) -> None:
        self.signals.started.emit()
        try:
            value = self._fn(*self._args, **self._kwargs)
        except Exception as e:  # every failure goes to the window, none may kill the pool thread
            if not _expected(e):
                log.error("worker %s failed:\n%s", getattr(self._fn, "__name__", self._fn), traceback.format_exc())
            self.signals.errored.emit(e)
        else:
            self.signals.result.emit(value)
        finally:
            self.signals.finished.emit()


def _expected(error: BaseException) -> bool:
    from fmn_core.errors import FmnError

    return isinstance(error, FmnError)


class WorkerPool(QObject):
    """A QThreadPool that keeps its running workers alive and can wait for them at shutdown.

    Args:
        threads: pool size. 1 serialises the jobs: the Retriever and its model are not
            thread-safe, so every call into them goes through one such pool.
    """

    def __init__(self, threads: int = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._running: set[Worker] = set()

    def start(self, worker: Worker) -> Worker:
        """Queue a worker; it is forgotten once it has finished."""
        self._running.add(worker)
        worker.signals.finished.connect(lambda w=worker: self._running.discard(w))
        self.pool.start(worker)
        return worker

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel every worker and wait for them; True when all stopped in time."""
        for worker in list(self._running):
            worker.cancel()
        self.pool.clear()  # drop the ones not started yet
        return self.pool.waitForDone(timeout_ms)
