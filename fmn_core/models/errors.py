"""Errors of the models (below every model module: the I3D loader and the checkpoints both raise them)."""

from fmn_core.errors import FmnError


class CheckpointError(FmnError):
    """A checkpoint that cannot be loaded (wrong format or version, unsafe, or not this model)."""
