"""Model files shipped in parts: joined once, checked by hash, safe when processes join at once."""

from __future__ import annotations

import hashlib
import multiprocessing
from pathlib import Path

from fmn_core.packaged_files import join_parts


def test_processes_joining_at_once_each_write_their_own_file(tmp_path: Path) -> None:
    """Two first users at once (the corpus's workers): each joins into its own temporary file."""
    parts = [tmp_path / f"{i}.part" for i in range(2)]
    for i, part in enumerate(parts):
        part.write_bytes(bytes([i]) * (3 << 20))  # bigger than a block, so a shared file could interleave
    whole = b"".join(p.read_bytes() for p in parts)
    digest = hashlib.sha256(whole).hexdigest()
    target = tmp_path / "cache" / "model.onnx"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.starmap(join_parts, [(parts, target, digest)] * 4)
    assert results == [None] * 4 and target.read_bytes() == whole
    assert not list(target.parent.glob(".*.tmp"))
