"""Where a library's index lives, and the error an unusable index raises.

``LIBRARY/.fmn-index/index.sqlite`` when the library's folder can be written, else
``<user cache dir>/fmn-studio/<hash of the library's path>/index.sqlite`` (a library on a
read-only disk or a shared folder still gets an index).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from fmn_core.errors import FmnError

INDEX_DIRNAME = ".fmn-index"  # inside the library; hidden, and skipped when the library is walked
DB_NAME = "index.sqlite"
APP_NAME = "fmn-studio"


class LibraryIndexError(FmnError):
    """The library's index cannot be opened or used; the message says why and what to do."""


def _writable(folder: Path) -> bool:
    """Whether an index can be made inside ``folder``.

    ``os.access`` answers for permissions; a read-only mount is caught by actually creating
    the index folder (root passes every permission check but not EROFS).
    """
    index_dir = folder / INDEX_DIRNAME
    if index_dir.is_dir():
        return os.access(index_dir, os.W_OK | os.X_OK)
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        index_dir.mkdir()
    except OSError:
        return False
    return True


def cache_index_dir(library: Path) -> Path:
    """The index folder of a library that cannot hold its own: one per library path, in the user's cache."""
    from platformdirs import user_cache_dir

    key = hashlib.blake2b(str(library.resolve()).encode("utf-8"), digest_size=8).hexdigest()
    return Path(user_cache_dir(APP_NAME)) / "libraries" / f"{library.resolve().name}-{key}"


def index_dir_for(library: str | os.PathLike[str]) -> Path:
    """Where the index of ``library`` lives (see the module docstring); made if missing.

    Raises:
        LibraryIndexError: the library is not a folder, or no place for the index can be made.
    """
    library = Path(library).resolve()
    if not library.is_dir():
        raise LibraryIndexError(f"{library}: not a folder (a library is a folder of videos and audio files)")
    if _writable(library):
        return library / INDEX_DIRNAME
    folder = cache_index_dir(library)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LibraryIndexError(f"{library} is read-only and its index cannot be made in {folder}: {e}") from e
    return folder


__all__ = ["APP_NAME", "DB_NAME", "INDEX_DIRNAME", "LibraryIndexError", "cache_index_dir", "index_dir_for"]
