"""Which model a library's features belong to: the identity the index keeps (so another model's
features are never mixed in), and the model a library was last indexed with (``fmn search``
without ``--model``)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from fmn_core.errors import FmnError
from fmn_core.index.location import DB_NAME, INDEX_DIRNAME, cache_index_dir
from fmn_core.index.store import Store
from fmn_core.inference import FMNModel


def model_identity(model: FMNModel, store: Store | None = None) -> dict[str, Any]:
    """What makes features comparable: the checkpoint's bytes, the config and the front ends.

    The checkpoint's hash is remembered in the store by file size and time, so re-opening a
    library does not read the whole checkpoint again.
    """
    if model.path is not None and model.path.is_file():
        st = model.path.stat()
        stamp = f"{model.path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        cached = store.get_meta("model_file") if store is not None else None
        if cached is not None and cached.startswith(stamp + "|"):
            digest = cached.rsplit("|", 1)[1]
        else:
            digest = model.checkpoint_hash()
            if store is not None:
                store.set_meta("model_file", f"{stamp}|{digest}")
        model.checkpoint_digest = digest  # the calibration checks it: one hash of the file per process at most
    else:
        import hashlib

        h = hashlib.blake2b(digest_size=16)
        for name, t in sorted(model.net.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        digest = h.hexdigest()
    return {
        "checkpoint": digest,
        "config": model.cfg.to_dict(),
        "video_frontend": dataclasses.asdict(model.video_frontend),
        "speech_frontend": dataclasses.asdict(model.speech_frontend),
    }


def recorded_model(library: str | os.PathLike[str]) -> Path | None:
    """The model file ``library`` was last indexed with, when it still exists (None otherwise)."""
    folder = Path(library).resolve()
    candidates = [folder / INDEX_DIRNAME / DB_NAME, cache_index_dir(folder) / DB_NAME]
    for db in candidates:
        if db.is_file():
            try:
                with Store(folder, db.parent) as store:
                    value = store.get_meta("model_path")
            except FmnError:
                return None
            return Path(value) if value and Path(value).is_file() else None
    return None


__all__ = ["model_identity", "recorded_model"]
