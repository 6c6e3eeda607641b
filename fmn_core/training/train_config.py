"""What decides what `fmn train` produces (``TrainConfig``, saved with the model) and its defaults per front end.

It also says which settings stage-2 training depends on: a change to the others (the memory's)
re-chooses the memory from the finished stage-2 network instead of training it again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from fmn_core.features.audio import SpeechFrontEndConfig, front_end_config
from fmn_core.features.video import VideoFrontEndConfig
from fmn_core.models.fmn import FMNConfig
from fmn_core.models.speech import SpeechEncoderConfig
from fmn_core.training.fmn_stage_config import FMNStageConfig
from fmn_core.training.video_stage import VideoStageConfig

# U = 128: on the paper-protocol corpus it trains twice as fast per epoch as 256 and, in the same
# time, generalises better to new voices (docs/benchmarks.md, "How the shipped model was chosen").
MFCC_FMN = FMNConfig(speech=SpeechEncoderConfig(hidden=128, frame_stack=3))
# Whisper's frames are 20 ms, twice the MFCCs' step: two per LSTM step keep a similar pace.
WHISPER_FMN = FMNConfig(speech=SpeechEncoderConfig(hidden=128, frame_stack=2))
DEFAULT_FRONT_END = "whisper-base"  # generalises best to unheard voice families (docs/benchmarks.md)
DEFAULT_FMN = WHISPER_FMN


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what `fmn train` produces (saved with the model)."""

    fmn: FMNConfig = DEFAULT_FMN  # the network (its video.num_classes is set from the data)
    video_frontend: VideoFrontEndConfig = field(default_factory=VideoFrontEndConfig)
    speech_frontend: SpeechFrontEndConfig = field(default_factory=lambda: front_end_config(DEFAULT_FRONT_END))
    video_stage: VideoStageConfig = field(default_factory=VideoStageConfig)
    fmn_stage: FMNStageConfig = field(default_factory=FMNStageConfig)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def for_front_end(cls, spec: str, **changes: Any) -> TrainConfig:
        """The default configuration of a speech front end (``mfcc`` is the paper's), with ``changes``."""
        fe = front_end_config(spec)
        return cls(fmn=MFCC_FMN if fe.kind == "mfcc" else WHISPER_FMN, speech_frontend=fe, **changes)


# Settings that only the memory step after stage 2 reads: changing them re-chooses the memory
# from the finished stage-2 network instead of training it again.
_MEMORY_ONLY_FMN = (
    "memory_capacity", "t1", "t2", "alpha", "memory_averaging", "memory_policy", "memory_clamp_negative",
    "memory_readout", "memory_temperature", "combination", "ratio_eps", "memory_confirm",
)  # fmt: skip
_MEMORY_ONLY_STAGE = (
    "fill_pairs", "fill_by_label", "fill_positive_fraction", "t1_grid", "t2_grid", "averaging_grid",
    "soft_temperatures",
)  # fmt: skip


def _stage2_settings(fmn_cfg: FMNConfig, stage: FMNStageConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings stage-2 training depends on (its work checkpoint's fingerprint)."""
    fmn = {k: v for k, v in fmn_cfg.to_dict().items() if k not in _MEMORY_ONLY_FMN}
    return fmn, {k: v for k, v in dataclasses.asdict(stage).items() if k not in _MEMORY_ONLY_STAGE}
