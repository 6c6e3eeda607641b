"""PreviewPlayer: plays a video clip or a speech clip with play/pause and seeking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QPixmap
from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
from PySide6.QtMultimediaWidgets import QVideoWidget
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QStackedWidget, QVBoxLayout, QWidget

from app.labels import clock, rgb_pixmap
from app.widgets.waveform_view import WaveformView

SEEK_MS = 1000  # one press of the seek keys


class PreviewPlayer(QWidget):
    """A QMediaPlayer with transport controls, showing a video clip or a speech clip's transcript and waveform.

    A stopped video shows its thumbnail as a poster: a video surface shows nothing until
    playback starts.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.modality = ""
        self._poster: QPixmap | None = None
        self.player = QMediaPlayer(self)
        self.audio = QAudioOutput(self)
        self.player.setAudioOutput(self.audio)
        self.video = QVideoWidget(self)
        self.player.setVideoOutput(self.video)
        self.caption = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.caption.setStyleSheet("font-size: 20px; padding: 16px;")
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.wave = WaveformView(self)
        speech_page = QWidget(self)
        speech_layout = QVBoxLayout(speech_page)
        speech_layout.addStretch(1)
        speech_layout.addWidget(self.caption)
        speech_layout.addWidget(self.wave)
        speech_layout.addStretch(1)
        self.speech_page = speech_page
        self.poster = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.poster.setMinimumSize(160, 120)
        self.stack = QStackedWidget(self)
        for page in (self.video, self.speech_page, self.poster):
            self.stack.addWidget(page)
        self.play_button = QPushButton("Play", toolTip="Play or pause (Space)")
        self.play_button.setEnabled(False)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setAccessibleName("Position")
        self.slider.setToolTip("Position (Ctrl+Left / Ctrl+Right to seek)")
        self.time = QLabel(clock(0))
        self.title = QLabel()
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.time)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.stack, 1)
        layout.addLayout(controls)
        self.play_button.clicked.connect(self.toggle)
        self.slider.sliderMoved.connect(self.player.setPosition)
        self.slider.valueChanged.connect(self._on_slider_value)
        self.player.durationChanged.connect(lambda d: self.slider.setRange(0, d))
        self.player.positionChanged.connect(self._on_position)
        self.player.playbackStateChanged.connect(self._on_state)
        self.player.errorOccurred.connect(lambda _e, text: self.title.setText(f"Cannot play: {text}"))

    def load(
        self,
        modality: str,
        path: str | Path,
        caption: str = "",
        poster: QPixmap | np.ndarray | None = None,
        peaks: np.ndarray | None = None,
    ) -> None:
        """Load a clip without starting it: a video with its poster (RGB), speech with its caption and peaks."""
        self.player.stop()
        self.player.setSource(QUrl.fromLocalFile(str(path)))
        self.modality = modality
        self.title.setText(Path(path).name)
        self.caption.setText(caption or Path(path).name)
        self.wave.set_peaks(peaks)
        if isinstance(poster, np.ndarray):
            poster = rgb_pixmap(poster)
        self._poster = poster if modality == "video" else None
        self.play_button.setEnabled(True)
        self._show_still()

    def set_poster(self, path: str | Path, frame: np.ndarray | None) -> None:
        """A better poster (RGB) for ``path``; ignored when another clip is shown by now."""
        if frame is None or self.modality != "video" or Path(self.player.source().toLocalFile()) != Path(path):
            return
        self._poster = rgb_pixmap(frame)
        if self.stack.currentWidget() is self.poster:
            self._show_still()

    def play(self) -> None:
        self.player.play()

    def toggle(self) -> None:
        """Play, or pause when playing."""
        if self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
            self.player.pause()
        elif not self.player.source().isEmpty():
            self.player.play()

    def seek(self, delta_ms: int) -> None:
        """Move the position by ``delta_ms`` (negative: back)."""
        self.player.setPosition(max(0, min(self.player.duration(), self.player.position() + delta_ms)))

    def _show_still(self) -> None:
        if self.modality != "video":
            self.stack.setCurrentWidget(self.speech_page)
            return
        if self._poster is None:
            self.stack.setCurrentWidget(self.video)
            return
        size = self.stack.size()
        mode, quality = Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        self.poster.setPixmap(self._poster.scaled(size, mode, quality))
        self.stack.setCurrentWidget(self.poster)

    def _on_slider_value(self, value: int) -> None:
        # keyboard steps on the slider (arrows, Page Up/Down) seek too; mouse drags come through sliderMoved
        if not self.slider.isSliderDown() and abs(value - self.player.position()) > 250:
            self.player.setPosition(value)

    def _on_position(self, ms: int) -> None:
        if not self.slider.isSliderDown():
            self.slider.blockSignals(True)
            self.slider.setValue(ms)
            self.slider.blockSignals(False)
        self.time.setText(f"{clock(ms / 1000)} / {clock(self.player.duration() / 1000)}")

    def _on_state(self, state: QMediaPlayer.PlaybackState) -> None:
        playing = state == QMediaPlayer.PlaybackState.PlayingState
        self.play_button.setText("Pause" if playing else "Play")
        if playing and self.modality == "video":
            self.stack.setCurrentWidget(self.video)
        elif state == QMediaPlayer.PlaybackState.StoppedState:
            self._show_still()

    def resizeEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        super().resizeEvent(event)
        if self.stack.currentWidget() is self.poster:
            self._show_still()
