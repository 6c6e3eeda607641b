"""A library's memory banks as its user changes them (DESIGN §2.6).

The banks start as the model's and learn from confirmations (and, with the retriever's
``auto_update``, from confident matches). Every change is logged with the items it came from,
persisted in the index together with the banks, and can be undone exactly, bit for bit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fmn_core.errors import FmnError
from fmn_core.index.records import LogRow
from fmn_core.index.results import MODALITIES, BankUpdate, Query, SlotInfo
from fmn_core.index.store import Store
from fmn_core.inference import FMNModel
from fmn_core.models.memory import FeatureMemoryBank, UpdateRecord

# How a pair changes the banks: confirm_match or update_memory of the network, bound to its arguments.
BankChange = Callable[[torch.Tensor, torch.Tensor], list[UpdateRecord]]


@dataclass
class _UndoPoint:
    snapshot: dict[str, torch.Tensor]
    seqs: list[int]  # log rows of the change
    log_len: int  # length of the in-memory log before the change


class LibraryMemory:
    """The banks of ``model`` as one library's, with their log and undo history.

    Args:
        model: the model whose banks these are.
        store: where banks and log persist; None for an in-memory retriever (benchmarks).
        lock: the retriever's lock, so a search never reads banks halfway through a change.
    """

    def __init__(self, model: FMNModel, store: Store | None, lock: threading.RLock) -> None:
        self.model = model
        self.store = store
        self._lock = lock
        self._undo: list[_UndoPoint] = []
        self._log: list[LogRow] = store.updates() if store is not None else []

    def change(
        self, query: Query, item_id: str, change: BankChange, v: torch.Tensor, a: torch.Tensor
    ) -> list[BankUpdate]:
        """Apply ``change(v, a)`` to the banks with an undo point, a log entry and a commit."""
        memory = self.model.net.memory
        snapshot = memory.snapshot()
        device = self.model.device
        records: list[UpdateRecord] = change(
            v.detach().float().reshape(1, -1).to(device), a.detach().float().reshape(1, -1).to(device)
        )
        if not records:
            return []
        query_id = query.item_id or query.source
        video_id, speech_id = (item_id, query_id) if query.modality == "speech" else (query_id, item_id)
        now = time.time()
        rows: list[dict[str, Any]] = [
            {
                "slot": r.slot,
                "kind": r.kind,
                "video_id": video_id,
                "speech_id": speech_id,
                "time": now,
                "query_source": query.source,
                "m2": r.m2,
                "step": r.step,
            }
            for r in records
        ]
        try:
            seqs = self._persist(rows)
        except BaseException:
            memory.restore(snapshot)  # the banks never differ from what is stored
            raise
        self._undo.append(_UndoPoint(snapshot, seqs, len(self._log)))
        action = (self._log[-1].action + 1) if self._log else 1
        self._log += [LogRow(s, action, **r) for s, r in zip(seqs, rows, strict=True)]
        return [BankUpdate(r.slot, r.kind, (video_id, speech_id), now, r.m2) for r in records]

    def _persist(self, rows: list[dict[str, Any]]) -> list[int]:
        if self.store is None:
            start = (self._log[-1].seq + 1) if self._log else 1
            return list(range(start, start + len(rows)))
        with self.store.transaction():
            self.store.save_banks(self.model.net.memory.snapshot())
            return self.store.log_updates(rows)

    def undo(self) -> bool:
        """Undo the last change to the banks exactly (bit for bit); False when there is none."""
        with self._lock:
            if not self._undo:
                return False
            point = self._undo[-1]
            if self.store is not None:
                with self.store.transaction():
                    self.store.save_banks(point.snapshot)
                    self.store.delete_updates(point.seqs)
            self.model.net.memory.restore(point.snapshot)
            self._undo.pop()
            del self._log[point.log_len :]
            return True

    @property
    def can_undo(self) -> bool:
        """Whether :meth:`undo` has something to undo (changes made since the library was opened)."""
        return bool(self._undo)

    def own_bank(self, modality: str) -> FeatureMemoryBank:
        """The bank that holds features of ``modality`` (what a query of that modality is read against)."""
        return self.model.net.memory.video if modality == "video" else self.model.net.memory.speech

    def _bank(self, bank: str) -> FeatureMemoryBank:
        if bank not in MODALITIES:
            raise FmnError(f"a bank is 'video' or 'speech', got {bank!r}")
        return self.own_bank(bank)

    def bank_slots(self, bank: str) -> list[SlotInfo]:
        """Every slot of the 'video' or 'speech' bank, with where its contents came from."""
        b = self._bank(bank)
        last: dict[int, float] = {}
        sources: dict[int, list[str]] = {}
        for r in self._log:
            if r.kind in ("append", "replace"):
                sources[r.slot] = []  # a new memory: what was there before is gone
            sources.setdefault(r.slot, []).extend((r.video_id, r.speech_id))
            last[r.slot] = r.time
        used, hits = b.used.tolist(), b.hits.tolist()
        return [
            SlotInfo(j, bool(used[j]), int(hits[j]), last.get(j), list(dict.fromkeys(sources.get(j, []))))
            for j in range(b.capacity)
        ]

    def bank_similarity(self, bank: str) -> np.ndarray:
        """``(X, X)`` cosine between the slots of a bank (as the bank compares features: centred); 0 for unused."""
        b = self._bank(bank)
        with torch.no_grad():
            x = F.normalize(b.slots.float() - b.center.float(), dim=1)
            sim = (x @ x.T) * (b.used[:, None] & b.used[None, :]).float()
        return sim.cpu().numpy()

    def voice(self) -> tuple[int, float]:
        """What the banks learned of the user's voice (``PairedMemory.hear_voice``): how many
        confirmed utterances, and how far its offset moves a spoken query, as a fraction of the
        typical length of the speech the bank remembers (0 before two confirmations, or when the
        confirmations disagree)."""
        memory = self.model.net.memory
        with self._lock, torch.no_grad():
            used = memory.speech.slots[memory.used].float()
            typical = float(used.norm(dim=1).mean()) if len(used) else 0.0
            shift = float(memory.voice_offset.norm())
            return int(memory.voice_count), shift / typical if typical > 0 else 0.0

    def update_log(self) -> list[BankUpdate]:
        """Every change made to this library's banks, oldest first."""
        return [BankUpdate(r.slot, r.kind, (r.video_id, r.speech_id), r.time, r.m2) for r in self._log]


__all__ = ["BankChange", "LibraryMemory"]
