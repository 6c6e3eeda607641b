"""PreviewPlayer: plays a video clip or a speech clip with play/pause and seeking."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
from PySide6.QtMultimediaWidgets import QVideoWidget
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QStackedWidget, QVBoxLayout, QWidget


def _clock(ms: int) -> str:
    return f"{ms // 60000}:{ms // 1000 % 60:02d}.{ms // 100 % 10}"


class PreviewPlayer(QWidget):
    """A QMediaPlayer with a video surface (for clips) or a caption (for speech), and transport controls."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.player = QMediaPlayer(self)
        self.audio = QAudioOutput(self)
        self.player.setAudioOutput(self.audio)
        self.video = QVideoWidget(self)
        self.player.setVideoOutput(self.video)
        self.caption = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.caption.setStyleSheet("font-size: 20px; padding: 24px;")
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.video)
        self.stack.addWidget(self.caption)
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
        """Load a clip (without starting it): video on the video surface, speech with its caption."""
        self.player.stop()
        self.player.setSource(QUrl.fromLocalFile(path))
        self.stack.setCurrentWidget(self.video if modality == "video" else self.caption)
        self.caption.setText(caption or Path(path).name)
        self.title.setText(Path(path).name)
        self.play_button.setEnabled(True)

    def toggle(self) -> None:
        """Play, or pause when playing."""
        if self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
            self.player.pause()
        else:
            self.player.play()

    def _on_position(self, ms: int) -> None:
        if not self.slider.isSliderDown():
            self.slider.setValue(ms)
        self.time.setText(f"{_clock(ms)} / {_clock(self.player.duration())}")

    def _on_state(self, state: QMediaPlayer.PlaybackState) -> None:
        self.play_button.setText("Pause" if state == QMediaPlayer.PlaybackState.PlayingState else "Play")
