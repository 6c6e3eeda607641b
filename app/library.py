"""Finding and opening a media library: a folder with a manifest, or laid out as ROOT/<label>/<files>."""

from __future__ import annotations

from pathlib import Path

from fmn_core.manifest import Manifest, manifest_from_folders, read_manifest

DEMO_LIBRARY = Path(__file__).resolve().parents[1] / "assets" / "demo"


def open_library(folder: Path) -> Manifest:
    """The library's manifest: ``folder/manifest.csv`` when present, else the folder's layout.

    Raises:
        ManifestError: the folder holds no usable manifest or media.
    """
    manifest_path = folder / "manifest.csv"
    return read_manifest(manifest_path) if manifest_path.is_file() else manifest_from_folders(folder)
