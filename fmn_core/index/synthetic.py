"""Synthetic libraries for the benchmarks: many items shaped like real ones, made in seconds.

Vectors are drawn around the encodings of real clips (not uniform noise, which no ranking would
search like real features), and a spoken query is synthesised, so timings exercise the same
search code a user's library does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fmn_core.index.decoding import thumbnail_jpeg, waveform_peaks
from fmn_core.index.identity import model_identity
from fmn_core.index.ranking import Collection
from fmn_core.index.records import ItemRecord, StoredItem
from fmn_core.index.results import Item
from fmn_core.index.retriever import Retriever
from fmn_core.index.store import Store
from fmn_core.inference import FMNModel


def _unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def build_synthetic_library(folder: Path, model: FMNModel, n: int, seed: int = 0) -> None:
    """An indexed library of ``n`` items (half video, half speech) with random features.

    The files are small stand-ins: re-opening only looks at their size and time, which match
    the index, so the work done is that of re-opening a real library of ``n`` items. Previews are
    real-sized (a JPEG thumbnail, 200 peaks).
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    store = Store(folder)
    store.attach_model(model_identity(model, store), model.net.memory.snapshot())
    frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    thumb, peaks = thumbnail_jpeg(frame), waveform_peaks(rng.standard_normal(24000).astype(np.float32)).tobytes()
    dims = {"video": model.cfg.video.feature_dim, "speech": model.cfg.speech.output_dim}
    batch: list[ItemRecord] = []
    for i in range(n):
        modality = "video" if i % 2 == 0 else "speech"
        label = f"class_{i % 20:02d}"
        path = folder / label / f"item_{i:06d}.{'mp4' if modality == 'video' else 'wav'}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"\0" * 64)
        st = path.stat()
        row = StoredItem(
            path.relative_to(folder).as_posix(),
            path.relative_to(folder).as_posix(),
            modality,
            st.st_size,
            st.st_mtime_ns,
            "0" * 32,
            4.0 if modality == "video" else 1.5,
            label,
            None,
            "ok",
            None,
        )
        raw = rng.standard_normal(dims[modality], dtype=np.float32)
        vec = _unit_rows(rng, 1, model.cfg.embed_dim)[0]
        batch.append(ItemRecord(row, thumb if modality == "video" else peaks, raw, vec))
        if len(batch) == 1000:
            store.write_items(batch)
            batch = []
    store.write_items(batch)
    store.close()


class _PooledRows:
    """``(n, D)`` raw features that repeat a pool of rows: gathering any rows costs what real ones cost."""

    def __init__(self, pool: np.ndarray, n: int) -> None:
        self.pool, self.n = pool, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, rows: Any) -> np.ndarray:
        picked: np.ndarray = self.pool[np.asarray(rows) % len(self.pool)]
        return picked


class _SyntheticItems(Sequence[Item]):
    """Items made on demand (a million Item objects would measure Python, not search); with
    ``per_item`` > 1, rows are windows, ``per_item`` consecutive ones per long video."""

    def __init__(self, n: int, per_item: int = 1) -> None:
        self.n, self.per_item = n, per_item

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        i = int(i) + (self.n if int(i) < 0 else 0)
        if not 0 <= i < self.n:
            raise IndexError(i)
        i //= self.per_item
        seconds = 4.0 if self.per_item == 1 else float(self.per_item)
        return Item(f"video_{i:07d}", Path(f"/synthetic/video_{i:07d}.mp4"), "video", None, None, seconds, "ok", None)


def synthetic_retriever(
    model: FMNModel, n: int, seed: int = 0, windows_per_video: int = 1, vecs: np.ndarray | None = None
) -> Retriever:
    """An in-memory retriever over ``n`` synthetic videos, or ``n`` windows of long videos of
    ``windows_per_video`` windows each (one every second, as the model's hop); ``vecs``: their
    common-space vectors (default: random unit vectors)."""
    rng = np.random.default_rng(seed)
    r = Retriever(model)
    pool = rng.standard_normal((4096, model.cfg.video.feature_dim), dtype=np.float32)
    spans = None
    if windows_per_video > 1:
        fe = model.video_frontend
        starts = (np.arange(n) % windows_per_video) * fe.hop
        spans = np.stack([starts, starts + fe.window], axis=1)
    r._collections["video"] = Collection(
        _SyntheticItems(n, windows_per_video),
        _unit_rows(rng, n, model.cfg.embed_dim) if vecs is None else vecs,
        _PooledRows(pool, n),
        spans,
    )
    return r


def render_clips(folder: Path, n: int, seconds: float = 4.0, seed: int = 0) -> None:
    """``n`` rendered cooking clips of ``seconds`` (the corpus renderer, 320x240) in ``folder/<class>/``,
    the classes taken in turn: what the indexing benchmarks index."""
    from fmn_core.corpus.video import RenderSettings, write_clip
    from fmn_core.corpus.vocabulary import DEFAULT_CLASSES

    settings = RenderSettings(min_seconds=seconds, max_seconds=seconds)
    for i in range(n):
        key = DEFAULT_CLASSES[i % len(DEFAULT_CLASSES)]
        write_clip(key, seed + i, folder / key / f"{key}_{i:03d}.mp4", settings)


def speech_wav(path: Path, seconds: float = 1.5, seed: int = 0) -> Path:
    """A speech-like test file: a voiced, syllable-modulated harmonic signal with noise, 16 kHz."""
    from fmn_core.media.audio_io import SAMPLE_RATE, write_wav

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 120 + 20 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5  # four syllables a second
    wave = 0.3 * voiced * envelope + 0.01 * rng.standard_normal(len(t))
    write_wav(path, (wave / np.abs(wave).max() * 0.8).astype(np.float32))
    return path


__all__ = ["build_synthetic_library", "render_clips", "speech_wav", "synthetic_retriever"]
