"""What a library holds: its media files, from its manifest or from its folders.

A library is a folder. With a ``manifest.csv`` its rows are the items (ids, labels and
transcripts from the manifest; segment rows annotate their file, which is one item); without one
every video (.mp4 .avi .mov .mkv .webm ...) and audio file (.wav .flac .ogg .mp3 .m4a ...) under
it is an item, its id the path relative to the library, its label the name of its folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from fmn_core.errors import FmnError
from fmn_core.index.location import (
    INDEX_DIRNAME,
)
from fmn_core.manifest import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, read_manifest
from fmn_core.media.errors import MediaError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.csv"


@dataclass(frozen=True)
class LibraryEntry:
    """One media file the library says it holds."""

    id: str
    path: Path  # absolute
    modality: str  # 'video' or 'speech'
    label: str | None
    text: str | None


def modality_of(path: str | os.PathLike[str]) -> str | None:
    """'video' or 'speech' from a file's extension, None for other files."""
    suffix = os.path.splitext(path)[1].lower()
    return "video" if suffix in VIDEO_EXTENSIONS else "speech" if suffix in AUDIO_EXTENSIONS else None


def scan_library(library: str | os.PathLike[str]) -> list[LibraryEntry]:
    """The media files of a library: its manifest's rows, else every media file under it.

    This is how the app and the command line both open a folder. Without a manifest the folder
    may be flat or nested; an item's label is the name of the folder it sits in (so a
    ``<label>/<files>`` layout gives labelled items and a flat folder unlabelled ones). Hidden
    files and folders and the index folder are skipped; symbolic links to folders are not
    followed, so a link loop cannot hang the scan; a folder that cannot be read is skipped with
    a warning.

    Raises:
        ManifestError: the library's manifest is invalid (an FmnError listing every bad row).
        FmnError: the library is not a folder, or holds no video or audio file.
    """
    library = Path(library).resolve()
    if not library.is_dir():
        raise FmnError(f"{library}: no such folder")
    manifest_path = library / MANIFEST_NAME
    if manifest_path.is_file():
        manifest = read_manifest(manifest_path)
        entries = [
            LibraryEntry(r.id, manifest.resolve(r), r.modality, r.label or None, r.text or None)
            for r in manifest.rows
            if r.segment is None
        ]
        # Rows that are segments (start/end) annotate a long file: the file is one item, indexed
        # once and searched as moments, its id its path (as a folder scan would name it).
        files = {e.path for e in entries}
        for r in manifest.rows:
            path = manifest.resolve(r)
            if r.segment is not None and path not in files:
                files.add(path)
                entries.append(LibraryEntry(stored_path(library, path), path, r.modality, None, None))
        return entries
    # Strings, not Path operations, per file: re-opening a 10k-item library spends its time here.
    root = str(library)
    entries = []
    for folder, dirs, names in os.walk(root, onerror=_unreadable_folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != INDEX_DIRNAME)
        label = os.path.basename(folder) if folder != root else None
        prefix = "" if folder == root else folder[len(root) + 1 :].replace(os.sep, "/") + "/"
        for name in sorted(names):
            modality = modality_of(name)
            if modality is None or name.startswith("."):
                continue
            entries.append(LibraryEntry(prefix + name, Path(folder, name), modality, label, None))
    if not entries:
        kinds = " ".join(VIDEO_EXTENSIONS + AUDIO_EXTENSIONS)
        raise FmnError(f"{library}: no video or audio files found in it or its folders (looked for {kinds})")
    return entries


def _unreadable_folder(error: OSError) -> None:
    log.warning("skipped %s: %s", error.filename, error.strerror)


def stored_path(library: Path, path: Path) -> str:
    """A file's path as the index keeps it: relative to the library when inside it (the library can move)."""
    root, full = str(library), str(path)
    if full.startswith(root + os.sep):
        return full[len(root) + 1 :].replace(os.sep, "/")
    return full


__all__ = [
    "MANIFEST_NAME",
    "LibraryEntry",
    "detect_modality",
    "file_hash",
    "modality_of",
    "scan_library",
    "stored_path",
]


def file_hash(path: str | os.PathLike[str]) -> str:
    """blake2b (16-byte digest) of a file's bytes, as hex."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def detect_modality(path: Path) -> str:
    """'video' or 'speech' for a query file: by extension, else by what the file holds.

    Raises:
        MediaError: missing or empty file, or neither audio nor video.
    """
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: the file is empty (0 bytes)")
    modality = modality_of(path)
    if modality is not None:
        return modality
    import av

    try:
        with av.open(str(path)) as container:
            # An audio file's cover art is a one-picture "video" stream: it does not make a video.
            moving = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
            if moving:
                return "video"
            if container.streams.audio:
                return "speech"
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        pass
    raise MediaError(f"{path}: neither a video nor an audio file this program can read")
