"""FMN Studio's desktop application (PySide6). The only package that imports Qt."""

from app.qt_compat import protect_none

protect_none()  # before any widget exists: see app/qt_compat.py
