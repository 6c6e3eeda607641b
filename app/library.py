"""Where the built-in demo library lives.

Opening any other folder goes through :func:`fmn_core.index.library.scan_library`, the same
function `fmn index` uses, so the app and the command line accept the same libraries.
"""

from __future__ import annotations

from pathlib import Path

DEMO_LIBRARY = Path(__file__).resolve().parents[1] / "assets" / "demo"
