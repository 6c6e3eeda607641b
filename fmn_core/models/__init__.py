"""The Feature Memory Network and its parts (paper §3, DESIGN §2).

- ``i3d``: the video encoder (pytorchvideo I3D, full and compact sizes, Kinetics loading);
- ``speech``: the Bi-LSTM speech encoder over MFCC sequences;
- ``fusion``: the S1 head over projected (video, speech) vectors;
- ``memory``: the paired video/speech feature memory banks;
- ``fmn``: the whole network, its config and scores;
- ``checkpoint``: safe (safetensors-only) checkpoints with config, thresholds and banks;
- ``errors``: :class:`CheckpointError`, raised by the checkpoints and the Kinetics I3D loader.
"""

from fmn_core.models.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from fmn_core.models.errors import CheckpointError
from fmn_core.models.fmn import (
    FeatureMemoryNetwork,
    FMNConfig,
    ScoreCombiner,
    ScoreOutput,
    create_fmn,
)
from fmn_core.models.fusion import FusionHead
from fmn_core.models.i3d import (
    I3D_COMPACT,
    I3D_FULL,
    I3DConfig,
    LoadReport,
    VideoEncoder,
    create_i3d,
    load_kinetics_i3d,
    read_kinetics_state_dict,
)
from fmn_core.models.memory import FeatureMemoryBank, PairedMemory, UpdateRecord
from fmn_core.models.speech import SpeechEncoder, SpeechEncoderConfig, create_speech_encoder

__all__ = [
    "I3D_COMPACT",
    "I3D_FULL",
    "CheckpointError",
    "FMNConfig",
    "FeatureMemoryBank",
    "FeatureMemoryNetwork",
    "FusionHead",
    "I3DConfig",
    "LoadReport",
    "PairedMemory",
    "ScoreCombiner",
    "ScoreOutput",
    "SpeechEncoder",
    "SpeechEncoderConfig",
    "UpdateRecord",
    "VideoEncoder",
    "create_fmn",
    "create_i3d",
    "create_speech_encoder",
    "load_checkpoint",
    "load_kinetics_i3d",
    "read_kinetics_state_dict",
    "read_metadata",
    "save_checkpoint",
]
