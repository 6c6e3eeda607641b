"""Moments in the window: a long video's hit shows its time range, plays it, and draws the score along the video."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtMultimedia import QMediaPlayer

from app.main_window import MainWindow
from fmn_core.manifest import read_manifest

RECIPES = ["recipes/recipe_000.mp4", "recipes/recipe_001.mp4"]


@pytest.fixture(scope="module")
def windowed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random model whose windows (2 s every 1 s) make the test recipes long videos."""
    import torch

    from fmn_core.features.video import VideoFrontEndConfig
    from fmn_core.inference import FMNModel
    from fmn_core.models import FMNConfig, create_fmn
    from fmn_core.models.speech import SpeechEncoderConfig

    torch.manual_seed(0)
    cfg = FMNConfig(speech=SpeechEncoderConfig(hidden=32, frame_stack=3), embed_dim=32, fusion_hidden=32)
    fe = VideoFrontEndConfig(frames=cfg.video.input_frames, size=cfg.video.input_size, window=2.0, hop=1.0)
    folder = tmp_path_factory.mktemp("windowed") / "model"
    FMNModel(create_fmn(cfg).eval(), cfg, video_frontend=fe).save(folder)
    return folder


@pytest.fixture()
def on_recipes(qtbot, window: MainWindow, recipe_corpus: Path, windowed_model: Path, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    folder = tmp_path / "recipes"
    shutil.copytree(recipe_corpus, folder, ignore=shutil.ignore_patterns(".fmn-index"))
    with qtbot.waitSignals([window.session.opened, window.session.banksChanged], timeout=60000):
        assert window.open_library(folder, windowed_model)
    manifest = read_manifest(folder / "manifest.csv")
    with qtbot.waitSignal(window.session.ranked, timeout=20000):
        window.query_file(manifest.resolve(manifest.of("speech")[0]))
    return window


def test_a_moment_shows_its_range_seeks_there_and_draws_the_score_along_the_video(
    qtbot, on_recipes: MainWindow
) -> None:  # type: ignore[no-untyped-def]
    w = on_recipes
    hits = w.results.hits
    assert hits and all(h.span is not None and h.item.id in RECIPES for h in hits)
    videos = len({h.item.id for h in hits})
    assert w.results.heading.text().startswith(f"{len(hits)} moments of {videos} videos ranked for ")
    row = next(i for i, h in enumerate(hits) if h.span[0] > 0)  # a moment that does not start the video
    hit = hits[row]
    index = w.results.model.index(row)
    assert "0:0" in index.data() and w.results.model.preview(hit.key) is not None  # its range; its own thumbnail
    w.results.select_row(row)
    player, strip = w.preview.player, w.preview.strip
    qtbot.waitUntil(
        lambda: player.mediaStatus() in (QMediaPlayer.MediaStatus.LoadedMedia, QMediaPlayer.MediaStatus.BufferedMedia),
        timeout=10000,
    )
    qtbot.waitUntil(lambda: abs(player.position() - hit.span[0] * 1000) < 150, timeout=5000)  # at the moment's start
    qtbot.waitUntil(strip.isVisible, timeout=10000)  # the scores arrive from a worker
    assert len(strip.scores) == len(strip.middles) > 2 and strip.shown == hit.span
    assert strip.marks == sorted(strip.marks, key=lambda m: m.start) and strip.marks

    # clicking the strip seeks there, and the moment's range no longer holds the player
    with qtbot.waitSignal(strip.seekRequested, timeout=2000):
        qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=QPointF(strip.width() * 0.9, 10).toPoint())
    assert w.preview.span is None
    qtbot.waitUntil(lambda: player.position() > 0.75 * strip.duration * 1000, timeout=5000)

    # the previous-moment key walks back to a marked moment and plays it as a range
    first = strip.marks[0]
    while w.preview.next_moment(False) is not None:
        pass
    assert w.preview.span == first.span and strip.shown == first.span


def test_a_moment_plays_as_a_range_and_stops_at_its_end(qtbot, on_recipes: MainWindow) -> None:  # type: ignore[no-untyped-def]
    w = on_recipes
    w.results.select_row(0)
    hit = w.results.current_hit()
    player = w.preview.player
    qtbot.waitUntil(
        lambda: player.mediaStatus() in (QMediaPlayer.MediaStatus.LoadedMedia, QMediaPlayer.MediaStatus.BufferedMedia),
        timeout=10000,
    )
    w.preview.play()
    qtbot.waitUntil(lambda: player.playbackState() == QMediaPlayer.PlaybackState.PlayingState, timeout=5000)
    qtbot.waitUntil(lambda: player.playbackState() == QMediaPlayer.PlaybackState.PausedState, timeout=15000)
    assert hit.span[1] * 1000 - 50 <= player.position() <= hit.span[1] * 1000 + 600  # paused where the moment ends


def test_confirming_a_moment_teaches_the_banks_that_moment(qtbot, on_recipes: MainWindow) -> None:  # type: ignore[no-untyped-def]
    w = on_recipes
    w.results.select_row(0)
    hit = w.results.current_hit()
    with qtbot.waitSignal(w.session.banksChanged, timeout=20000):
        w.confirm_current()
    log = w.session.retriever.update_log()
    assert log and log[-1].source_ids[0] == hit.item.id
    # "Use as query" on a moment searches with that moment (its windows), not the whole video
    w.results.list.setFocus()
    with qtbot.waitSignal(w.session.ranked, timeout=20000):
        w.use_as_query_action.trigger()
    assert w.session.last.query.source.startswith(f"item:{hit.item.id}@")
