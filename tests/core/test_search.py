"""Search: rankings as the evaluation scores them, bank updates that persist and undo exactly, bad queries."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from fmn_core.cli import main
from fmn_core.features.audio import speech_features
from fmn_core.index.bench import BenchConfig, run_bench
from fmn_core.index.retriever import Retriever
from fmn_core.index.synthetic import speech_wav, synthetic_retriever
from fmn_core.inference import FMNModel
from fmn_core.manifest import read_manifest
from fmn_core.media.audio_io import write_wav
from fmn_core.media.errors import MediaError
from fmn_core.models import FMNConfig, create_fmn
from fmn_core.models.speech import SpeechEncoderConfig

SMALL = FMNConfig(
    speech=SpeechEncoderConfig(hidden=32, frame_stack=3), embed_dim=32, fusion_hidden=32, memory_capacity=8
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    FMNModel(create_fmn(SMALL).eval(), SMALL).save(folder)
    return folder


@pytest.fixture(scope="module")
def library(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny corpus (a library with a manifest), so its index does not touch the shared corpus."""
    out = tmp_path_factory.mktemp("library") / "lib"
    shutil.copytree(tiny_corpus, out)
    return out


@pytest.fixture(scope="module")
def retriever(library: Path, model_dir: Path) -> Iterator[Retriever]:
    r = Retriever.open(library, model_dir, jobs=2)
    yield r
    r.close()


def _buffers(r: Retriever) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in r.model.net.memory.named_buffers()}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_items_carry_manifest_metadata_and_previews(retriever: Retriever, library: Path) -> None:
    manifest = read_manifest(library / "manifest.csv")
    assert [it.id for it in retriever.items()] == sorted(r.id for r in manifest.rows)
    assert len(retriever.items("video")) == 9 and all(it.status == "ok" for it in retriever.items())
    speech = retriever.items("speech")[0]
    assert speech.text and speech.label and speech.path.is_file() and speech.duration > 0.3
    thumb = retriever.thumbnail(retriever.items("video")[0].id)
    assert thumb is not None and thumb.dtype == np.uint8 and thumb.shape[1:] == (160, 3)
    peaks = retriever.waveform(speech.id)
    assert peaks is not None and peaks.shape == (200,) and 0 < peaks.max() <= 1
    assert retriever.thumbnail(speech.id) is None and retriever.waveform(retriever.items("video")[0].id) is None


@pytest.mark.parametrize("direction", ["speech", "video"])
def test_search_command_ranks_as_the_evaluation_does(
    retriever: Retriever, library: Path, model_dir: Path, direction: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = read_manifest(library / "manifest.csv")
    query_row = manifest.of(direction)[-1]
    flag = "--audio" if direction == "speech" else "--video"
    args = ["search", "--index", str(library), flag, str(manifest.resolve(query_row)), "--top", "50", "--json"]
    assert main([*args, "--model", str(model_dir)]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]

    # The evaluation's path: every file encoded on its own by FMNModel, all pairs scored at once.
    model = FMNModel.load(model_dir)
    targets = manifest.of("video" if direction == "speech" else "speech")
    if direction == "speech":
        others = torch.stack([model.video_raw(manifest.resolve(r)) for r in targets])
        scores = model.ranking_scores(others, model.speech_raw(manifest.resolve(query_row))[None])[:, 0]
        s = model.score_pairwise(others, model.speech_raw(manifest.resolve(query_row))[None]).s[:, 0]
    else:
        others = model.speech_raw_from_mfcc([speech_features(manifest.resolve(r)) for r in targets])
        scores = model.ranking_scores(model.video_raw(manifest.resolve(query_row))[None], others)[0]
        s = model.score_pairwise(model.video_raw(manifest.resolve(query_row))[None], others).s[0]
    order = np.argsort(-scores, kind="stable")
    assert [h["id"] for h in hits] == [targets[i].id for i in order]
    assert [h["rank"] for h in hits] == list(range(1, len(targets) + 1))
    np.testing.assert_allclose([h["s"] for h in hits], s.numpy()[order], atol=1e-5)


def test_query_from_item_matches_query_from_file(retriever: Retriever) -> None:
    item = retriever.items("speech")[2]
    from_item, from_file = retriever.query_from_item(item.id), retriever.query_from_file(item.path)
    assert from_item.source == f"item:{item.id}" and from_item.item_id == item.id and from_file.item_id is None
    torch.testing.assert_close(from_item.raw, from_file.raw, atol=1e-5, rtol=1e-4)
    result = retriever.search(from_item, top=3)
    assert [h.rank for h in result.hits] == [1, 2, 3] and all(h.item.modality == "video" for h in result.hits)
    assert result.memory_vector.shape == (SMALL.memory_capacity,) and result.seconds > 0


def test_confirm_writes_the_banks_persists_and_undo_restores_exactly(
    retriever: Retriever, library: Path, model_dir: Path
) -> None:
    before = _buffers(retriever)
    assert not retriever.can_undo and retriever.undo() is False
    query = retriever.query_from_item(retriever.items("speech")[0].id)
    video = retriever.items("video")[4].id
    updates = retriever.confirm(query, video)
    assert len(updates) == 1 and updates[0].kind == "append" and updates[0].source_ids == (video, query.item_id)
    after = _buffers(retriever)
    assert not torch.equal(after["video.slots"], before["video.slots"])
    slot = updates[0].slot
    info = retriever.bank_slots("video")[slot]
    assert info.used and info.hits == 1 and info.source_ids == [video, query.item_id] and info.last_update
    assert retriever.bank_similarity("speech")[slot, slot] == pytest.approx(1.0)
    hit = next(h for h in retriever.search(query).hits if h.item.id == video)
    assert hit.slot == slot and hit.memory > 0.99  # the pair is remembered exactly
    assert retriever.update_log() == updates

    reopened = Retriever.open(library, model_dir, jobs=1)  # a second session sees the change
    _assert_same(_buffers(reopened), after)
    assert reopened.update_log() == updates and not reopened.can_undo
    reopened.close()

    assert retriever.can_undo and retriever.undo() is True
    _assert_same(_buffers(retriever), before)
    assert retriever.update_log() == [] and not retriever.can_undo
    reopened = Retriever.open(library, model_dir, jobs=1)
    _assert_same(_buffers(reopened), before)  # the undo is persisted too
    reopened.close()


def test_a_confirmed_spoken_query_teaches_the_voice_and_undo_forgets_it(
    retriever: Retriever, library: Path, model_dir: Path
) -> None:
    before = _buffers(retriever)
    memory = retriever.model.net.memory
    speech = retriever.items("speech")[:2]
    videos = [v.id for v in retriever.items("video")[3:5]]
    mine = [retriever.query_from_file(library / s.path) for s in speech]  # the user's own voice
    plain = retriever.search(mine[0]).memory_vector
    retriever.confirm(retriever.query_from_item(speech[0].id), videos[0])  # a library's clip: no voice
    assert int(memory.voice_count) == 0
    for query, video in zip(mine, videos, strict=True):
        retriever.confirm(query, video)
    assert int(memory.voice_count) == 2 and float(memory.voice_sq) > 0
    torch.testing.assert_close(memory.adjust_voice(mine[0].raw), mine[0].raw - memory.voice_offset)
    if float(memory.voice_offset.norm()) > 0:  # the two residuals agreed enough to move the queries
        assert not np.allclose(retriever.search(mine[0]).memory_vector, plain)
    reopened = Retriever.open(library, model_dir, jobs=1)  # the voice is kept with the banks
    assert int(reopened.model.net.memory.voice_count) == 2
    reopened.close()
    assert retriever.undo() and int(memory.voice_count) == 1  # each confirmation is undone with its voice
    assert retriever.undo() and retriever.undo() and int(memory.voice_count) == 0
    _assert_same(_buffers(retriever), before)


def test_auto_update_learns_confident_matches(retriever: Retriever) -> None:
    before = _buffers(retriever)
    memory = retriever.model.net.memory
    t1 = memory.t1
    memory.t1 = 0.0  # every match is confident
    retriever.auto_update = True
    try:
        query = retriever.query_from_item(retriever.items("video")[1].id)
        best = retriever.search(query, top=1).hits[0]
        log = retriever.update_log()
        assert len(log) == 1 and log[0].source_ids == (query.item_id, best.item.id)
        retriever.auto_update = False
        retriever.search(query)
        assert len(retriever.update_log()) == 1
        assert retriever.undo()
    finally:
        memory.t1, retriever.auto_update = t1, False
    _assert_same(_buffers(retriever), before)


def test_bad_queries_are_refused_clearly(
    retriever: Retriever, library: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(MediaError, match="silent"):
        retriever.query_from_wave(np.zeros(16000, np.float32))
    with pytest.raises(MediaError, match="0.3 s"):
        retriever.query_from_wave(0.5 * np.sin(np.arange(1600, dtype=np.float32) / 5))
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        retriever.query_from_file(tmp_path / "empty.wav")
    (tmp_path / "notes.xyz").write_text("not media at all")
    with pytest.raises(MediaError, match="neither"):
        retriever.query_from_file(tmp_path / "notes.xyz")
    with pytest.raises(Exception, match="no item"):
        retriever.query_from_item("nope")

    video = retriever.items("video")[0].path  # --audio reads a video's sound track, and these videos have none
    assert main(["search", "--index", str(library), "--audio", str(video), "--model", str(model_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert "a video without sound" in err and "\n" not in err
    speech = retriever.items("speech")[0].path
    assert main(["search", "--index", str(library), "--video", str(speech), "--model", str(model_dir)]) == 2
    assert "--video wants a video" in capsys.readouterr().err


def test_recordings_at_other_rates_and_long_ones_are_used(
    retriever: Retriever, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    wave = 0.5 * np.sin(2 * np.pi * 220 * np.arange(8000, dtype=np.float32) / 8000)
    query = retriever.query_from_wave(wave, sample_rate=8000)
    assert query.modality == "speech" and query.source == "recording" and query.raw.shape == (4 * 32,)
    long = np.tile(wave, 70)  # 70 s at 8 kHz
    with caplog.at_level(logging.WARNING):
        retriever.query_from_wave(long, sample_rate=8000)
    assert "using the first 30 s" in caplog.text
    path = tmp_path / "long.wav"
    write_wav(path, np.tile(wave, 40), sr=8000)  # 40 s
    query = retriever.query_from_file(path)
    assert query.notes == ("long.wav is 40.0 s long; only its first 30 s were used.",)
    write_wav(path, wave, sr=8000)
    assert retriever.query_from_file(path).notes == ()


def test_two_stage_ranking_rescores_the_best_cosine_candidates(retriever: Retriever) -> None:
    query = retriever.query_from_item(retriever.items("speech")[3].id)
    full = retriever.search(query)
    assert len(full.hits) == 9
    retriever.rerank = 4
    try:
        short = retriever.search(query)
    finally:
        retriever.rerank = 200
    videos = retriever._collections["video"]
    cos = videos.vecs @ retriever.model.embed_speech(query.raw[None])[0].numpy()
    best = {videos.items[i].id for i in np.argsort(-cos)[:4]}
    assert {h.item.id for h in short.hits} == best
    order = [h.item.id for h in full.hits if h.item.id in best]
    assert [h.item.id for h in short.hits] == order  # S orders the survivors as in the full ranking


def test_in_memory_retriever_scales_and_banks_work_without_a_store() -> None:
    torch.manual_seed(1)
    model = FMNModel(create_fmn(SMALL, with_video_encoder=False).eval(), SMALL)
    r = synthetic_retriever(model, 20_000)
    query = r.query_from_wave(0.5 * np.sin(np.arange(16000, dtype=np.float32) / 7))
    result = r.search(query, top=10)
    assert len(result.hits) == 10 and [h.rank for h in result.hits] == list(range(1, 11))
    assert all(a.s >= b.s - 1e-6 for a, b in zip(result.hits, result.hits[1:], strict=False))
    before = {k: v.clone() for k, v in model.net.memory.named_buffers()}
    r.confirm(query, result.hits[0].item.id)
    assert r.undo()
    for k, v in model.net.memory.named_buffers():
        assert torch.equal(v, before[k])


def test_bench_runs_and_reports(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = BenchConfig(
        clips=1,
        clip_seconds=1.0,
        jobs=1,
        reopen_items=200,
        reopen_repeats=1,
        sizes=(300,),
        queries=3,
        query_threads=(1,),
        encode_runs=1,
        scan_media=30,
        scan_other=20,
        long_copies=(3, 6),  # the two-step recipe (~5 s) made longer than two 5 s windows
        ann_sizes=(3_000,),
        small_recipe=True,
        moment_hours=0.5,
        moment_queries=2,
        ray_clips=0,  # the Ray stage is measured in tests/core/test_ray_index.py, on its shared Ray
    )
    result = run_bench(cfg, model=model_dir, log=lambda line: None)
    d = result.data
    assert d["indexing"]["clips_per_second"] > 0 and d["reopen"]["items"] == 200 and d["query"][0]["size"] == 300
    assert "| speech query" in result.table() and d["peak_rss_mib"] > 0
    assert d["encode"]["cpu"]["speech_3s_file_to_vector"]["p50_ms"] > 0 and "| encode video" in result.table()
    assert (
        d["scan"]["media"] == 30 and d["scan"]["other_seconds"] > 0 and "| scan a folder of 20 other" in result.table()
    )
    runs = d["moments"]["indexing"]
    assert [r["copies"] for r in runs] == [3, 6] and runs[1]["windows"] > runs[0]["windows"] > 0
    assert d["moments"]["query"]["windows"] == 1800 and "top 10 moments of 0.5 h" in result.table()
    assert len(runs[1]["rss_by_tenth_mib"]) == 10 and "peak RSS in each tenth" in result.table()
    ann = d["ann"][0]
    # (the random test model puts every vector close to every other: recall is measured with the shipped one)
    assert ann["size"] == 3000 and 0 < ann["recall_at_10"] <= 1 and ann["end_to_end"]["p50_ms"] > 0
    assert ann["search_step"]["p50_ms"] > 0 and ann["rss"]["build_peak_mib"] >= ann["rss"]["build_peak_anon_mib"] > 0
    assert "| approximate search over 3,000 vectors" in result.table()
    result.write_json(tmp_path / "bench.json")
    assert json.loads((tmp_path / "bench.json").read_text())["query"][0]["p50_ms"] > 0
    assert speech_wav(tmp_path / "q.wav").stat().st_size > 0


def test_search_writes_csv_and_playlists(
    retriever: Retriever, library: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv
    import io

    speech = retriever.items("speech")[0].path
    args = ["search", "--index", str(library), "--model", str(model_dir), "--audio", str(speech), "--top", "3"]
    assert main([*args, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["rank"] for r in rows] == ["1", "2", "3"] and all(r["modality"] == "video" for r in rows)
    assert main([*args, "--format", "m3u", "--no-transcript"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "#EXTM3U" and [Path(p).name for p in lines if not p.startswith("#")] == [
        Path(r["path"]).name for r in rows
    ]


def test_search_output_to_a_closed_pipe_ends_quietly(retriever: Retriever, library: Path, model_dir: Path) -> None:
    import subprocess
    import sys

    speech = retriever.items("speech")[0].path
    cmd = [sys.executable, "-m", "fmn_core.cli", "search", "--index", str(library), "--model", str(model_dir),
           "--audio", str(speech), "--json", "--no-transcript"]  # fmt: skip
    # `| head`: the reader is gone before the JSON is written (its end of the pipe is closed)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(cmd, stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write_end)
    err = done.stderr.decode()
    assert done.returncode == 141 and "Traceback" not in err and "BrokenPipe" not in err, err
