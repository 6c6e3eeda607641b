"""`fmn-app`: start FMN Studio on a library (the last one used, or the built-in demo)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from app.library import DEMO_LIBRARY
from app.main_window import MainWindow


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fmn-app", description="FMN Studio: search cooking videos by voice.")
    p.add_argument("--library", type=Path, help="library folder (default: the last one used, else the demo)")
    p.add_argument("--screenshot", type=Path, help="save a picture of the window to this PNG and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the application; returns the exit code."""
    args = _parser().parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("FMN Studio")
    app.setOrganizationName("FMN Studio")
    settings = QSettings()
    window = MainWindow(settings)
    folder = args.library or Path(str(settings.value("library", DEMO_LIBRARY)))
    if not window.load_library(folder) and folder != DEMO_LIBRARY:
        window.load_library(DEMO_LIBRARY)
    window.show()
    if args.screenshot:

        def grab() -> None:
            window.grab().save(str(args.screenshot))
            window.close()

        QTimer.singleShot(800, grab)  # let layouts and the first preview frame settle
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
