"""Progress bars the commands draw on stderr (tqdm, imported when a bar is first drawn).

Below every command module (``fmn_core.commands``, ``fmn_core.index.cli``, ``fmn_core.eval.*_cli``),
so that they share the bars without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tqdm import tqdm


def progress_bar(desc: str, unit: str) -> Callable[[int, int], None]:
    """A progress(done, total) callback drawing a tqdm bar on stderr."""
    from tqdm import tqdm

    bar: tqdm | None = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


class StageBars:
    """progress(stage, done, total, message) drawing one tqdm bar per stage on stderr."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar: tqdm | None = None

    def __call__(self, stage: str, done: int, total: int, message: str = "") -> None:
        from tqdm import tqdm

        if stage != self.stage or self.bar is None:
            if self.bar is not None:
                self.bar.close()
            self.stage, self.bar = stage, tqdm(total=total, desc=stage, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)
        if message:
            self.bar.set_postfix_str(message, refresh=False)
        if done >= total:
            self.bar.close()
            self.bar = None
