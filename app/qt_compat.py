"""Work around a reference-count bug of the Qt bindings in use (PySide6 6.12 with Python 3.11).

Every call of a PySide6 6.12 method that returns nothing (``label.setText``, ``painter.fillRect``,
``QApplication.processEvents``...) takes one reference from ``None`` without ever having added
it: the bindings treat ``None`` as immortal, which it is only from Python 3.12 on. After as many
such calls as ``None`` has references (about 150,000 in this application) Python aborts with
"Fatal Python error: none_dealloc". A window repainting its lists and meters gets there within
minutes.

The guard does what Python 3.12 does: it gives ``None`` a reference count no program can use up.
It acts only where the leak is measured, so it goes quiet by itself once the bindings are fixed.
"""

from __future__ import annotations

import ctypes
import sys

_PLENTY = 1 << 40  # references: a leak of one per call would need years of calls to use them up


def _leaks_none() -> bool:
    """Whether a void PySide6 call takes a reference from None (measured on a QtCore object)."""
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(64):
        probe.setObjectName("probe")
    return sys.getrefcount(None) < before - 32


def protect_none() -> bool:
    """Make ``None`` practically immortal when the bindings leak its references; True when applied."""
    if sys.version_info >= (3, 12) or hasattr(sys, "gettotalrefcount"):  # immortal already / debug build layout
        return False
    if not _leaks_none():
        return False
    refcount = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt: the first field of every object
    if refcount.value != sys.getrefcount(None) - 1:  # not the layout we know: better not touch it
        return False
    refcount.value += _PLENTY
    return True
