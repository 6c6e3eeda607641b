"""The main window: opening and indexing a library, queries by drop and by item, preview, memory updates, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtMultimedia import QMediaPlayer
from PySide6.QtWidgets import QApplication, QWidget

from app.main import main
from app.main_window import MainWindow
from fmn_core.index.retriever import Retriever
from fmn_core.manifest import read_manifest


def _media(library: Path, modality: str, label: str = "cut_onion") -> Path:
    manifest = read_manifest(library / "manifest.csv")
    return next(manifest.resolve(r) for r in manifest.rows if r.modality == modality and r.label == label)


def drop_file(target: QWidget, path: Path) -> None:
    """Drag a file over ``target`` (any widget of the window) and drop it there, as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = QPointF(QPoint(5, 5))
    actions, button, mods = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(pos, actions, mime, button, mods)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(target, QDropEvent(pos, actions, mime, button, mods))


def _ids(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.item.id for h in hits]


def test_indexes_a_library_in_the_background_and_shows_it(qtbot, window: MainWindow, tiny_corpus, tiny_model, tmp_path):  # type: ignore[no-untyped-def]
    library = tmp_path / "fresh"
    shutil.copytree(tiny_corpus, library, ignore=shutil.ignore_patterns(".fmn-index"))
    progress: list[tuple[int, int]] = []
    window.session.progress.connect(lambda done, total: progress.append((done, total)))
    with qtbot.waitSignal(window.session.opened, timeout=60000):
        assert window.open_library(library, tiny_model)
        assert window.progress.isVisibleTo(window) and window.cancel_button.isVisibleTo(window)
    assert progress and progress[-1][0] == progress[-1][1] == 33
    qtbot.waitUntil(lambda: not window.progress.isVisibleTo(window))
    assert window.library.rows == 9 + 24
    assert window.device_label.text() == "Device: CPU"
    assert window.model_label.text() == "Model: model"
    assert window.library_label.text() == "9 videos · 24 speech clips"
    assert window.settings.value("library") == str(library)
    window.library.filter.setText("切洋葱")  # Chinese class names are searchable
    assert window.library.rows == 3 + 8


def test_cancelling_indexing_keeps_what_is_finished(qtbot, window: MainWindow, tiny_corpus, tiny_model, tmp_path):  # type: ignore[no-untyped-def]
    library = tmp_path / "to-cancel"
    shutil.copytree(tiny_corpus, library, ignore=shutil.ignore_patterns(".fmn-index"))

    # Press Cancel as soon as the first items are done, as a user would.
    def press_cancel(done: int, total: int) -> None:
        if done >= 1:
            window.cancel_button.click()

    window.session.progress.connect(press_cancel)
    with qtbot.waitSignal(window.session.opened, timeout=60000):
        assert window.open_library(library, tiny_model)
    report = window.session.retriever.report
    assert report.cancelled and report.pending > 0
    assert "Indexing cancelled" in window.messages.text
    qtbot.waitUntil(lambda: not window.progress.isVisibleTo(window))
    window.session.progress.disconnect(press_cancel)
    # Opening again finishes the job, keeping every item indexed before the cancel.
    with qtbot.waitSignal(window.session.opened, timeout=60000):
        assert window.open_library(library, tiny_model)
    again = window.session.retriever.report
    assert not again.cancelled and again.unchanged == report.total - report.pending  # nothing done twice
    assert window.library.rows == 9 + 24


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_a_folder_of_the_users_own_files_opens_and_answers(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, tiny_corpus, tiny_model, tmp_path, layout
):
    # A person's folder: no manifest and no <label>/ folders; flat, or nested by date and place.
    manifest = read_manifest(tiny_corpus / "manifest.csv")
    library = tmp_path / "my videos"
    videos = [r for r in manifest.rows if r.modality == "video"]
    for n, row in enumerate(videos):
        sub = library if layout == "flat" else library / f"2026-0{n % 3 + 1}" / ("kitchen" if n % 2 else "garden")
        sub.mkdir(parents=True, exist_ok=True)
        shutil.copy(manifest.resolve(row), sub / f"VID_{n:04d}.mp4")
    (library / "notes.txt").write_text("not media")
    (library / ".thumbnails").mkdir()
    shutil.copy(manifest.resolve(videos[0]), library / ".thumbnails" / "hidden.mp4")
    with qtbot.waitSignal(window.session.opened, timeout=60000):
        assert window.open_library(library, tiny_model)
    assert window.library.rows == len(videos)
    assert window.library_label.text() == f"{len(videos)} videos · 0 speech clips"
    assert window.windowTitle() == "FMN Studio — my videos"
    speech = next(manifest.resolve(r) for r in manifest.rows if r.modality == "speech")
    with qtbot.waitSignal(window.session.ranked, timeout=20000):
        drop_file(window.preview, speech)
    assert len(window.results.hits) == len(videos)
    expected = {f"VID_{n:04d}.mp4" for n in range(len(videos))}
    assert {Path(h.item.id).name for h in window.results.hits} == expected


def test_a_dropped_recording_ranks_the_videos_as_the_retriever_does(
    qtbot, opened: MainWindow, library: Path, tiny_model: Path
) -> None:  # type: ignore[no-untyped-def]
    wav = _media(library, "speech")
    with qtbot.waitSignal(opened.session.ranked, timeout=20000):
        drop_file(opened.results.list.viewport(), wav)  # anywhere on the window
    hits = opened.results.hits
    assert len(hits) == 9 and {h.item.modality for h in hits} == {"video"}
    assert [h.rank for h in hits] == list(range(1, 10))
    # the window shows the core's ranking, computed independently here
    fresh = Retriever.open(library, tiny_model, jobs=1)
    try:
        expected = fresh.search(fresh.query_from_file(wav)).hits
    finally:
        fresh.close()
    assert _ids(hits) == _ids(expected)
    assert [h.s for h in hits] == pytest.approx([h.s for h in expected])
    assert "9 videos ranked for " + wav.name in opened.results.heading.text()
    assert opened.timing_label.text().startswith("Last query: ")
    assert opened.query.replay_button.isEnabled()  # a dropped audio file can be played back


def test_selecting_a_result_loads_it_in_the_player(qtbot, opened: MainWindow, library: Path) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(opened.session.ranked, timeout=20000):
        opened.query_file(_media(library, "speech"))
    opened.results.select_row(2)
    hit = opened.results.current_hit()
    player = opened.preview.player
    qtbot.waitUntil(lambda: player.mediaStatus() == QMediaPlayer.MediaStatus.LoadedMedia, timeout=10000)
    assert Path(player.source().toLocalFile()) == hit.item.path
    assert opened.preview.stack.currentWidget() is opened.preview.poster  # the thumbnail until it plays


def test_a_video_query_ranks_speech_and_items_can_be_queries(qtbot, opened: MainWindow, library: Path) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(opened.session.ranked, timeout=20000):
        opened.query_file(_media(library, "video", "stir_pan"))
    assert len(opened.results.hits) == 24 and opened.results.hits[0].item.modality == "speech"
    assert opened.query.thumbnail.isVisibleTo(opened)  # the query's first frame
    # "Use as query" on a library item, by its shortcut
    opened.library.select_row(0)
    opened.library.table.setFocus()
    item = opened.library.current_item()
    with qtbot.waitSignal(opened.session.ranked, timeout=20000):
        opened.use_as_query_action.trigger()
    assert opened.session.last.query.item_id == item.id
    assert opened.results.hits[0].item.modality != item.modality


def test_confirm_and_undo_change_the_memory_inspector(qtbot, opened: MainWindow, library: Path) -> None:  # type: ignore[no-untyped-def]
    inspector = opened.inspector
    assert inspector.video.slots_shown() == [] and inspector.speech.slots_shown() == []
    with qtbot.waitSignal(opened.session.ranked, timeout=20000):
        opened.query_file(_media(library, "speech"))
    assert not opened.undo_action.isEnabled()
    opened.results.select_row(1)
    confirmed = opened.results.current_hit().item.id
    with qtbot.waitSignals([opened.session.banksChanged, opened.session.ranked], timeout=20000):
        opened.confirm_action.trigger()
    assert inspector.video.slots_shown() == [0] and inspector.speech.slots_shown() == [0]
    assert confirmed in inspector.video.model.item(0, 3).toolTip()
    assert "written into free slot 0" in inspector.summary.text()
    assert "your voice: confirm" in inspector.speech.heading.text()  # empty banks: nothing to measure it by
    assert inspector.chart.used.sum() == 1 and opened.undo_action.isEnabled()
    memory_after = opened.results.hits[[h.item.id for h in opened.results.hits].index(confirmed)].memory
    assert memory_after > 0  # the confirmed pair now agrees with the memory

    with qtbot.waitSignal(opened.session.banksChanged, timeout=20000):
        opened.undo_action.trigger()
    assert inspector.video.slots_shown() == [] and inspector.speech.slots_shown() == []
    qtbot.waitUntil(lambda: not opened.undo_action.isEnabled())
    assert all(h.memory == 0 for h in opened.results.hits)


def test_a_corrupt_file_shows_an_error_and_the_app_keeps_working(
    qtbot, opened: MainWindow, library: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00not really a wave file" * 10)
    with qtbot.waitSignal(opened.session.failed, timeout=20000):
        drop_file(opened.library.table.viewport(), broken)
    assert opened.messages.kind == "error" and "broken.wav" in opened.messages.text
    assert opened.messages.isVisibleTo(opened)
    assert opened.query.query_label.text() == "Query: broken.wav (could not be read)"
    with qtbot.waitSignal(opened.session.ranked, timeout=20000):
        drop_file(opened.preview, _media(library, "speech"))
    assert len(opened.results.hits) == 9
    assert opened.messages.text == ""  # a new query clears the old error


def test_a_folder_without_media_is_refused_and_the_library_stays(qtbot, opened: MainWindow, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty"
    (empty / "notes").mkdir(parents=True)
    (empty / "notes" / "shopping.txt").write_text("onions")
    before = opened.settings.value("library")
    with qtbot.waitSignal(opened.session.failed, timeout=20000):
        assert opened.open_library(empty)
    assert "Cannot open library" in opened.messages.text and "no video or audio" in opened.messages.text
    assert opened.library.rows == 33 and opened.session.retriever is not None
    assert opened.settings.value("library") == before
    with qtbot.waitSignal(opened.session.ranked, timeout=20000):  # the library that stayed open still answers
        drop_file(opened.preview, _media(opened.library_folder, "speech"))
    assert len(opened.results.hits) == 9
    assert not opened.open_library(tmp_path / "no-such-folder")
    assert "no such folder" in opened.messages.text


def test_a_missing_model_is_reported_in_the_window(qtbot, window: MainWindow, library: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.session.failed, timeout=20000):
        window.open_library(library, tmp_path / "no-such-model")
    assert "no model at" in window.messages.text
    window.query_file(_media(library, "speech"))  # nothing to search with: said, not crashed
    assert "open one first" in window.messages.text


def test_scripted_mode_saves_a_screenshot_and_exits_0(qtbot, library: Path, tiny_model: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    shot, stalls = tmp_path / "shot.png", tmp_path / "stalls.json"
    argv = ["--library", str(library), "--model", str(tiny_model), "--device", "cpu"]
    argv += ["--query", str(_media(library, "speech")), "--screenshot", str(shot), "--stall-report", str(stalls)]
    assert main(argv) == 0
    assert shot.stat().st_size > 10000
    import json

    report = json.loads(stalls.read_text())
    assert {"query"} <= set(report) and report["query"]["ticks"] > 0
    assert main([*argv[:4], "--query", str(tmp_path / "missing.wav"), "--screenshot", str(shot)]) == 1


def test_results_are_keyboard_driven(qtbot, opened: MainWindow, library: Path) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(opened.session.ranked, timeout=20000):
        opened.query_file(_media(library, "speech"))
    view = opened.results.list
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert opened.results.current_hit().rank == 2
    qtbot.keyClick(view, Qt.Key.Key_Return)  # Enter plays the selected result
    player = opened.preview.player
    qtbot.waitUntil(
        lambda: (
            player.playbackState() == QMediaPlayer.PlaybackState.PlayingState
            or player.mediaStatus() in (QMediaPlayer.MediaStatus.LoadedMedia, QMediaPlayer.MediaStatus.EndOfMedia)
        ),
        timeout=10000,
    )
    assert Path(player.source().toLocalFile()) == opened.results.current_hit().item.path
    menus = {a.text(): a.shortcut().toString() for m in opened.menuBar().actions() for a in m.menu().actions()}
    assert menus["&Confirm match"] == "Ctrl+Return" and menus["&Undo memory update"] == "Ctrl+Z"
    assert menus["&Open query file…"] == "Ctrl+O" and menus["&Use as query"] == "Ctrl+U"


def test_files_added_while_open_are_indexed_and_found(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, library: Path, tiny_model
) -> None:
    window.session.watch_interval_ms = 100
    with qtbot.waitSignal(window.session.opened, timeout=60000):
        assert window.open_library(library, tiny_model)
    rows = window.library.rows
    new = library / "video" / "cut_onion" / "brand_new.mp4"
    shutil.copy(_media(library, "video"), new)  # a file outside the manifest is not the library's ...
    manifest = library / "manifest.csv"
    columns = manifest.read_text().splitlines()[0].count(",") + 1
    row = ["brand_new", "video", "video/cut_onion/brand_new.mp4", "cut_onion"] + [""] * (columns - 4)
    manifest.write_text(manifest.read_text() + ",".join(row) + "\n")  # ... until the manifest lists it
    with qtbot.waitSignal(window.session.libraryChanged, timeout=30000) as changed:
        pass
    assert changed.args[0].added == 1
    assert window.library.rows == rows + 1
    assert "Library changed on disk" in window.statusBar().currentMessage()
    with qtbot.waitSignal(window.session.ranked, timeout=20000):
        window.query_file(_media(library, "speech"))
    assert "brand_new" in {h.item.id for h in window.results.hits}
