"""`fmn-app`: start FMN Studio on a library (the last one used, or the built-in demo).

Scripted mode (``--query`` and/or ``--screenshot``) opens the library, runs the query, waits for
the results, saves pictures of the window and exits: 0 on success, 1 on an error shown to the user.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, QSettings, QTimer
from PySide6.QtWidgets import QApplication

from app.library import DEMO_LIBRARY
from app.main_window import MainWindow
from app.stall_meter import StallMeter

log = logging.getLogger("fmn-app")

SETTLE_MS = 600  # after the results arrive: layouts, thumbnails and the preview's first load settle
SCRIPT_TIMEOUT_S = 900  # a scripted run that has not finished by then is stuck


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fmn-app", description="FMN Studio: search cooking videos by voice.")
    p.add_argument("--library", type=Path, help="library folder (default: the last one used, else the demo)")
    p.add_argument("--model", type=Path, help="model folder or checkpoint (default: models/fmn-cooking-v4)")
    p.add_argument("--device", default="auto", help="where the model runs: auto (CUDA when present), cpu or cuda")
    scripted = p.add_argument_group("scripted mode (for screenshots and benchmarks)")
    scripted.add_argument("--query", type=Path, help="search with this audio or video file once the library is open")
    scripted.add_argument("--select", type=int, metavar="RANK", help="select the result of this rank (default 1)")
    scripted.add_argument("--confirm", type=int, metavar="RANK", help="confirm the result of this rank as a match")
    scripted.add_argument("--screenshot", type=Path, help="save a picture of the window to this PNG and exit")
    scripted.add_argument("--inspector-screenshot", type=Path, help="also save the memory inspector alone")
    scripted.add_argument("--stall-report", type=Path, help="write event-loop stall figures (JSON) and exit")
    return p


def _quiet_torch() -> None:
    """Import the heavy modules now, before the window shows, and leave a core to the UI.

    Importing torch holds the GIL for a second or more: in a worker it would freeze the window.
    """
    import torch

    import fmn_core.index.retriever  # noqa: F401  (torch, OpenCV, the models)

    torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))


class ScriptedRun(QObject):
    """Drives the window through open → query → (select, confirm) → transcript → screenshots → exit."""

    def __init__(self, window: MainWindow, args: argparse.Namespace) -> None:
        super().__init__(window)
        self.window, self.args = window, args
        self.confirmed = False
        self.finish_when_heard = False  # the results are in; the picture waits for the transcript
        session = window.session
        session.opened.connect(self._on_opened)
        session.ranked.connect(self._on_ranked)
        session.failed.connect(self._on_failed)
        session.heard.connect(self._on_heard)
        session.notHeard.connect(self._on_heard)
        QTimer.singleShot(SCRIPT_TIMEOUT_S * 1000, lambda: self._finish(2, "timed out"))

    def _on_opened(self, _retriever: object) -> None:
        if self.args.query is not None:
            self.window.query_file(self.args.query)
        else:
            QTimer.singleShot(SETTLE_MS, lambda: self._finish(0))

    def _on_ranked(self, _ranking: object) -> None:
        if self.args.confirm and not self.confirmed:
            self.confirmed = True
            self.window.results.select_row(self.args.confirm - 1)
            self.window.confirm_current()  # ranks again, and comes back here
            return
        rank = self.args.select or self.args.confirm or 1
        if 0 < rank <= len(self.window.results.hits):
            self.window.results.select_row(rank - 1)
        if self.window.session.hearing:
            self.finish_when_heard = True
        else:
            QTimer.singleShot(SETTLE_MS, lambda: self._finish(0))

    def _on_heard(self, _transcript: object) -> None:
        if self.finish_when_heard:
            self.finish_when_heard = False
            QTimer.singleShot(SETTLE_MS, lambda: self._finish(0))

    def _on_failed(self, message: str) -> None:
        print(f"fmn-app: {message}", file=sys.stderr)
        QTimer.singleShot(SETTLE_MS, lambda: self._finish(1))

    def _finish(self, code: int, why: str = "") -> None:
        if why:
            print(f"fmn-app: {why}", file=sys.stderr)
        args, window = self.args, self.window
        if args.screenshot:
            window.grab().save(str(args.screenshot))
        if args.inspector_screenshot:
            window.inspector_dock.grab().save(str(args.inspector_screenshot))
        if args.stall_report and window.stall_meter is not None:
            report = window.stall_meter.report()
            args.stall_report.write_text(json.dumps(report, indent=2) + "\n")
            print(json.dumps(report))
        window.close()
        QApplication.instance().exit(code)


def _show_unexpected_errors(window: MainWindow) -> None:
    """A bug in a slot is logged and shown in the window; the application carries on."""

    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        log.error("unexpected error", exc_info=(kind, error, tb))
        window.show_error(f"Unexpected error: {error!r}. The details are in the terminal.")

    sys.excepthook = hook


def main(argv: Sequence[str] | None = None) -> int:
    """Run the application; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The video encoder's libraries (pytorchvideo -> torchvision -> triton, which carries its own
    # LLVM) load before Qt does: loaded after Qt has brought in the X server's OpenGL (Mesa, with
    # another LLVM), they crashed the process. The I3D itself is built later, on a worker thread.
    from fmn_core.models.i3d import import_video_backbone

    import_video_backbone()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("FMN Studio")
    app.setOrganizationName("FMN Studio")
    _quiet_torch()
    settings = QSettings()
    stall_meter = StallMeter() if args.stall_report else None
    window = MainWindow(settings, device=args.device, stall_meter=stall_meter)
    window.restore_layout()
    previous_hook = sys.excepthook
    _show_unexpected_errors(window)
    scripted = bool(args.query or args.screenshot or args.inspector_screenshot or args.stall_report)
    quit_on_close = app.quitOnLastWindowClosed()
    if scripted:
        ScriptedRun(window, args)
        app.setQuitOnLastWindowClosed(False)  # the script ends the run with its exit code
    window.show()
    folder = args.library or Path(str(settings.value("library", DEMO_LIBRARY)))
    opened = window.open_library(folder, args.model)
    if not opened and scripted:
        print(f"fmn-app: {window.messages.text}", file=sys.stderr)
        window.close()
        sys.excepthook = previous_hook
        return 1
    if not opened and args.library is None and folder != DEMO_LIBRARY:
        window.open_library(DEMO_LIBRARY, args.model)  # the remembered library is gone: fall back to the demo
    try:
        return app.exec()
    finally:
        app.setQuitOnLastWindowClosed(quit_on_close)
        sys.excepthook = previous_hook


if __name__ == "__main__":
    sys.exit(main())
