"""MessageBar: a strip above the work area for errors and notices (the window's one place for them)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

_STYLES = {  # (background, text, border)
    "error": ("#fdecea", "#611a15", "#f5c6c1"),
    "info": ("#e8f1fb", "#0b3a63", "#c3dbf3"),
}
INFO_MS = 8000  # a notice goes away by itself; an error stays until dismissed or replaced


class MessageBar(QFrame):
    """Shows one message at a time, with a close button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = ""
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(self, text="✕", toolTip="Dismiss (Esc)", autoRaise=True)
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self._timer = QTimer(self, singleShot=True, interval=INFO_MS)
        self._timer.timeout.connect(self.dismiss)
        self.hide()

    @property
    def text(self) -> str:
        """The message shown ('' when none)."""
        return self.label.text()

    def show_error(self, text: str) -> None:
        self._show("error", text)
        self._timer.stop()

    def show_info(self, text: str) -> None:
        self._show("info", text)
        self._timer.start()

    def _show(self, kind: str, text: str) -> None:
        self.kind = kind
        self.label.setText(text)
        background, color, border = _STYLES[kind]
        self.setStyleSheet(
            f"MessageBar {{ background: {background}; border: 1px solid {border}; border-radius: 3px; }}"
            f"QLabel {{ color: {color}; }}"
        )
        self.show()

    def dismiss(self) -> None:
        self.kind = ""
        self.label.clear()
        self.hide()
