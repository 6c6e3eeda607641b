"""Long videos in the index: windows written whole or not at all, searched as moments the evaluation would choose."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fmn_core.cli import main
from fmn_core.eval.scoring import log_s
from fmn_core.features.video import VideoFrontEndConfig, normalize_clip, window_clips
from fmn_core.index import indexer
from fmn_core.index.export import render
from fmn_core.index.indexer import Indexer
from fmn_core.index.moments import merge_windows, moment_scores, windows
from fmn_core.index.retriever import Retriever
from fmn_core.index.store import Store
from fmn_core.inference import FMNModel
from fmn_core.manifest import BACKGROUND, read_manifest
from fmn_core.models import FMNConfig, create_fmn
from fmn_core.models.speech import SpeechEncoderConfig

SMALL = FMNConfig(speech=SpeechEncoderConfig(hidden=32, frame_stack=3), embed_dim=32, fusion_hidden=32)
RECIPE_IDS = ["recipes/recipe_000.mp4", "recipes/recipe_001.mp4"]


def save_windowed_model(folder: Path) -> Path:
    """Save a small random model whose windows (2 s every 1 s) make a short recipe video a long one."""
    torch.manual_seed(0)
    fe = VideoFrontEndConfig(frames=SMALL.video.input_frames, size=SMALL.video.input_size, window=2.0, hop=1.0)
    FMNModel(create_fmn(SMALL).eval(), SMALL, video_frontend=fe).save(folder)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random model whose windows make the short test recipes long videos."""
    return save_windowed_model(tmp_path_factory.mktemp("model") / "m")


@pytest.fixture
def library(recipe_corpus: Path, tmp_path: Path) -> Path:
    out = tmp_path / "lib"
    shutil.copytree(recipe_corpus, out, ignore=shutil.ignore_patterns(".fmn-index"))
    return out


def _window_rows(store: Store, item_id: str) -> list[tuple[float, float, bytes]]:
    with sqlite3.connect(store.path) as db:
        return db.execute("SELECT start, end, raw FROM windows WHERE item_id = ? ORDER BY idx", (item_id,)).fetchall()


def test_a_long_video_is_one_item_indexed_as_windows(library: Path, model_dir: Path) -> None:
    r = Retriever.open(library, model_dir, jobs=1)
    try:
        rows = r.store.rows() if r.store else {}
        # its segment rows annotate the file: the file is one item, not one per segment
        assert not any(i.startswith("r_") for i in rows) and set(RECIPE_IDS) <= set(rows)
        for item_id in RECIPE_IDS:
            row = rows[item_id]
            expected = windows(row.duration, 2.0, 1.0)
            assert row.status == "ok" and row.windows == len(expected) > 2
            stored = [x for a, b, _ in _window_rows(r.store, item_id) for x in (a, b)]  # type: ignore[arg-type]
            assert stored == pytest.approx([x for span in expected for x in span])
            previews = r.store.window_previews(item_id)  # type: ignore[union-attr]
            assert [p[0] for p in previews] == pytest.approx([s for s, _ in expected[::2]])  # one per window length
            late = r.thumbnail(item_id, at=row.duration - 1)
            assert late is not None and late.shape[2] == 3
    finally:
        r.close()


def test_search_returns_the_moments_the_evaluation_would_choose(library: Path, model_dir: Path) -> None:
    r = Retriever.open(library, model_dir, jobs=1)
    try:
        speech = [it for it in r.items("speech") if it.status == "ok"]
        query = r.query_from_item(speech[0].id)
        result = r.search(query)
        assert result.hits and all(h.span is not None for h in result.hits)
        scores = [h.s for h in result.hits]
        assert [h.rank for h in result.hits] == list(range(1, len(scores) + 1))

        # The evaluation's path: the video cut into windows, every window scored, then temporal NMS.
        model = FMNModel.load(model_dir)
        path = str(library / RECIPE_IDS[0])
        spans = windows(r.item(RECIPE_IDS[0]).duration, 2.0, 1.0)
        v_raw = model.video_raw_from_clips(
            normalize_clip(torch.from_numpy(window_clips(path, spans, model.video_frontend).clips))
        )
        ranking = model.ranking_scores(v_raw, query.raw[None])[:, 0]
        expected = merge_windows(spans, ranking.tolist())
        found = [h.span for h in result.hits if h.item.id == RECIPE_IDS[0]]
        assert np.allclose(found, [m.span for m in expected], atol=1e-6)

        strip = r.window_scores(query, RECIPE_IDS[0])  # ranked in log S (no background class: no prior)
        np.testing.assert_allclose(strip.scores, log_s(ranking, model.net.combiner.mode), rtol=1e-5, atol=1e-5)
        assert np.allclose(strip.moments()[0].span, found[0])

        # a moment searched back with, and confirmed, uses its own windows
        back = r.query_from_item(RECIPE_IDS[0], found[0])
        assert back.modality == "video" and not torch.allclose(back.raw, r.query_from_item(RECIPE_IDS[0]).raw)
        updates = r.confirm(query, RECIPE_IDS[0], found[0])
        assert updates and updates[0].source_ids[0] == RECIPE_IDS[0]
    finally:
        r.close()


def test_stretches_decoded_apart_give_the_windows_of_one_pass(
    library: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = Retriever.open(library, model_dir, jobs=1)
    one_pass = {i: _window_rows(whole.store, i) for i in RECIPE_IDS}  # type: ignore[arg-type]
    whole.close()
    shutil.rmtree(library / ".fmn-index")
    monkeypatch.setattr(indexer, "WINDOW_CHUNK", 3)  # several stretches per video, decoded by a pool of 2
    apart = Retriever.open(library, model_dir, jobs=2)
    try:
        for item_id in RECIPE_IDS:
            rows = _window_rows(apart.store, item_id)  # type: ignore[arg-type]
            assert len(rows) == len(one_pass[item_id])
            for (a0, a1, a), (b0, b1, b) in zip(rows, one_pass[item_id], strict=True):
                assert (a0, a1) == (b0, b1)
                np.testing.assert_allclose(np.frombuffer(a, np.float32), np.frombuffer(b, np.float32), atol=1e-5)
    finally:
        apart.close()


def test_a_cancelled_run_never_leaves_half_a_video(
    library: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indexer, "WINDOW_CHUNK", 2)
    model = FMNModel.load(model_dir)
    with Store(library) as store:
        from fmn_core.index.identity import model_identity

        store.attach_model(model_identity(model, store), model.net.memory.snapshot())
        seen: list[int] = []
        report = Indexer(store, model, jobs=1).run(
            progress=lambda done, total: seen.append(done), cancel=lambda: len(seen) >= 3
        )
        assert report.cancelled and store.staged() == 0  # the unfinished video's stretches are dropped
        for item_id, row in store.rows().items():  # whatever was written is whole
            if row.modality == "video":
                assert row.windows == len(_window_rows(store, item_id)) > 0
        assert store.integrity_check() == "ok"
        again = Indexer(store, model, jobs=1).run()
        assert not again.cancelled and {i for i in RECIPE_IDS} <= set(store.rows())
        assert all(store.rows()[i].windows == len(_window_rows(store, i)) > 0 for i in RECIPE_IDS)


_KILLED_RUN = """
import os, signal, sys
from fmn_core.index import indexer
from fmn_core.index.identity import model_identity
from fmn_core.index.store import Store
from fmn_core.inference import FMNModel

indexer.WINDOW_CHUNK = 2  # many stretches per video: the kill lands inside one
library, model_dir, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = FMNModel.load(model_dir)
store = Store(library)
store.attach_model(model_identity(model, store), model.net.memory.snapshot())

def progress(done, total):
    print(done, total, flush=True)
    if done >= kill_at:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup of any kind, as a crash of the app

indexer.Indexer(store, model, jobs=1).run(progress=progress)
"""


def test_a_killed_run_inside_a_long_video_leaves_no_half_video_and_resumes(library: Path, model_dir: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN, str(library), str(model_dir), "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    with Store(library) as store:
        assert store.integrity_check() == "ok"
        assert store.staged() > 0  # stretches of the video it was in were written, and not committed
        for item_id, row in store.rows().items():
            if row.modality == "video" and row.status == "ok":
                assert row.windows == 0 or row.windows == len(_window_rows(store, item_id))
        assert not any(store.rows().get(i) for i in RECIPE_IDS[1:])  # the kill came before the last video
    r = Retriever.open(library, model_dir, jobs=1)
    try:
        assert r.store is not None and r.store.staged() == 0
        for item_id in RECIPE_IDS:
            row = r.store.rows()[item_id]
            assert row.status == "ok" and row.windows == len(windows(row.duration, 2.0, 1.0))
            assert len(_window_rows(r.store, item_id)) == row.windows
    finally:
        r.close()


def test_a_changed_long_video_re_indexes_only_itself(library: Path, model_dir: Path) -> None:
    Retriever.open(library, model_dir, jobs=1).close()
    shutil.copyfile(library / RECIPE_IDS[0], library / RECIPE_IDS[1])  # new content in the second recipe
    r = Retriever.open(library, model_dir, jobs=1)
    try:
        assert r.report.updated == 1 and r.report.added == 0
        assert _window_rows(r.store, RECIPE_IDS[1]) == _window_rows(r.store, RECIPE_IDS[0])  # type: ignore[arg-type]
    finally:
        r.close()


def test_long_videos_indexed_before_windows_are_encoded_again(library: Path, model_dir: Path) -> None:
    Retriever.open(library, model_dir, jobs=1).close()
    # As the first schema left them: no windows table, no windows column, a long video as one clip.
    db = sqlite3.connect(library / ".fmn-index" / "index.sqlite")
    db.executescript(
        "DROP TABLE windows; ALTER TABLE items DROP COLUMN windows; UPDATE meta SET value = '1' WHERE key = 'schema';"
    )
    db.close()
    r = Retriever.open(library, model_dir, jobs=1)
    try:
        assert r.report.updated == len(RECIPE_IDS)
        assert r.store.get_meta("schema") == "2"  # type: ignore[union-attr]
        assert all(r.store.rows()[i].windows > 0 for i in RECIPE_IDS)  # type: ignore[union-attr]
    finally:
        r.close()


def test_search_command_gives_start_and_end(library: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = read_manifest(library / "manifest.csv")
    audio = manifest.resolve(manifest.of("speech")[0])
    args = ["search", "--index", str(library), "--audio", str(audio), "--model", str(model_dir), "--no-transcript"]
    assert main([*args, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits and all(h["end"] > h["start"] >= 0 for h in hits)
    assert main(args) == 0
    assert "0:0" in capsys.readouterr().out  # the text table shows the moment, m:ss–m:ss
    r = Retriever.open(library, model_dir, jobs=1)
    try:
        playlist = render(r.search(r.query_from_file(audio), top=3), "m3u")
    finally:
        r.close()
    assert playlist.count("#EXTVLCOPT:start-time=") == 3 and playlist.count("#EXTVLCOPT:stop-time=") == 3


@pytest.fixture(scope="module")
def background_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random model whose I3D has a background class (as one trained with background rows has)."""
    import dataclasses

    torch.manual_seed(1)
    cfg = dataclasses.replace(SMALL, video=dataclasses.replace(SMALL.video, num_classes=4))
    fe = VideoFrontEndConfig(frames=cfg.video.input_frames, size=cfg.video.input_size, window=2.0, hop=1.0)
    folder = tmp_path_factory.mktemp("bg-model") / "m"
    classes = ["cut_onion", "pour_oil", "stir_pan", BACKGROUND]
    FMNModel(create_fmn(cfg).eval(), cfg, video_frontend=fe, class_names=classes).save(folder)
    return folder


def test_the_background_prior_ranks_windows_in_search_as_in_the_evaluation(
    library: Path, background_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", "--moments", "--choose-prior", "--model", str(background_model), "--manifest",
            str(library / "manifest.csv"), "--split", "test", "--jobs", "1"]  # fmt: skip
    assert main(argv) == 0
    prior = json.loads((background_model / "moments.json").read_text())
    grid = {f"weight {w}, centre {c}" for w in ("0", "0.5", "1", "2", "4", "8", "16") for c in ("0", "0.5", "1", "2")}
    assert set(prior["figures"]) == grid and "chose" in capsys.readouterr().out
    # a strong prior and a wide centre, so that they show in the order and the spans whatever was chosen
    prior["background_weight"], prior["centre_within"] = 8.0, 1.0
    (background_model / "moments.json").write_text(json.dumps(prior))
    model = FMNModel.load(background_model)
    assert (model.moment_prior, model.moment_centre) == (8.0, 1.0)
    r = Retriever.open(library, background_model, jobs=1)
    try:
        speech = [it for it in r.items("speech") if it.status == "ok"]
        query = r.query_from_item(speech[0].id)
        found = [h.span for h in r.search(query).hits if h.item.id == RECIPE_IDS[0]]
        path = str(library / RECIPE_IDS[0])
        spans = windows(r.item(RECIPE_IDS[0]).duration, 2.0, 1.0)
        clips = window_clips(path, spans, model.video_frontend).clips
        v_raw = model.video_raw_from_clips(normalize_clip(torch.from_numpy(clips)))
        background = model.background_probability(v_raw)
        assert background is not None and np.all((background > 0) & (background < 1))
        score = log_s(model.ranking_scores(v_raw, query.raw[None])[:, 0], model.net.combiner.mode)
        expected = merge_windows(spans, moment_scores(score, background, 8.0).tolist(), centre=1.0)
        assert np.allclose(found, [m.span for m in expected], atol=1e-6)
        strip = r.window_scores(query, RECIPE_IDS[0])
        np.testing.assert_allclose(strip.scores, moment_scores(score, background, 8.0), rtol=1e-4, atol=1e-4)
        assert np.allclose([m.span for m in strip.moments()], [m.span for m in expected], atol=1e-4)
    finally:
        r.close()
    (background_model / "moments.json").write_text(json.dumps({**prior, "checkpoint_hash": "other weights"}))
    other = FMNModel.load(background_model)
    assert (other.moment_prior, other.moment_centre) == (0.0, 0.0)  # chosen for another checkpoint: not used


def test_moment_scores_add_the_log_prior_only_where_there_is_one() -> None:
    log_s = np.log(np.array([[0.5, 0.2], [0.4, 0.4], [0.3, 0.1]]))
    background = np.array([0.0, 0.75, np.nan])  # NaN: a clip (no prior)
    out = moment_scores(log_s, background, 2.0)
    np.testing.assert_allclose(out[0], log_s[0])
    np.testing.assert_allclose(out[1], log_s[1] + 2 * np.log(0.25))
    np.testing.assert_allclose(out[2], log_s[2])
    assert moment_scores(log_s, background, 0.0) is log_s and moment_scores(log_s, None, 3.0) is log_s


def test_an_index_whose_windows_lack_a_later_column_gains_it(library: Path, model_dir: Path) -> None:
    Retriever.open(library, model_dir, jobs=1).close()
    db = sqlite3.connect(library / ".fmn-index" / "index.sqlite")
    db.execute("ALTER TABLE windows DROP COLUMN background")  # as the first version of schema 2 made it
    db.commit()
    db.close()
    shutil.copyfile(library / RECIPE_IDS[0], library / RECIPE_IDS[1])  # something to write windows for
    r = Retriever.open(library, model_dir, jobs=1)
    try:
        assert r.report.updated == 1 and r.store.integrity_check() == "ok"  # type: ignore[union-attr]
    finally:
        r.close()
