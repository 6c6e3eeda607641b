"""Approximate search for big libraries: agrees with exact search, follows the library, rebuilt when untrusted."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from fmn_core.errors import FmnError
from fmn_core.index import ann as ann_module
from fmn_core.index import retriever as retriever_module
from fmn_core.index.ann import AnnIndex, row_keys
from fmn_core.index.bench_ann import exact_top, float_blocks, write_rows
from fmn_core.index.ranking import nearest_rows
from fmn_core.index.retriever import Retriever
from tests.core.test_index import folder_library, save_model


def _clustered(rng: np.random.Generator, n: int, dim: int, classes: int = 20) -> np.ndarray:
    """Unit vectors around a few class centres, as real embeddings are (noise is searched unlike them)."""
    centres = rng.standard_normal((classes, dim))
    x = centres[rng.integers(classes, size=n)] + 0.6 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_approximate_search_agrees_with_exact() -> None:
    rng = np.random.default_rng(0)
    vecs = _clustered(rng, 20_000, 32)
    ann = AnnIndex(32, "model")
    done = ann.sync(row_keys([f"v{i}" for i in range(len(vecs))], {}), vecs)
    assert done.added == len(vecs) and done.removed == 0 and len(ann) == len(vecs)
    queries = _clustered(rng, 100, 32)
    overlap = []
    for q in queries:
        exact = set(np.argsort(-(vecs @ q))[:10].tolist())
        overlap.append(len(exact & set(ann.search(q, 10).tolist())) / 10)
    assert np.mean(overlap) >= 0.95, np.mean(overlap)


def test_keys_depend_on_the_item_and_its_content_not_on_the_rows_around_it() -> None:
    ids = ["a.mp4", "a.mp4", "a.mp4", "b.wav"]
    keys = row_keys(ids, {"a.mp4": "h1", "b.wav": "h2"})
    assert len(set(keys.tolist())) == 4
    assert np.array_equal(row_keys(ids[3:], {"b.wav": "h2"}), keys[3:])  # a's rows gone: b's key is the same
    assert row_keys(ids[3:], {"b.wav": "changed"})[0] != keys[3]  # new content: a new key


def test_an_index_follows_rows_added_and_removed() -> None:
    rng = np.random.default_rng(1)
    vecs = _clustered(rng, 3_000, 16)
    ids = [f"v{i}" for i in range(len(vecs))]
    ann = AnnIndex(16, "model")
    ann.sync(row_keys(ids, {}), vecs)
    kept = np.r_[0:1000, 2000:3000]  # a thousand files removed ...
    more = _clustered(rng, 500, 16)  # ... and five hundred added
    ids2, vecs2 = [ids[i] for i in kept] + [f"new{i}" for i in range(500)], np.concatenate([vecs[kept], more])
    done = ann.sync(row_keys(ids2, {}), vecs2)
    assert (done.added, done.removed, len(ann)) == (500, 1000, 2500)
    for q in more[:20]:  # an added row is found where it now is
        assert int(np.argmax(vecs2 @ q)) in ann.search(q, 5).tolist()


def test_an_index_built_in_batches_from_a_mapped_file_finds_what_one_built_at_once_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    vecs = _clustered(rng, 5_000, 24).astype(np.float16).astype(np.float32)  # the values a float16 file holds
    keys = row_keys([f"v{i}" for i in range(len(vecs))], {})
    whole = AnnIndex(24, "model")
    whole.sync(keys, vecs)
    mapped = write_rows(np.array_split(vecs, 7), tmp_path / "rows.f16", 24)
    assert mapped.dtype == np.float16 and np.array_equal(np.asarray(mapped, np.float32), vecs)
    monkeypatch.setattr(ann_module, "ADD_BATCH", 700)  # several batches, the last one short
    batched = AnnIndex(24, "model")
    batched.sync(keys, mapped)
    assert len(batched) == len(whole) == len(vecs)
    for q in _clustered(rng, 30, 24):
        assert np.array_equal(batched.search(q, 20), whole.search(q, 20))


def test_the_exact_top_k_over_blocks_is_that_of_the_rows_held_whole() -> None:
    rng = np.random.default_rng(4)
    vecs, queries = _clustered(rng, 2_500, 16), _clustered(rng, 12, 16)
    want = np.argsort(-(queries @ vecs.T), axis=1, kind="stable")[:, :10]
    for rows in (37, 1_000, 5_000):  # blocks much smaller than k's neighbourhood, uneven, and one block
        assert np.array_equal(exact_top(float_blocks(vecs, rows), queries, 10), want), rows


@pytest.fixture
def big_library(tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A small library searched as a big one: every modality above the threshold."""
    monkeypatch.setattr(retriever_module, "ANN_THRESHOLD", 0)
    return folder_library(tiny_corpus, tmp_path / "lib", videos=6, speech=4), save_model(tmp_path / "model")


def test_a_library_keeps_its_index_in_step_with_its_files_and_reopens_it(
    big_library: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    lib, model = big_library
    r = Retriever.open(lib, model, jobs=1)
    try:
        assert (lib / ".fmn-index" / "ann-video.faiss").is_file()
        col = r._collections["video"]
        assert col.ann is not None and len(col.ann) == len(col) == 6
        # the rows scored with S are the exact cosine stage's when the index is exhaustive enough
        r.rerank = 3
        query = r.query_from_item(r.items("speech")[0].id)
        q_vec = r.model.embed_speech(query.raw.reshape(1, -1))[0].numpy()
        assert np.array_equal(col.ann.search(q_vec, 3), nearest_rows(col, q_vec, 3))
        assert len(r.search(query).hits) == 3

        first = sorted(p for p in lib.rglob("*.mp4"))[0]
        first.unlink()
        shutil.copy2(sorted(lib.rglob("*.mp4"))[0], lib / "copy.mp4")  # a new file (same content, another id)
        r.refresh(jobs=1)
        col = r._collections["video"]
        assert col.ann is not None and len(col.ann) == len(col) == 6
        assert col.ann.search(np.asarray(col.vecs[0]), 6).tolist() == list(range(6))
    finally:
        r.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = Retriever.open(lib, model, jobs=1)
        again.close()
    assert not [m for m in caplog.messages if "rebuilt" in m]  # read back as it was left, not rebuilt


def test_a_damaged_or_foreign_index_is_rebuilt_with_a_message(
    big_library: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    lib, model = big_library
    Retriever.open(lib, model, jobs=1).close()
    graph = lib / ".fmn-index" / "ann-video.faiss"
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])  # as a disk full or a crash could leave it
    side = lib / ".fmn-index" / "ann-speech.json"
    side.write_text(json.dumps({**json.loads(side.read_text()), "identity": "another model"}))
    with caplog.at_level(logging.WARNING):
        r = Retriever.open(lib, model, jobs=1)
    try:
        rebuilt = [m for m in caplog.messages if "rebuilt" in m]
        assert len(rebuilt) == 2 and any("another model" in m for m in rebuilt), rebuilt
        for modality in ("video", "speech"):
            col = r._collections[modality]
            assert col.ann is not None and len(col.ann) == len(col)
    finally:
        r.close()


def test_without_faiss_a_big_library_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # as if the package were not installed
    vecs = _clustered(np.random.default_rng(2), 100, 8)
    with pytest.raises(FmnError, match="pip install faiss-cpu"):
        AnnIndex(8, "model").sync(row_keys([f"v{i}" for i in range(100)], {}), vecs)
