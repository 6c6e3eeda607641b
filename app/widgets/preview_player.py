"""PreviewPlayer: plays a video clip or a speech clip with play/pause and seeking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
from PySide6.QtMultimediaWidgets import QVideoWidget
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QStackedWidget, QVBoxLayout, QWidget

from fmn_core.media.errors import MediaError
from fmn_core.media.video_io import read_frames


def _pixmap(frame: np.ndarray) -> QPixmap:
    """A QPixmap of an (H, W, 3) BGR frame."""
    rgb = np.ascontiguousarray(frame[:, :, ::-1])
    height, width, _ = rgb.shape
    return QPixmap.fromImage(QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy())


def _clock(ms: int) -> str:
    return f"{ms // 60000}:{ms // 1000 % 60:02d}.{ms // 100 % 10}"


class PreviewPlayer(QWidget):
    """A QMediaPlayer with transport controls, showing a video clip or a speech clip's transcript.

    A stopped video shows its first frame as a poster: a video surface shows nothing until
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
        self.caption.setStyleSheet("font-size: 20px; padding: 24px;")
        self.poster = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.poster.setMinimumSize(160, 120)
        self.stack = QStackedWidget(self)
        for page in (self.video, self.caption, self.poster):
            self.stack.addWidget(page)
        self.play_button = QPushButton("Play", toolTip="Play or pause (Space)")
        self.play_button.setEnabled(False)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.time = QLabel(_clock(0))
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
        self.player.durationChanged.connect(lambda d: self.slider.setRange(0, d))
        self.player.positionChanged.connect(self._on_position)
        self.player.playbackStateChanged.connect(self._on_state)
        self.player.errorOccurred.connect(lambda _e, text: self.title.setText(f"Cannot play: {text}"))

    def load(self, modality: str, path: str, caption: str = "") -> None:
        """Load a clip (without starting it): a video with its first frame, speech with its caption."""
        self.player.stop()
        self.player.setSource(QUrl.fromLocalFile(path))
        self.modality = modality
        self.title.setText(Path(path).name)
        self.caption.setText(caption or Path(path).name)
        self._poster = None
        if modality == "video":
            try:
                self._poster = _pixmap(read_frames(path, max_frames=1)[0])
            except MediaError as e:
                self.caption.setText(str(e))
        self.play_button.setEnabled(True)
        self._show_still()

    def toggle(self) -> None:
        """Play, or pause when playing."""
        if self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
            self.player.pause()
        else:
            self.player.play()

    def _show_still(self) -> None:
        if self._poster is None:
            self.stack.setCurrentWidget(self.caption)
            return
        size = self.stack.size()
        mode, quality = Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        self.poster.setPixmap(self._poster.scaled(size, mode, quality))
        self.stack.setCurrentWidget(self.poster)

    def _on_position(self, ms: int) -> None:
        if not self.slider.isSliderDown():
            self.slider.setValue(ms)
        self.time.setText(f"{_clock(ms)} / {_clock(self.player.duration())}")

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
