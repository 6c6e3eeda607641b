"""The library index and search (DESIGN §5: ``fmn index``, ``fmn search``, ``fmn bench``).

- ``library``: what a library holds (its manifest, or its folders' media) and what a file is;
- ``store``: the on-disk index (SQLite, WAL): items, features, model identity, banks, update log;
  ``records``: its rows; ``location``: where it lives; ``identity``: which model it belongs to;
- ``indexer``: incremental, parallel, crash-safe indexing; ``plan``: what a run has to do;
  ``decoding``: its worker processes; ``batches``: encoding and committing what they decode;
- ``ray_index``: the same run with its encoding on Ray actors (``fmn index --ray``);
  ``shards``: what they write, merged into the store;
- ``retriever``: the :class:`Retriever` the CLI and the app search with; ``results``: what it
  gives back; ``ranking``: how it orders what it scores; ``moments``: windows and moments of long
  videos; ``library_memory``: the library's banks, their log and undo;
- ``export``: search results as JSON, CSV or a playlist; ``watch``: following a folder;
- ``bench`` (with ``bench_ann``, ``bench_ray``) and ``synthetic``: speed and memory figures, on
  synthetic libraries where needed;
- ``cli``: the commands.

Names are imported on first use: ``fmn`` builds its parser from ``fmn_core.index.cli`` for every
command, and that must not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmn_core.index.library import LibraryEntry, scan_library
    from fmn_core.index.location import LibraryIndexError
    from fmn_core.index.plan import IndexReport
    from fmn_core.index.results import BankUpdate, Hit, Item, Query, SearchResult, SlotInfo
    from fmn_core.index.retriever import Retriever
    from fmn_core.index.store import Store

_EXPORTS = {
    "BankUpdate": "results",
    "Hit": "results",
    "Item": "results",
    "Query": "results",
    "Retriever": "retriever",
    "SearchResult": "results",
    "SlotInfo": "results",
    "IndexReport": "indexer",
    "LibraryEntry": "library",
    "scan_library": "library",
    "LibraryIndexError": "location",
    "Store": "store",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


__all__ = [
    "BankUpdate",
    "Hit",
    "IndexReport",
    "Item",
    "LibraryEntry",
    "LibraryIndexError",
    "Query",
    "Retriever",
    "SearchResult",
    "SlotInfo",
    "Store",
    "scan_library",
]
