"""PreviewPlayer: plays a video clip or a speech clip with play/pause and seeking; a moment of a
long video plays as a range, with the query's score along the whole video drawn under it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QPixmap
from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
from PySide6.QtMultimediaWidgets import QVideoWidget
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QStackedWidget, QVBoxLayout, QWidget

from app.labels import clock, rgb_pixmap
from app.widgets.score_strip import ScoreStrip
from app.widgets.waveform_view import WaveformView
from fmn_core.index.moments import Moment, span_text

if TYPE_CHECKING:
    from fmn_core.index.results import WindowScores

SEEK_MS = 1000  # one press of the seek keys
_LOADED = (QMediaPlayer.MediaStatus.LoadedMedia, QMediaPlayer.MediaStatus.BufferedMedia)


class PreviewPlayer(QWidget):
    """A QMediaPlayer with transport controls, showing a video clip or a speech clip's transcript and waveform.

    A stopped video shows its thumbnail as a poster: a video surface shows nothing until
    playback starts. A moment (``load(..., span=...)``) starts at its beginning and pauses at its
    end; Play plays it again; seeking elsewhere (the slider, the strip) plays on freely.
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
        self.span: tuple[float, float] | None = None  # the moment being played, seconds
        self._pending_ms: int | None = None  # a start to seek to once the media has loaded
        self.strip = ScoreStrip(self)
        self.strip.hide()
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
        layout.addWidget(self.strip)
        self.play_button.clicked.connect(self.toggle)
        self.slider.sliderMoved.connect(self._seek_freely)
        self.strip.seekRequested.connect(lambda seconds: self._seek_freely(int(seconds * 1000)))
        self.player.mediaStatusChanged.connect(self._on_media_status)
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
        span: tuple[float, float] | None = None,
    ) -> None:
        """Load a clip without starting it: a video with its poster (RGB), speech with its caption
        and peaks; ``span`` (seconds): a moment of a long video, played as a range."""
        same = Path(self.player.source().toLocalFile()) == Path(path) and not self.player.source().isEmpty()
        self.player.stop()
        if not same:
            self.player.setSource(QUrl.fromLocalFile(str(path)))
            self.strip.clear()
            self.strip.hide()
        self.modality = modality
        self.span = span
        self.strip.set_shown(span)
        self._pending_ms = int(span[0] * 1000) if span is not None else None
        if span is not None and self.player.mediaStatus() in _LOADED:
            self._start_pending()
        at = f"  ({span_text(span)})" if span is not None else ""
        self.title.setText(f"{Path(path).name}{at}")
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
        if self.span is not None and not self.span[0] * 1000 - 50 <= self.player.position() < self.span[1] * 1000 - 100:
            self.player.setPosition(int(self.span[0] * 1000))  # a moment plays from its start
        self.player.play()

    def toggle(self) -> None:
        """Play, or pause when playing."""
        if self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
            self.player.pause()
        elif not self.player.source().isEmpty():
            self.play()

    def seek(self, delta_ms: int) -> None:
        """Move the position by ``delta_ms`` (negative: back)."""
        self._seek_freely(max(0, min(self.player.duration(), self.player.position() + delta_ms)))

    def show_scores(self, duration: float, scores: WindowScores) -> None:
        """Draw a spoken query's scores along the loaded long video under the player."""
        self.strip.set_scores(duration, scores.spans, scores.scores, scores.moments(), scores.confidence)
        self.strip.set_shown(self.span)
        self.strip.show()

    def next_moment(self, forward: bool = True) -> Moment | None:
        """Jump to the next (or previous) marked moment on the strip and play it; None when there is none."""
        if not self.strip.isVisible():
            return None
        now = self.player.position() / 1000
        moment = self.strip.mark_after(now) if forward else self.strip.mark_before(now)
        if moment is None:
            return None
        self.span = moment.span
        self.strip.set_shown(moment.span)
        self.title.setText(f"{Path(self.player.source().toLocalFile()).name}  ({span_text(moment.span)})")
        self.player.setPosition(int(moment.start * 1000))
        self.player.play()
        return moment

    def _seek_freely(self, ms: int) -> None:
        """Seek where the user asked; a moment's range no longer holds playback."""
        self.span = None
        self._pending_ms = None
        self.player.setPosition(ms)

    def _on_media_status(self, status: QMediaPlayer.MediaStatus) -> None:
        if status in _LOADED:
            self._start_pending()

    def _start_pending(self) -> None:
        if self._pending_ms is not None:
            self.player.setPosition(self._pending_ms)
            self._pending_ms = None

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
        self.strip.set_position(ms / 1000)
        playing = self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState
        if self.span is not None and playing and ms >= self.span[1] * 1000:
            self.player.pause()  # the moment is over; Play plays it again
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
