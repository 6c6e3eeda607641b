"""The main window opens a library, previews the selected item, and survives a bad library."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtMultimedia import QMediaPlayer
from PySide6.QtWidgets import QMessageBox

from app.main_window import MainWindow


@pytest.fixture()
def window(qtbot, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings)
    qtbot.addWidget(w)
    return w


def test_opens_a_library_and_previews_the_selection(qtbot, window: MainWindow, tiny_corpus: Path) -> None:  # type: ignore[no-untyped-def]
    assert window.load_library(tiny_corpus)
    assert window.library.proxy.rowCount() == 9 + 24  # 3 classes x (3 videos + 4 utterances x 2 languages)
    assert "9 videos, 24 speech clips, 3 labels" in window.statusBar().currentMessage()
    assert window.settings.value("library") == str(tiny_corpus)
    player = window.preview.player
    qtbot.waitUntil(lambda: player.mediaStatus() == QMediaPlayer.MediaStatus.LoadedMedia, timeout=10000)
    assert player.source().toLocalFile().endswith(".mp4")

    window.library.filter.setText("切洋葱")  # Chinese class names are searchable
    rows = window.library.proxy.rowCount()
    assert rows == 3 + 8  # every cut_onion item carries the class name 切洋葱
    window.library.filter.setText("speech")
    window.library.table.selectRow(0)
    qtbot.waitUntil(lambda: player.source().toLocalFile().endswith(".wav"), timeout=5000)
    assert window.preview.caption.text()  # the transcript is shown for speech


def test_a_bad_library_shows_an_error_and_keeps_the_current_one(
    qtbot,
    window: MainWindow,
    tiny_corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args: shown.append(args[2]))
    assert window.load_library(tiny_corpus)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not window.load_library(empty)
    assert shown and "no video or audio" in shown[0]
    assert window.library.proxy.rowCount() == 33
