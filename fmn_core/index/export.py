"""A ranking written for other programs: JSON (everything), CSV (a spreadsheet's row per hit), M3U (a playlist).

`fmn search --format` and the app's File ▸ Export results both write through here, so a list
exported from the window and one printed by the command line are the same document.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmn_core.index.moments import span_text

if TYPE_CHECKING:
    from fmn_core.index.results import SearchResult

FORMATS = ("text", "json", "csv", "m3u")  # text: the terminal's table (fmn search only)
FILE_FORMATS = {"json": ".json", "csv": ".csv", "m3u": ".m3u"}
CSV_COLUMNS = (
    "rank", "id", "modality", "label", "confidence", "s", "s1", "memory", "slot", "path", "text", "start", "end"
)  # fmt: skip


def result_dict(result: SearchResult, library: Path | None, model: str) -> dict[str, Any]:
    """Everything about a ranking, JSON-ready."""
    q = result.query
    return {
        "library": str(library) if library is not None else None,
        "model": model,
        "query": {"modality": q.modality, "source": q.source, "item_id": q.item_id},
        "seconds": result.seconds,
        "no_good_match": result.no_good_match,
        "threshold": result.threshold,
        "memory_vector": [float(x) for x in result.memory_vector],
        "hits": [
            {
                "rank": h.rank,
                "id": h.item.id,
                "modality": h.item.modality,
                "path": str(h.item.path),
                "label": h.item.label,
                "text": h.item.text,
                "s": h.s,
                "s1": h.s1,
                "memory": h.memory,
                "slot": h.slot,
                "confidence": h.confidence,
                "start": h.start,  # a moment of a long video, in seconds; null: the whole file
                "end": h.end,
            }
            for h in result.hits
        ],
    }


def render(result: SearchResult, fmt: str, library: Path | None = None, model: str = "") -> str:
    """The ranking as a JSON, CSV or M3U document.

    Raises:
        ValueError: an unknown format.
    """
    if fmt == "json":
        return json.dumps(result_dict(result, library, model), ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for h in result.hits:
            confidence = "" if h.confidence is None else f"{h.confidence:.4f}"
            start, end = ("", "") if h.span is None else (f"{h.span[0]:.3f}", f"{h.span[1]:.3f}")
            writer.writerow(
                (h.rank, h.item.id, h.item.modality, h.item.label or "", confidence, f"{h.s:.6f}", f"{h.s1:.6f}",
                 f"{h.memory:.6f}", h.slot, str(h.item.path), h.item.text or "", start, end)
            )  # fmt: skip
        return out.getvalue()
    if fmt == "m3u":
        # Extended M3U: players show the #EXTINF title; -1 = length unknown to the playlist. A
        # moment's range goes in VLC's per-entry options (other players ignore them, playing the file).
        lines = ["#EXTM3U", f"#PLAYLIST:FMN Studio results for {Path(result.query.source).name}"]
        for h in result.hits:
            moment = span_text(h.span) if h.span is not None else ""
            name = h.item.text or Path(h.item.path).name
            title = " · ".join(x for x in (f"{h.rank}", h.item.label or "", moment, name) if x)
            lines.append(f"#EXTINF:-1,{title}")
            if h.span is not None:
                lines += [f"#EXTVLCOPT:start-time={h.span[0]:.3f}", f"#EXTVLCOPT:stop-time={h.span[1]:.3f}"]
            lines.append(str(Path(h.item.path).resolve()))
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(FILE_FORMATS)}")


def format_for(path: str | os.PathLike[str]) -> str:
    """The export format a file name asks for (by its extension).

    Raises:
        ValueError: an extension that is none of .json, .csv, .m3u(8).
    """
    suffix = Path(path).suffix.lower()
    for fmt, ext in FILE_FORMATS.items():
        if suffix == ext or (fmt == "m3u" and suffix == ".m3u8"):
            return fmt
    raise ValueError(f"{path}: export as .json, .csv or .m3u")


def write_export(result: SearchResult, path: str | os.PathLike[str], library: Path | None, model: str) -> Path:
    """Write the ranking to ``path`` in the format its extension names, atomically (UTF-8)."""
    from fmn_core.manifest import atomic_write_text

    path = Path(path)
    atomic_write_text(path, render(result, format_for(path), library, model))
    return path


__all__ = ["CSV_COLUMNS", "FILE_FORMATS", "FORMATS", "format_for", "render", "result_dict", "write_export"]
