"""QueryPanel: record a spoken query (toggle or push-to-talk), see and replay it, see what was heard, or open a file."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

from app.labels import clock, rgb_pixmap
from app.recorder import MAX_SECONDS, Recorder
from app.widgets.level_meter import LevelMeter
from app.widgets.waveform_view import WaveformView
from fmn_core.media.audio_io import SAMPLE_RATE, write_wav
from fmn_core.media.errors import MediaError

PUSH_TO_TALK_KEY = Qt.Key.Key_T  # held to record; Space stays play/pause (see docs/app.md)
THUMB_HEIGHT = 44  # a video query's first frame, as tall as the waveform it replaces
METER_MS = 33  # level meter and elapsed time refresh (about 30 per second)
REASON_CHARS = 90  # a longer reason for a missing transcript is cut in the panel (the tooltip has it all)
_GREY = "color: palette(placeholder-text);"


class QueryPanel(QWidget):
    """The query bar above the results.

    Signals:
        recorded(object): a finished recording, float32 mono 16 kHz.
        openRequested(): the user wants to pick a query file.
        message(str): something to tell the user (e.g. why recording failed).
    """

    recorded = Signal(object)
    openRequested = Signal()
    message = Signal(str)

    def __init__(self, recorder: Recorder, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.recorder = recorder
        self._speech_off: str | None = None  # why speech queries cannot be made (the model), if so
        self._make_controls()
        self._lay_out()
        self.player = QMediaPlayer(self)
        self.audio = QAudioOutput(self)
        self.player.setAudioOutput(self.audio)
        self.player.playbackStateChanged.connect(self._on_replay_state)
        self._replay_dir = tempfile.TemporaryDirectory(prefix="fmn-app-")
        self._ticker = QTimer(self)
        self._ticker.setInterval(METER_MS)
        self._ticker.timeout.connect(self._tick)
        self.record_button.toggled.connect(self._on_record_toggled)
        self.refresh_button.clicked.connect(self.refresh_devices)
        self.replay_button.clicked.connect(self.toggle_replay)
        self.open_button.clicked.connect(self.openRequested)
        self.recorder.failed.connect(self._on_failed)
        self._fill_devices()

    def _make_controls(self) -> None:
        self.record_button = QToolButton(self)
        self.record_button.setText("● Record")
        self.record_button.setCheckable(True)
        self.record_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.devices = QComboBox(self)
        self.devices.setAccessibleName("Input device")
        self.devices.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.refresh_button = QToolButton(self, text="⟳", toolTip="Look for microphones again")
        self.meter = LevelMeter(self)
        self.elapsed = QLabel(clock(0), self)
        self.wave = WaveformView(self)
        self.thumbnail = QLabel(self)
        self.thumbnail.hide()
        self.replay_button = QPushButton("▶ Replay", self, toolTip="Play the query back")
        self.replay_button.setEnabled(False)
        self.open_button = QPushButton("Open…", self, toolTip="Use an audio or video file as the query (Ctrl+O)")
        self.query_label = QLabel("No query yet: record one, drop a file on the window, or open one.", self)
        self.query_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.heard = QLabel(self)  # what Whisper heard in the latest speech query
        self.heard.setAccessibleName("What the model heard")
        self.heard.setWordWrap(True)
        self.heard.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.heard.hide()
        self.availability = QLabel(self)
        self.availability.setWordWrap(True)
        self.availability.setStyleSheet(_GREY)

    def _lay_out(self) -> None:
        row = QHBoxLayout()
        for w in (self.record_button, self.devices, self.refresh_button):
            row.addWidget(w)
        row.addWidget(self.meter, 1)
        row.addWidget(self.elapsed)
        row.addWidget(self.wave, 3)
        row.addWidget(self.thumbnail)
        row.addWidget(self.replay_button)
        row.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(row)
        caption_row = QHBoxLayout()
        caption_row.addWidget(self.query_label)
        caption_row.addSpacing(16)
        caption_row.addWidget(self.heard, 1)
        layout.addLayout(caption_row)
        layout.addWidget(self.availability)

    # -- devices ------------------------------------------------------------------------------

    def refresh_devices(self) -> None:
        """List microphones again (e.g. after plugging one in)."""
        if not self.recorder.recording:
            self.recorder.refresh()
            self._fill_devices()

    def _fill_devices(self) -> None:
        self.devices.clear()
        for dev in self.recorder.devices:
            self.devices.addItem(str(dev), dev.index)
            if dev.is_default:
                self.devices.setCurrentIndex(self.devices.count() - 1)
        if self.recorder.unavailable_reason:
            self.devices.addItem("no microphone")
        self._show_availability()

    def set_speech_off(self, reason: str | None) -> None:
        """The model cannot take speech queries here (``reason`` says why and the fix); None: it can."""
        self._speech_off = reason
        self._show_availability()

    def _show_availability(self) -> None:
        mic = self.recorder.unavailable_reason
        speech = f"Voice search is off: {self._speech_off}" if self._speech_off else ""
        reason = speech or mic  # the model's problem first: a microphone would not help
        self.record_button.setEnabled(not reason)
        self.devices.setEnabled(not mic)
        self.devices.setToolTip(mic)
        if not reason:
            self.record_button.setToolTip(
                "Record a spoken query (Ctrl+R to start and stop), or hold T to talk and release to search"
            )
            self.availability.hide()
            return
        self.record_button.setToolTip(reason)
        self.availability.setText("\n".join(r for r in (speech, mic) if r))
        self.availability.show()

    @property
    def can_record(self) -> bool:
        return self.record_button.isEnabled()

    # -- recording ----------------------------------------------------------------------------

    def start_recording(self) -> None:
        if self.can_record and not self.recorder.recording:
            self.record_button.setChecked(True)

    def stop_recording(self) -> None:
        if self.recorder.recording:
            self.record_button.setChecked(False)

    def _on_record_toggled(self, on: bool) -> None:
        if on:
            self.player.stop()
            if not self.recorder.start(self.devices.currentData()):
                self.record_button.setChecked(False)
                return
            self.record_button.setText("■ Stop")
            self._show_kind("speech")
            self.wave.clear()
            self._ticker.start()
        elif self.recorder.recording:
            self._ticker.stop()
            self.record_button.setText("● Record")
            self.meter.reset()
            wave = self.recorder.stop()
            self._show_recording(wave)
            self.recorded.emit(wave)

    def _tick(self) -> None:
        rms, peak = self.recorder.level
        self.meter.set_level(rms, peak)
        seconds = self.recorder.elapsed
        self.elapsed.setText(clock(seconds))
        self.wave.set_wave(self.recorder.current_wave(), self.recorder.rate)
        if seconds >= MAX_SECONDS:  # the model uses no more than this; stop and search
            self.stop_recording()

    def _on_failed(self, reason: str) -> None:
        self.record_button.setChecked(False)
        self.message.emit(reason)

    # -- the query shown ----------------------------------------------------------------------

    def _show_recording(self, wave: np.ndarray) -> None:
        """A finished recording: its wave, and a temporary WAV file to replay it from."""
        self._show_kind("speech")
        self.wave.set_wave(wave)
        self.elapsed.setText(clock(len(wave) / SAMPLE_RATE))
        self.query_label.setText(f"Query: recording ({len(wave) / SAMPLE_RATE:.1f} s)")
        source: Path | None = Path(self._replay_dir.name) / "recording.wav"
        try:
            write_wav(source, wave)
        except MediaError as e:
            self.message.emit(str(e))
            source = None
        self._set_replay_source(source)

    def show_speech_query(self, caption: str, peaks: np.ndarray | None, source: Path | None) -> None:
        """A speech file or item as the query: its waveform peaks; replayable when ``source`` is a file."""
        self._show_kind("speech")
        self.wave.set_peaks(peaks)
        self.elapsed.setText(clock(0))
        self.query_label.setText(f"Query: {caption} (speech)")
        self._set_replay_source(source)

    def show_video_query(self, caption: str, thumbnail: np.ndarray | None) -> None:
        """A video as the query: its first frame (the preview pane plays clips)."""
        self._show_kind("video")
        if thumbnail is not None:
            self.thumbnail.setPixmap(
                rgb_pixmap(thumbnail).scaledToHeight(THUMB_HEIGHT, Qt.TransformationMode.SmoothTransformation)
            )
        else:
            self.thumbnail.setText("(video)")
        self.elapsed.setText(clock(0))
        self.query_label.setText(f"Query: {caption} (video)")
        self._set_replay_source(None)

    # -- what the model heard ------------------------------------------------------------------

    def show_hearing(self) -> None:
        """A transcript of the speech query is on its way."""
        self._set_heard("Heard: …", "Transcribing the query with Whisper", grey=True)

    def show_heard(self, text: str, lang: str, model: str = "", cut: bool = False) -> None:
        """What the speech recogniser heard in the query, e.g. ``Heard: “cut the onion” (en)``."""
        tip = f"What {model or 'Whisper'} heard in the query: if it misheard, the ranking may be off too."
        if not text.strip():
            self._set_heard("Heard: nothing recognisable", tip, grey=True)
            return
        note = " — only its first 30 s" if cut else ""
        self._set_heard(f"Heard: “{text.strip()}” ({lang}){note}", tip, grey=False)

    def show_not_heard(self, reason: str) -> None:
        """No transcript (the ranking stands): a short reason, the whole of it in the tooltip."""
        short = reason.split("; ")[0]
        if len(short) > REASON_CHARS:
            short = short[: REASON_CHARS - 1].rstrip() + "…"
        self._set_heard(f"Heard: — ({short})", f"No transcript: {reason}", grey=True)

    def clear_heard(self) -> None:
        """No transcript line (a video query, or a new query on its way)."""
        self.heard.clear()
        self.heard.setToolTip("")
        self.heard.hide()

    def _set_heard(self, text: str, tip: str, grey: bool) -> None:
        self.heard.setText(text)
        self.heard.setToolTip(tip)
        self.heard.setStyleSheet(_GREY if grey else "")
        self.heard.show()

    def _show_kind(self, modality: str) -> None:
        self.wave.setVisible(modality == "speech")
        self.thumbnail.setVisible(modality == "video")

    def _set_replay_source(self, source: Path | None) -> None:
        self.player.stop()
        self.player.setSource(QUrl.fromLocalFile(str(source)) if source else QUrl())
        self.replay_button.setEnabled(source is not None)

    def toggle_replay(self) -> None:
        if self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
            self.player.stop()
        elif not self.player.source().isEmpty():
            self.player.play()

    def _on_replay_state(self, state: QMediaPlayer.PlaybackState) -> None:
        playing = state == QMediaPlayer.PlaybackState.PlayingState
        self.replay_button.setText("■ Stop" if playing else "▶ Replay")

    def shutdown(self) -> None:
        """Stop capture and playback and remove the temporary recording."""
        self.stop_recording()
        self._set_replay_source(None)
        self._replay_dir.cleanup()
