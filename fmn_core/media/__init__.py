"""Media I/O: decoding and writing video and audio files."""
