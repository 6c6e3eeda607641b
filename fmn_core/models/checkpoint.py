"""FMN checkpoints: one ``.safetensors`` file with every tensor (weights and memory banks) and JSON
metadata (format version, the full config, thresholds, class names and anything else given).

Loading never unpickles: a pickle or ``torch.save`` file is refused before any of it is read as
objects, since unpickling can run arbitrary code.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fmn_core.models.errors import CheckpointError
from fmn_core.models.fmn import FeatureMemoryNetwork, FMNConfig, create_fmn

log = logging.getLogger(__name__)
T = TypeVar("T")


def read_beside(
    path: Path, parse: Callable[[dict[str, Any]], T], checkpoint_hash: Callable[[], str], what: str, without: str
) -> T | None:
    """A JSON file kept beside a checkpoint for its exact weights (its ``checkpoint_hash``), parsed.

    None when there is none; None with a warning naming ``what`` it is and saying what goes
    ``without`` it, when it is unreadable or was made for other weights.
    """
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        value = parse(raw)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: unreadable %s, %s (%s)", path, what, without, exc)
        return None
    if str(raw.get("checkpoint_hash")) != checkpoint_hash():
        log.warning("%s: %s made for other weights than its checkpoint, %s", path, what, without)
        return None
    return value


FORMAT = "fmn-studio-checkpoint"
FORMAT_VERSION = 1
_VIDEO = "video_encoder."  # the I3D's tensors' prefix in a checkpoint
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header


def save_checkpoint(
    path: str | os.PathLike[str], model: FeatureMemoryNetwork, cfg: FMNConfig, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` (weights and memory banks) and ``cfg`` to a ``.safetensors`` file.

    Args:
        path: the file to write.
        model: the network; its memory banks are saved as they are now.
        cfg: the config the network was built from.
        extra: JSON-serialisable details kept with the model, by convention ``class_names``,
            the split, validation metrics; returned as they are by :func:`load_checkpoint`.

    Returns:
        The path written.

    Raises:
        CheckpointError: ``cfg`` does not describe ``model``, or ``extra`` is not JSON-serialisable.
    """
    path = Path(path)
    model.build_video_encoder()  # a deferred I3D is part of the model: write it
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _check_fits(tensors, cfg, with_video_encoder=model.video_encoder is not None, what="the model")
    try:
        extra_json = json.dumps(extra or {}, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"extra must be JSON-serialisable: {e}") from e
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(cfg.to_dict()),
        "thresholds": json.dumps({"t1": cfg.t1, "t2": cfg.t2, "alpha": cfg.alpha, "combination": cfg.combination}),
        "video_encoder": json.dumps(model.video_encoder is not None),
        "extra": extra_json,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu", defer_video: bool = False
) -> tuple[FeatureMemoryNetwork, FMNConfig, dict[str, Any]]:
    """Rebuild a network from a file written by :func:`save_checkpoint`.

    Args:
        path: the ``.safetensors`` checkpoint.
        map_location: device for the returned model.
        defer_video: keep the I3D's weights and build it on first use
            (:meth:`FeatureMemoryNetwork.defer_video_encoder`): a speech search starts 1.5 s sooner.

    Returns:
        ``(model, cfg, extra)``; the model is in eval mode.

    Raises:
        CheckpointError: missing file, not safetensors (a pickle is refused unread), another
            format version, or tensors that do not fit the saved config (names the keys).
    """
    path = Path(path)
    metadata = read_metadata(path)
    cfg = _config_from(metadata, path)
    with_video = json.loads(metadata.get("video_encoder", "true"))
    try:
        tensors = load_file(str(path), device="cpu")
    except SafetensorError as e:
        raise CheckpointError(f"{path} is a damaged safetensors file: {e}") from e
    video: dict[str, torch.Tensor] = {}
    if defer_video and with_video:
        video = {k.removeprefix(_VIDEO): tensors.pop(k) for k in list(tensors) if k.startswith(_VIDEO)}
        _check_video_fits(video, cfg, str(path))
    _check_fits(tensors, cfg, with_video_encoder=with_video and not video, what=str(path))
    model = create_fmn(cfg, with_video_encoder=with_video and not video)
    model.load_state_dict(tensors)
    model = model.to(map_location).eval()
    if video:
        model.defer_video_encoder(cfg.video, video)
    return model, cfg, json.loads(metadata.get("extra", "{}"))


def _check_video_fits(video: dict[str, torch.Tensor], cfg: FMNConfig, what: str) -> None:
    """That a deferred I3D's tensors are there; their names and shapes are checked when it is built."""
    if not video:
        raise CheckpointError(f"{what} says it holds a video encoder but has no video_encoder tensors")


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The JSON metadata of a checkpoint, read without loading its tensors.

    Raises:
        CheckpointError: missing file, not safetensors, not an FMN checkpoint, or another version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint: {path}")
    header = _safetensors_header(path)
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not an FMN Studio checkpoint (no '{FORMAT}' tag)")
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{path} has checkpoint format version {metadata.get('format_version')!r}; "
            f"this FMN Studio reads version {FORMAT_VERSION}"
        )
    return metadata


def _safetensors_header(path: Path) -> dict[str, Any]:
    """Parse the header (8-byte little-endian length, then JSON) or refuse the file."""
    with path.open("rb") as f:
        head = f.read(8)
        size = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        raw = f.read(size) if 0 < size <= _MAX_HEADER else b""
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if isinstance(header, dict):
        return header
    if _looks_pickled(head):
        raise CheckpointError(
            f"{path} is a pickle / torch.save file; FMN Studio refuses to unpickle checkpoints "
            "because loading a pickle can run arbitrary code. Use a .safetensors checkpoint."
        )
    raise CheckpointError(f"{path} is not a safetensors checkpoint (nothing else is read, and pickles never)")


def _looks_pickled(head: bytes) -> bool:
    """True for torch.save's zip archive, a pickle protocol >= 2 header or a protocol 0/1 opening.

    Only asked once the file failed to parse as safetensors: a header length may start with these bytes.
    """
    return head.startswith((b"PK\x03\x04", b"\x80")) or head[:1] in (b"(", b"c", b"}", b"]")


def _config_from(metadata: dict[str, str], path: Path) -> FMNConfig:
    try:
        return FMNConfig.from_dict(json.loads(metadata["config"]))
    except (KeyError, json.JSONDecodeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path} carries a config this FMN Studio cannot use: {e}") from e


def _check_fits(tensors: dict[str, torch.Tensor], cfg: FMNConfig, with_video_encoder: bool, what: str) -> None:
    """Compare tensor names and shapes with a network built from ``cfg`` (on the meta device: no memory)."""
    with torch.device("meta"):
        expected = create_fmn(cfg, with_video_encoder=with_video_encoder).state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [
        f"{k} {tuple(tensors[k].shape)} vs {tuple(expected[k].shape)} in the config"
        for k in sorted(set(tensors) & set(expected))
        if tensors[k].shape != expected[k].shape
    ]
    problems = [
        f"{name}: {', '.join(keys[:8])}{f', ... ({len(keys)} in all)' if len(keys) > 8 else ''}"
        for name, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched))
        if keys
    ]
    if problems:
        raise CheckpointError(f"{what} does not match its config: " + "; ".join(problems))
