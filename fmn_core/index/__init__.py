"""The library index and search (DESIGN §5: ``fmn index``, ``fmn search``, ``fmn bench``).

- ``store``: the on-disk index (SQLite, WAL): items, features, model identity, banks, update log;
- ``indexer``: incremental, parallel, crash-safe indexing of a library folder or manifest;
- ``retriever``: the :class:`Retriever` the CLI and the app search with;
- ``bench``: speed and memory figures;
- ``cli``: the commands.

Names are imported on first use: ``fmn`` builds its parser from ``fmn_core.index.cli`` for every
command, and that must not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmn_core.index.indexer import IndexReport, LibraryEntry, scan_library
    from fmn_core.index.retriever import BankUpdate, Hit, Item, Query, Retriever, SearchResult, SlotInfo
    from fmn_core.index.store import LibraryIndexError, Store

_EXPORTS = {
    "BankUpdate": "retriever",
    "Hit": "retriever",
    "Item": "retriever",
    "Query": "retriever",
    "Retriever": "retriever",
    "SearchResult": "retriever",
    "SlotInfo": "retriever",
    "IndexReport": "indexer",
    "LibraryEntry": "indexer",
    "scan_library": "indexer",
    "LibraryIndexError": "store",
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
