"""Noticing that a library folder changed, so the index can follow it (the app and `fmn index --watch`).

Polling, not file-system events: it works the same on every platform and file system (network
shares and FUSE mounts included, where inotify is silent), needs no extra package, and a stat of
every file of a 10,000-file library takes tens of milliseconds. A change is reported only once the
folder has looked the same for one more poll, so a file still being copied in is not indexed half
written (the debounce).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from fmn_core.errors import FmnError
from fmn_core.index.library import MANIFEST_NAME, scan_library

log = logging.getLogger(__name__)

Signature = dict[str, tuple[int, int]]  # path -> (size, mtime in ns); (-1, -1): listed but missing


def library_signature(library: str | os.PathLike[str]) -> Signature:
    """What the library's files look like now: their paths, sizes and modification times.

    A library that no longer holds media (or whose manifest is broken) has the empty signature,
    so emptying a folder is a change like any other.
    """
    library = Path(library)
    try:
        paths = [str(e.path) for e in scan_library(library)]
    except FmnError:
        return {}
    manifest = library / MANIFEST_NAME
    if manifest.is_file():
        paths.append(str(manifest))  # a row added to the manifest changes the library too
    signature: Signature = {}
    for path in paths:
        try:
            st = os.stat(path)
            signature[path] = (st.st_size, st.st_mtime_ns)
        except OSError:
            signature[path] = (-1, -1)
    return signature


class LibraryWatcher:
    """Tells, poll by poll, whether a library has changed and settled since it was last indexed."""

    def __init__(self, library: str | os.PathLike[str]) -> None:
        self.library = Path(library)
        self._settled = library_signature(self.library)  # what the index was last brought up to
        self._pending: Signature | None = None  # a changed state seen once, waiting to be seen again

    def poll(self) -> bool:
        """True once when the library differs from the last settled state and did not change since the last poll."""
        now = library_signature(self.library)
        if now == self._settled:
            self._pending = None
            return False
        if now != self._pending:  # new, or still changing (a copy in progress): look again next time
            self._pending = now
            return False
        self._settled, self._pending = now, None
        return True


__all__ = ["LibraryWatcher", "Signature", "library_signature"]
