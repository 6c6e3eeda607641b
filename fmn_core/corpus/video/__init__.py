"""The procedural kitchen-scene renderer, the video half of the built-in corpus (see ``clip``)."""

from fmn_core.corpus.video.clip import describe_clip, render_clip, write_clip
from fmn_core.corpus.video.settings import DEFAULT_SETTINGS, RenderSettings

__all__ = ["DEFAULT_SETTINGS", "RenderSettings", "describe_clip", "render_clip", "write_clip"]
