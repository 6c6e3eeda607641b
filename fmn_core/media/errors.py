"""Errors of the media front ends."""

from fmn_core.errors import FmnError


class MediaError(FmnError, ValueError):
    """A media file that cannot be read or written; the message names the file."""
