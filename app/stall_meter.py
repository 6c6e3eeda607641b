"""StallMeter: a heartbeat on the UI thread that measures how long the event loop was blocked.

A precise timer fires every ``interval_ms``; when the loop is busy (a slow slot, a long paint,
the GIL held by a worker) the next tick comes late. The largest gap between ticks is the
longest time the window could not repaint or react to input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Qt, QTimer


@dataclass
class PhaseStats:
    """Heartbeat gaps seen during one phase (e.g. 'indexing')."""

    ticks: int = 0
    seconds: float = 0.0
    max_gap_ms: float = 0.0
    gaps_over_50ms: int = 0
    gaps_over_100ms: int = 0
    gaps: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, float | int]:
        gaps = sorted(self.gaps)
        p99 = gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))] if gaps else 0.0
        return {
            "ticks": self.ticks,
            "seconds": round(self.seconds, 3),
            "max_gap_ms": round(self.max_gap_ms, 1),
            "p99_gap_ms": round(p99, 1),
            "gaps_over_50ms": self.gaps_over_50ms,
            "gaps_over_100ms": self.gaps_over_100ms,
        }


class StallMeter(QObject):
    """Measures event-loop gaps, per named phase.

    Args:
        interval_ms: heartbeat period; a gap is the time between two ticks.
    """

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self.phases: dict[str, PhaseStats] = {}
        self._phase: str | None = None
        self._last = 0.0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def begin(self, phase: str) -> None:
        """Start (or continue) measuring under ``phase``.

        A phase still running is closed first: the time since its last tick is its own, and a
        job that finishes before the first heartbeat (a fast query followed by a bank refresh)
        still reports the gap it caused instead of zero ticks.
        """
        if self._phase is not None and self._phase != phase:
            self._tick()
        self._phase = phase
        self.phases.setdefault(phase, PhaseStats())
        self._last = time.perf_counter()
        self._timer.start()

    def end(self) -> None:
        """Stop measuring until the next :meth:`begin`."""
        self._tick()
        self._timer.stop()
        self._phase = None

    def end_later(self, ms: int = 250) -> None:
        """End the current phase after ``ms``, so the repaint that follows a job counts too.

        Nothing happens if another phase began meanwhile.
        """
        phase = self._phase
        QTimer.singleShot(ms, self, lambda: self.end() if self._phase == phase else None)

    def _tick(self) -> None:
        if self._phase is None:
            return
        now = time.perf_counter()
        gap = (now - self._last) * 1000.0
        self._last = now
        stats = self.phases[self._phase]
        stats.ticks += 1
        stats.seconds += gap / 1000.0
        stats.gaps.append(gap)
        stats.max_gap_ms = max(stats.max_gap_ms, gap)
        stats.gaps_over_50ms += gap > 50
        stats.gaps_over_100ms += gap > 100

    def report(self) -> dict[str, dict[str, float | int]]:
        """Every phase's figures, JSON-ready."""
        return {name: stats.as_dict() for name, stats in self.phases.items()}
