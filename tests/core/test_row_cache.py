"""A big library's features mapped from flat files: the same rows as the joined blobs, rebuilt
from SQLite when the files cannot be used, kept in step as items come and go by reading only
the rows that changed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fmn_core.index import row_cache
from fmn_core.index.records import ItemRecord, StoredItem, Vectors, WindowFeatures
from fmn_core.index.retriever import Retriever
from fmn_core.index.store import Store
from tests.core.test_index import folder_library, save_model

E, DV, DA = 8, 12, 10  # widths of the common space, raw video and raw speech features


def _record(item_id: str, modality: str, seed: int, windows: int = 0) -> ItemRecord:
    rng = np.random.default_rng(seed)
    row = StoredItem(item_id, f"{item_id}.x", modality, 1, 1, f"hash-{seed}", 1.0, None, None, "ok", None, windows)
    raw = rng.standard_normal(DV if modality == "video" else DA).astype(np.float32)
    return ItemRecord(row, None, raw, rng.standard_normal(E).astype(np.float32))


def _long_video(store: Store, item_id: str, seed: int, n: int = 3) -> ItemRecord:
    """A long video: ``n`` windows staged, then its item (as the indexer writes one)."""
    rng = np.random.default_rng(seed)
    spans = np.array([(i, i + 2.0) for i in range(n)])
    stretch = WindowFeatures(0, spans, rng.standard_normal((n, DV)).astype(np.float32),
                             rng.standard_normal((n, E)).astype(np.float32), {}, rng.random(n))  # fmt: skip
    store.stage_windows(item_id, stretch)
    return _record(item_id, "video", seed, windows=n)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An index of 5 clips and a long video of 3 windows (video: 8 rows), and 4 speech items."""
    (tmp_path / "index").mkdir()
    s = Store(tmp_path / "lib", tmp_path / "index")
    s.set_meta("model", json.dumps({"model": "a"}))
    records = [_record(f"v{i}", "video", i) for i in range(5)] + [_record(f"s{i}", "speech", 10 + i) for i in range(4)]
    s.write_items([*records, _long_video(s, "v2-long", 20)])
    yield s
    s.close()


def _assert_same(a: Vectors, b: Vectors) -> None:
    assert a.ids == b.ids
    np.testing.assert_array_equal(a.vec, b.vec)
    np.testing.assert_array_equal(a.raw, b.raw)
    for x, y in ((a.spans, b.spans), (a.background, b.background)):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)


def _rebuilt(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "rebuilt" in r.getMessage() and r.levelno >= logging.WARNING]


@pytest.mark.parametrize("map_above", [0, 5])  # both modalities mapped; only video (8 rows), speech (4) joined
def test_mapped_rows_are_the_joined_rows(store: Store, map_above: int) -> None:
    rows, joined = store.load()
    mapped_rows, mapped = store.load(map_above=map_above)
    assert mapped_rows == rows
    for modality in ("video", "speech"):
        _assert_same(mapped[modality], joined[modality])
    assert isinstance(mapped["video"].vec, np.memmap) and not mapped["video"].raw.flags.writeable
    assert isinstance(mapped["speech"].raw, np.memmap) == (map_above == 0)
    assert mapped["video"].ids.count("v2-long") == 3 and mapped["video"].spans is not None
    sidecars = {p.name for p in store.folder.glob("rows-*.json")}
    assert sidecars == ({"rows-video.json", "rows-speech.json"} if map_above == 0 else {"rows-video.json"})


def test_small_libraries_keep_their_features_in_memory(store: Store) -> None:
    _, vectors = store.load(map_above=100)
    assert not isinstance(vectors["video"].vec, np.memmap)
    assert not list(store.folder.glob("rows-*"))


def test_a_reopened_library_reads_its_files_back(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.load(map_above=0)
    side = json.loads((store.folder / "rows-video.json").read_text())
    store.close()
    with caplog.at_level(logging.INFO), Store(tmp_path / "lib", tmp_path / "index") as again:
        _, vectors = again.load(map_above=0)
        assert Path(vectors["video"].vec.filename).name == side["vec_file"]  # type: ignore[attr-defined]
    assert not [m for m in caplog.messages if "rebuilt" in m]


def _edit_a_row(store: Store) -> None:
    store.write_items([_record("v1", "video", 99)])  # features written again (the file changed)


def _delete_the_file(store: Store) -> None:
    (store.folder / json.loads((store.folder / "rows-video.json").read_text())["raw_file"]).unlink()


def _truncate_the_file(store: Store) -> None:
    path = store.folder / json.loads((store.folder / "rows-video.json").read_text())["vec_file"]
    path.write_bytes(path.read_bytes()[: -E * 4 - 3])  # as a disk full or a crash could leave it


def _another_model(store: Store) -> None:
    store.set_meta("model", json.dumps({"model": "b"}))


def _damaged_description(store: Store) -> None:
    (store.folder / "rows-video.json").write_text("{ half")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (_delete_the_file, "cannot be read"),
        (_truncate_the_file, "cannot be read"),
        (_another_model, "another model"),
        (_damaged_description, "description cannot be read"),
    ],
)
def test_files_that_do_not_match_the_index_are_rebuilt_with_a_message(
    store: Store, change: object, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    store.load(map_above=0)
    before = set(store.folder.glob("rows-video-*"))
    change(store)  # type: ignore[operator]
    with caplog.at_level(logging.WARNING):
        _, mapped = store.load(map_above=0)
    messages = [m for m in _rebuilt(caplog) if " video " in m]  # another model rebuilds speech's too
    assert len(messages) == 1 and why in messages[0], messages
    _assert_same(mapped["video"], store.load()[1]["video"])
    assert not before & set(store.folder.glob("rows-video-*"))  # the old files are gone
    assert not list(store.folder.glob("*.tmp"))


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which rows are read from SQLite while the files are written (a pass over every row fails)."""
    read: list[str] = []
    looked_up = Store._blobs_at

    def counted(self: Store, modality: str, keys: list[row_cache.RowKey]) -> Iterator[tuple[bytes, bytes]]:
        read.extend(f"{k[0]}@{k[1]}" for k in keys)
        return looked_up(self, modality, keys)

    def every_row(*_: object) -> Iterator[tuple[bytes, bytes]]:
        raise AssertionError("every row was read: the files were rebuilt, not updated")

    monkeypatch.setattr(Store, "_blobs_at", counted)
    monkeypatch.setattr(Store, "_blobs", every_row)
    return read


def test_a_changed_row_is_the_only_one_read_again(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store.load(map_above=0)
    _edit_a_row(store)
    read = _count_reads(monkeypatch)
    with caplog.at_level(logging.INFO):
        _, mapped = store.load(map_above=0)
    assert read == ["v1@-1"]
    assert "video feature files updated: 7 of 8 rows kept, 1 read" in caplog.text
    assert not _rebuilt(caplog)  # a change of the library is no damage: nothing to warn about
    monkeypatch.undo()
    _assert_same(mapped["video"], store.load()[1]["video"])


def test_adding_and_removing_items_keeps_the_files_in_step(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store.load(map_above=0)
    store.write_items([_record("v10", "video", 30), _long_video(store, "v0-long", 31, n=4)])
    store.delete_items(["v3", "v2-long"])
    read = _count_reads(monkeypatch)
    _, mapped = store.load(map_above=0)
    assert read == ["v0-long@0", "v0-long@1", "v0-long@2", "v0-long@3", "v10@-1"]  # the new rows only
    monkeypatch.undo()
    _, joined = store.load()
    for modality in ("video", "speech"):
        _assert_same(mapped[modality], joined[modality])
    assert len(mapped["video"].ids) == 5 - 1 + 1 + 4
    assert len(list(store.folder.glob("rows-video-*.npy"))) == 3  # this build's vec, raw and keys only


def test_a_rebuild_killed_midway_leaves_the_old_files_usable(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store.load(map_above=0)
    store.write_items([_record("v0", "video", 98), _record("v4", "video", 99)])  # the first row and the last
    blobs = Store._blobs_at

    def dies_midway(self: Store, modality: str, keys: list[row_cache.RowKey]) -> Iterator[tuple[bytes, bytes]]:
        for n, b in enumerate(blobs(self, modality, keys)):
            if n == 1:
                raise KeyboardInterrupt  # stands for a kill: nothing after this point runs
            yield b

    monkeypatch.setattr(row_cache, "BATCH", 2)  # some rows are already in the new file
    monkeypatch.setattr(Store, "_blobs_at", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        store.load(map_above=0)
    monkeypatch.undo()
    # A kill -9 would leave its temporary files: they are never read, and the next build removes them.
    (store.folder / "rows-video-0123.vec.npy.tmp").write_bytes(b"half")
    old = json.loads((store.folder / "rows-video.json").read_text())
    assert all((store.folder / old[f"{part}_file"]).is_file() for part in row_cache.PARTS)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        _, mapped = store.load(map_above=0)
    assert "6 of 8 rows kept, 2 read" in caplog.text and not _rebuilt(caplog)  # the old files were whole
    _assert_same(mapped["video"], store.load()[1]["video"])
    assert not list(store.folder.glob("*.tmp"))


def test_a_big_library_searches_its_mapped_features_as_its_joined_ones(tiny_corpus: Path, tmp_path: Path) -> None:
    lib = folder_library(tiny_corpus, tmp_path / "lib", videos=4, speech=3)
    r = Retriever.open(lib, save_model(tmp_path / "model"), jobs=1)
    try:
        queries = [r.query_from_item(it.id) for it in r.items() if it.status == "ok"]
        before = [[(h.item.id, h.s, h.span) for h in r.search(q).hits] for q in queries]
        r.ann_threshold = 0  # every modality is big now: mapped features and the approximate index
        r.reload()
        assert all(isinstance(c.raw, np.memmap) and c.ann is not None for c in r._collections.values())
        after = [[(h.item.id, h.s, h.span) for h in r.search(q).hits] for q in queries]
        assert after == before and all(before)
    finally:
        r.close()
