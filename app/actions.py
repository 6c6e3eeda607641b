"""The main window's actions, menus and context menus, made from tables.

A shortcut, a menu text and what an action does are written once, here (docs/app.md lists the
keys). Slots and widgets are named by attribute paths from the window (``"preview.seek"``), so the
tables are plain data and this module does not import the window it equips.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, NamedTuple

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow

from app.widgets.preview_player import SEEK_MS

_Context = Qt.ShortcutContext


class Spec(NamedTuple):
    """One action, kept in the window's attribute ``attr``."""

    attr: str
    text: str
    shortcut: QKeySequence.StandardKey | str | None
    slot: str = ""  # path from the window to what it calls (with ``args``); "" for none
    args: tuple[object, ...] = ()
    tip: str = ""  # "": the text without its mnemonic and ellipsis
    enabled: bool = True
    # Window-wide unless named here: where it is added instead, with ``context`` as its shortcut's reach.
    widgets: tuple[str, ...] | None = None
    context: Qt.ShortcutContext = _Context.WindowShortcut
    toggles: str = ""  # a dock whose own show/hide action this is, instead of a new one


_CONFIRM_TIP = "This result is a correct match: teach the memory banks the pair"

ACTIONS = (
    Spec("open_query_action", "&Open query file…", QKeySequence.StandardKey.Open, "choose_query"),
    Spec("open_library_action", "Open &library…", "Ctrl+Shift+O", "library_flow.choose"),
    Spec("quit_action", "&Quit", QKeySequence.StandardKey.Quit, "close"),
    Spec("record_action", "&Record / stop", "Ctrl+R", "query.record_button.toggle"),
    Spec("push_to_talk_hint", "Push to talk: hold T", None, enabled=False, widgets=()),
    Spec("replay_action", "Re&play query", "Ctrl+P", "query.toggle_replay"),
    Spec("use_as_query_action", "&Use as query", "Ctrl+U", "use_selected_as_query"),
    # Space and Enter work where playing makes sense (lists, player) and leave focused buttons alone.
    Spec(
        "play_action",
        "&Play / pause",
        "Space",
        "preview.toggle",
        widgets=("library", "results", "preview"),
        context=_Context.WidgetWithChildrenShortcut,
    ),
    Spec(
        "play_selected_action",
        "Play selected result",
        "Return",
        "preview_flow.play_current_result",
        widgets=(),  # the results list's, from CONTEXT_MENUS
        context=_Context.WidgetShortcut,
    ),
    Spec("back_action", "Seek &back 1 s", "Ctrl+Left", "preview.seek", (-SEEK_MS,)),
    Spec("forward_action", "Seek &forward 1 s", "Ctrl+Right", "preview.seek", (SEEK_MS,)),
    Spec("next_moment_action", "&Next moment", "]", "preview.next_moment", (True,)),
    Spec("previous_moment_action", "Pre&vious moment", "[", "preview.next_moment", (False,)),
    Spec("confirm_action", "&Confirm match", "Ctrl+Return", "confirm_current", tip=_CONFIRM_TIP),
    Spec("undo_action", "&Undo memory update", QKeySequence.StandardKey.Undo, "session.undo", enabled=False),
    Spec("filter_action", "&Filter library", QKeySequence.StandardKey.Find, "library.focus_filter"),
    Spec("focus_library_action", "Go to &library", "Ctrl+1", "library.table.setFocus"),
    Spec("focus_results_action", "Go to r&esults", "Ctrl+2", "results.list.setFocus"),
    Spec("focus_player_action", "Go to &preview", "Ctrl+3", "preview.slider.setFocus"),
    Spec("inspector_action", "&Memory inspector", "Ctrl+I", toggles="inspector_dock"),
    Spec("dismiss_action", "Dismiss message", "Esc", "messages.dismiss"),
)

_EXPORT = "result_actions.export_action"
_COPY_PATH = "result_actions.copy_path_action"
_SHOW = "result_actions.show_in_folder_action"

# Menus by title, then their actions by path from the window; None is a separator.
MENUS: tuple[tuple[str, tuple[str | None, ...]], ...] = (
    ("&File", ("open_query_action", "open_library_action", None, _EXPORT, None, "quit_action")),
    ("&Query", ("record_action", "push_to_talk_hint", "replay_action", None, "use_as_query_action")),
    (
        "&Result",
        (
            "play_selected_action",
            "play_action",
            "back_action",
            "forward_action",
            "previous_moment_action",
            "next_moment_action",
            None,
            "confirm_action",
            "undo_action",
            None,
            _COPY_PATH,
            _SHOW,
        ),
    ),
    (
        "&View",
        (
            "filter_action",
            "focus_library_action",
            "focus_results_action",
            "focus_player_action",
            None,
            "inspector_action",
        ),
    ),
)

# Context menus: the same actions, so their shortcuts show there too.
CONTEXT_MENUS = (
    ("results.list", ("play_selected_action", "confirm_action", "use_as_query_action", _COPY_PATH, _SHOW, _EXPORT)),
    ("library.table", ("use_as_query_action",)),
)


def add_actions(window: QMainWindow) -> None:
    """Make every action of :data:`ACTIONS` and keep it as the window's attribute (``window.undo_action``…).

    The slots' paths must lead somewhere already: the widgets, ``library_flow`` and ``preview_flow``.
    """
    for spec in ACTIONS:
        setattr(window, spec.attr, _make(window, spec))


def add_menus(window: QMainWindow) -> None:
    """The menu bar's menus and the context menus, from :data:`MENUS` and :data:`CONTEXT_MENUS`.

    Call after :func:`add_actions`, once ``window.result_actions`` exists too.
    """
    for title, paths in MENUS:
        menu = window.menuBar().addMenu(title)
        for path in paths:
            menu.addSeparator() if path is None else menu.addAction(_get(window, path))
    for widget, paths in CONTEXT_MENUS:
        for path in paths:
            _get(window, widget).addAction(_get(window, path))


def _make(window: QMainWindow, spec: Spec) -> QAction:
    if spec.toggles:
        a = _get(window, spec.toggles).toggleViewAction()
        a.setText(spec.text)
    else:
        a = QAction(spec.text, window)
        a.setToolTip(spec.tip or spec.text.replace("&", "").replace("…", ""))
    if spec.shortcut is not None:
        a.setShortcut(QKeySequence(spec.shortcut))
    if spec.context != _Context.WindowShortcut:
        a.setShortcutContext(spec.context)
    if not spec.enabled:
        a.setEnabled(False)
    if spec.slot:
        a.triggered.connect(_slot(_get(window, spec.slot), spec.args))
    # a window-wide action is the window's too, so its shortcut works while the menu bar is hidden
    for owner in [window] if spec.widgets is None else [_get(window, w) for w in spec.widgets]:
        owner.addAction(a)
    return a


def _slot(fn: Callable[..., Any], args: tuple[object, ...]) -> Callable[..., Any]:
    return (lambda: fn(*args)) if args else fn


def _get(window: QMainWindow, path: str) -> Any:
    return attrgetter(path)(window)
