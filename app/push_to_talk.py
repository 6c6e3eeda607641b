"""PushToTalk: record while a key is held, anywhere in the window except where text is typed.

It filters the events of the window's QWindow, where every key event arrives before any widget
sees it. Not an application-wide filter: that would run Python for every event of the program
(timers, paints), and each would wait for the GIL while a worker computes.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QLineEdit, QPlainTextEdit, QTextEdit, QWidget

_TEXT_INPUTS = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox)


class PushToTalk(QObject):
    """A window event filter: ``key`` pressed (no modifier) calls ``press``, released calls ``release``.

    Auto-repeat events of a held key are swallowed, and the key still types into text fields.

    Args:
        window: the window whose QWindow it filters (see :meth:`attach`).
        key: the key to hold.
        press: called when the key goes down.
        release: called when it comes up.
    """

    def __init__(self, window: QWidget, key: Qt.Key, press: Callable[[], None], release: Callable[[], None]) -> None:
        super().__init__(window)
        self.window, self.key, self.press, self.release = window, key, press, release
        self.held = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind not in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            return False
        assert isinstance(event, QKeyEvent)
        if event.key() != self.key or event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            return False
        if kind == QEvent.Type.KeyPress and not self.held and not self._typing():
            if not event.isAutoRepeat():
                self.held = True
                self.press()
            return True
        if self.held:
            if kind == QEvent.Type.KeyRelease and not event.isAutoRepeat():
                self.held = False
                self.release()
            return True  # the held key's repeats must not reach list views (type-ahead search)
        return False

    def attach(self) -> None:
        """Start filtering: call once the window has its QWindow (after it was first shown)."""
        handle = self.window.windowHandle()
        if handle is not None:
            handle.removeEventFilter(self)  # at most once
            handle.installEventFilter(self)

    @staticmethod
    def _typing() -> bool:
        focus = QApplication.focusWidget()
        if isinstance(focus, QComboBox):
            return focus.isEditable()
        return isinstance(focus, _TEXT_INPUTS)
