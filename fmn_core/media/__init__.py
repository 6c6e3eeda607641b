"""Media I/O: decoding and writing video and audio files."""

from fmn_core.media.errors import MediaError

__all__ = ["MediaError"]
