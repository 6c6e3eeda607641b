"""The Feature Memory Network (paper §3, DESIGN §2): encoders, common space, fusion, memory.

::

    clip ──I3D──> v_raw ──Linear──> v ─┐
                    │                  ├─concat─MLP─softmax─> S1 ─┐
    MFCC ─BiLSTM─> a_raw ─Linear──> a ─┘                          ├─combine─> S
                    └──── memory banks (raw features) ───> Max ───┘

The video encoder is optional: training stage 2 and the library index work on cached raw video
features, so every scoring method takes raw features (``v_raw``, ``a_raw``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from fmn_core.errors import FmnError
from fmn_core.models.fusion import FusionHead
from fmn_core.models.i3d import I3D_COMPACT, I3DConfig, VideoEncoder, create_i3d
from fmn_core.models.memory import AVERAGINGS, CONFIRM_RULES, POLICIES, READOUTS, PairedMemory, UpdateRecord
from fmn_core.models.speech import SpeechEncoder, SpeechEncoderConfig, create_speech_encoder

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

COMBINATIONS = ("learned", "product", "ratio", "none")


@dataclass(frozen=True)
class FMNConfig:
    """Settings of a Feature Memory Network; saved in every checkpoint."""

    video: I3DConfig = I3D_COMPACT  # the video encoder (its feature_dim is Dv)
    speech: SpeechEncoderConfig = field(default_factory=SpeechEncoderConfig)  # the speech encoder (output_dim is Da)
    embed_dim: int = 256  # E: width of the common space both modalities are projected into
    fusion_hidden: int = 256  # hidden width of the fusion MLP
    fusion_dropout: float = 0.1  # dropout in the fusion MLP
    memory_capacity: int = 50  # X: slots per memory bank (paper: 50)
    t1: float = 0.5  # S1 above this: the pair is judged a match and may update the banks
    t2: float = 0.8  # m2 below this: the pair is new and gets a slot; otherwise it is averaged in
    alpha: float = 0.1  # weight of a new sample when averaged into a slot ('ema' averaging)
    memory_averaging: str = "ema"  # 'ema': weight alpha; 'mean': 1 / (hits + 1), the slot is the mean of its pairs
    memory_policy: str = "least_used"  # slot a full bank gives up: 'least_used' (ties: oldest) or 'oldest'
    memory_clamp_negative: bool = True  # clip cosines at 0 before multiplying them into Max ('max' readout)
    # How the memory vectors make Max: 'max' the paper's max_j m_v[j] * m_a[j]; 'soft' the
    # agreement of softmax(temperature * m) over the slots (see PairedMemory)
    memory_readout: str = "max"
    memory_temperature: float = 20.0
    # How a user's confirmations are stored: 'paper' the update rule of DESIGN §2.6; 'new_voice' a
    # confirmed pair is averaged only into a slot like both its halves, else gets its own (PairedMemory)
    memory_confirm: str = "paper"
    # How S1 and Max make S (paper formula (3) is ambiguous as printed):
    #   'learned' S = sigmoid(w1 * logit(S1) + w2 * Max + b), starts as S = S1 (w = [1, 0], b = 0)
    #   'product' S = S1 * max(Max, 0)               (one reading of (3))
    #   'ratio'   S = min(1, S1 / max(Max, eps))     (the other reading of (3))
    #   'none'    S = S1                              (the no-memory ablation)
    combination: str = "learned"
    ratio_eps: float = 1e-3  # eps of the 'ratio' reading

    def __post_init__(self) -> None:
        if self.combination not in COMBINATIONS:
            raise ValueError(f"combination must be one of {COMBINATIONS}, got {self.combination!r}")
        if self.memory_policy not in POLICIES:
            raise ValueError(f"memory_policy must be one of {POLICIES}, got {self.memory_policy!r}")
        if self.memory_averaging not in AVERAGINGS:
            raise ValueError(f"memory_averaging must be one of {AVERAGINGS}, got {self.memory_averaging!r}")
        if self.memory_readout not in READOUTS:
            raise ValueError(f"memory_readout must be one of {READOUTS}, got {self.memory_readout!r}")
        if self.memory_confirm not in CONFIRM_RULES:
            raise ValueError(f"memory_confirm must be one of {CONFIRM_RULES}, got {self.memory_confirm!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (nested configs as dicts)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FMNConfig:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: unknown fields (a config from a newer version) or invalid values.
        """
        data = dict(data)
        nested = {}  # a missing sub-config keeps FMNConfig's default, not the sub-config class's
        for name, sub in (("video", I3DConfig), ("speech", SpeechEncoderConfig)):
            if name in data:
                nested[name] = _dataclass_from_dict(sub, data.pop(name))
        return _dataclass_from_dict(cls, data, **nested)


_Config = TypeVar("_Config", bound="DataclassInstance")


def _dataclass_from_dict(cls: type[_Config], data: dict[str, Any], **nested: Any) -> _Config:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {', '.join(unknown)}")
    return cls(**data, **nested)


@dataclass
class ScoreOutput:
    """Scores of pairs: ``(B,)`` tensors for aligned pairs, ``(N, M)`` for all pairs of two sets."""

    s: torch.Tensor  # final score S in [0, 1]
    s1: torch.Tensor  # fusion score S1 in [0, 1]
    memory: torch.Tensor  # Max, the memory banks' agreement (0 with an empty memory)
    slot: torch.Tensor  # int64 slot that gave Max (-1 with an empty memory)
    logit: torch.Tensor | None  # logit of S where the combination has one (for a stable BCE)
    s1_logit: torch.Tensor | None = None  # logit of S1 (what ranking recombines in float64)


class ScoreCombiner(nn.Module):
    """Combines S1 and Max into S (paper formula (3)); see ``FMNConfig.combination``."""

    def __init__(self, mode: str, eps: float = 1e-3) -> None:
        super().__init__()
        if mode not in COMBINATIONS:
            raise ValueError(f"combination must be one of {COMBINATIONS}, got {mode!r}")
        self.mode, self.eps = mode, eps
        if mode == "learned":
            self.linear = nn.Linear(2, 1)
            with torch.no_grad():  # start as S = S1: the memory earns its weight in training
                self.linear.weight.copy_(torch.tensor([[1.0, 0.0]]))
                self.linear.bias.zero_()

    def forward(
        self, s1_logit: torch.Tensor, memory: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(S1 logit, Max)`` of any equal shape -> ``(S, S1, logit of S or None)``."""
        s1 = torch.sigmoid(s1_logit)
        if self.mode == "none":
            return s1, s1, s1_logit
        if self.mode == "learned":
            logit = self.linear(torch.stack([s1_logit, memory], dim=-1)).squeeze(-1)
            return torch.sigmoid(logit), s1, logit
        if self.mode == "product":
            return s1 * memory.clamp(min=0), s1, None
        return (s1 / memory.clamp(min=self.eps)).clamp(max=1.0), s1, None


class FeatureMemoryNetwork(nn.Module):
    """The FMN: finished encoders, projections, fusion head, paired memory and score combiner.

    Args:
        speech_encoder: MFCC sequences -> raw speech features ``(B, Da)``.
        video_proj: ``Linear(Dv, E)`` into the common space.
        speech_proj: ``Linear(Da, E)`` into the common space.
        fusion: the S1 head over normalised projected vectors.
        memory: the paired video/speech memory banks over raw features.
        combiner: S1 and Max -> S.
        video_encoder: clips -> raw video features ``(B, Dv)``; None when working on cached features.
    """

    def __init__(
        self,
        speech_encoder: SpeechEncoder,
        video_proj: nn.Linear,
        speech_proj: nn.Linear,
        fusion: FusionHead,
        memory: PairedMemory,
        combiner: ScoreCombiner,
        video_encoder: VideoEncoder | None = None,
    ) -> None:
        super().__init__()
        self.video_encoder = video_encoder
        # (config, weights) of an I3D that is built on first use (see defer_video_encoder).
        self._deferred_video: tuple[I3DConfig, dict[str, torch.Tensor]] | None = None
        self.speech_encoder = speech_encoder
        self.video_proj = video_proj
        self.speech_proj = speech_proj
        self.fusion = fusion
        self.memory = memory
        self.combiner = combiner

    # -- raw features -------------------------------------------------------------------------

    def defer_video_encoder(self, cfg: I3DConfig, state: dict[str, torch.Tensor]) -> None:
        """Keep an I3D's weights and build it only when clips are first encoded.

        Building I3D imports pytorchvideo and torchvision (1.5 s on 2 cores); a speech search
        over an indexed library scores stored video features and never needs it.
        """
        if self.video_encoder is not None:
            raise ValueError("this network already has its video encoder")
        self._deferred_video = (cfg, state)

    def build_video_encoder(self) -> None:
        """Build a deferred I3D now (nothing to do when it is built or absent).

        Raises:
            FmnError: the deferred weights do not fit the I3D of the config.
        """
        if self._deferred_video is None:
            return
        cfg, state = self._deferred_video
        encoder = create_i3d(cfg)
        try:
            encoder.load_state_dict(state)
        except RuntimeError as e:  # names or shapes that do not fit the config
            raise FmnError(f"the model's video encoder does not match its config: {e}") from e
        anchor = next(self.parameters())
        self.video_encoder = encoder.to(anchor.device).train(self.training)
        self._deferred_video = None

    @property
    def has_video_encoder(self) -> bool:
        return self.video_encoder is not None or self._deferred_video is not None

    def video_features(self, clips: torch.Tensor) -> torch.Tensor:
        """Raw video features ``(B, Dv)`` of clips ``(B, 3, T, H, W)``."""
        self.build_video_encoder()
        if self.video_encoder is None:
            raise FmnError("this model was loaded without its video encoder; it can only score cached video features")
        return self.video_encoder.features(clips)

    def speech_features(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Raw speech features ``(B, Da)`` of MFCC sequences ``(B, L, F)`` with ``lengths (B,)``."""
        features: torch.Tensor = self.speech_encoder(feats, lengths)
        return features

    # -- common space (open_clip-like) --------------------------------------------------------

    def project_video(self, v_raw: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Raw video features ``(B, Dv)`` -> common-space vectors ``(B, E)``."""
        v = self.video_proj(v_raw)
        return F.normalize(v, dim=-1) if normalize else v

    def project_speech(self, a_raw: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Raw speech features ``(B, Da)`` -> common-space vectors ``(B, E)``."""
        a = self.speech_proj(a_raw)
        return F.normalize(a, dim=-1) if normalize else a

    def encode_video(self, clips: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Clips ``(B, 3, T, H, W)`` -> common-space vectors ``(B, E)``."""
        return self.project_video(self.video_features(clips), normalize)

    def encode_speech(self, feats: torch.Tensor, lengths: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """MFCC sequences ``(B, L, F)`` with ``lengths (B,)`` -> common-space vectors ``(B, E)``."""
        return self.project_speech(self.speech_features(feats, lengths), normalize)

    # -- scores -------------------------------------------------------------------------------

    def score(self, v_raw: torch.Tensor, a_raw: torch.Tensor) -> ScoreOutput:
        """Scores of aligned pairs.

        Args:
            v_raw: ``(B, Dv)`` raw video features.
            a_raw: ``(B, Da)`` raw speech features.

        Returns:
            ``ScoreOutput`` of ``(B,)`` tensors.
        """
        s1_logit = self.fusion.logit(self.project_video(v_raw), self.project_speech(a_raw))
        memory, slot = self.memory.max_score(v_raw, a_raw)
        s, s1, logit = self.combiner(s1_logit, memory)
        return ScoreOutput(s=s, s1=s1, memory=memory, slot=slot, logit=logit, s1_logit=s1_logit)

    def score_pairwise(self, v_raw: torch.Tensor, a_raw: torch.Tensor, chunk: int = 256) -> ScoreOutput:
        """Scores of every pair of ``v_raw (N, Dv)`` and ``a_raw (M, Da)``: ``ScoreOutput`` of ``(N, M)``."""
        s1_logit = self.fusion.pairwise_logit(self.project_video(v_raw), self.project_speech(a_raw), chunk)
        memory, slot = self.memory.max_score_pairwise(v_raw, a_raw, chunk)
        s, s1, logit = self.combiner(s1_logit, memory)
        return ScoreOutput(s=s, s1=s1, memory=memory, slot=slot, logit=logit, s1_logit=s1_logit)

    # -- memory -------------------------------------------------------------------------------

    @torch.no_grad()
    def update_memory(
        self, v_raw: torch.Tensor, a_raw: torch.Tensor, s1: torch.Tensor | None = None
    ) -> list[UpdateRecord]:
        """Let the banks learn from pairs ``(B, Dv)``, ``(B, Da)`` (paper §3.4.3).

        Args:
            v_raw: raw video features.
            a_raw: raw speech features.
            s1: ``(B,)`` fusion scores when already computed; computed here otherwise.
        """
        if s1 is None:
            s1 = torch.sigmoid(self.fusion.logit(self.project_video(v_raw), self.project_speech(a_raw)))
        return self.memory.update(v_raw, a_raw, s1)

    @torch.no_grad()
    def confirm_match(self, v_raw: torch.Tensor, a_raw: torch.Tensor, voice: bool = False) -> list[UpdateRecord]:
        """A user's "this is a correct match": remember the pairs whatever S1 says, with full weight.

        Args:
            v_raw: ``(B, Dv)`` raw video features.
            a_raw: ``(B, Da)`` raw speech features, as the encoder gave them.
            voice: the speech is the user's own spoken query, not a library's clip: the banks also
                learn the voice's offset from it (``PairedMemory.hear_voice``), and remember the
                speech with the offset taken away, as later queries of the voice are read.
        """
        if not voice:
            return self.memory.update(v_raw, a_raw, torch.ones(len(v_raw), device=v_raw.device), confirmed=True)
        records = []
        for i in range(len(v_raw)):
            self.memory.hear_voice(v_raw[i], a_raw[i])
            adjusted = self.memory.adjust_voice(a_raw[i : i + 1])
            written = self.memory.update(v_raw[i : i + 1], adjusted, torch.ones(1, device=v_raw.device), True)
            records += [dataclasses.replace(r, index=i) for r in written]
        return records


def create_fmn(cfg: FMNConfig, with_video_encoder: bool = True) -> FeatureMemoryNetwork:
    """Build a Feature Memory Network.

    Args:
        cfg: the settings.
        with_video_encoder: False to leave out I3D (scoring cached raw video features only).
    """
    speech_dim = cfg.speech.output_dim
    memory = PairedMemory(
        cfg.video.feature_dim,
        speech_dim,
        capacity=cfg.memory_capacity,
        t1=cfg.t1,
        t2=cfg.t2,
        alpha=cfg.alpha,
        policy=cfg.memory_policy,
        clamp_negative=cfg.memory_clamp_negative,
        averaging=cfg.memory_averaging,
        readout=cfg.memory_readout,
        temperature=cfg.memory_temperature,
        confirm_rule=cfg.memory_confirm,
    )
    return FeatureMemoryNetwork(
        speech_encoder=create_speech_encoder(cfg.speech),
        video_proj=nn.Linear(cfg.video.feature_dim, cfg.embed_dim),
        speech_proj=nn.Linear(speech_dim, cfg.embed_dim),
        fusion=FusionHead(cfg.embed_dim, cfg.fusion_hidden, cfg.fusion_dropout),
        memory=memory,
        combiner=ScoreCombiner(cfg.combination, cfg.ratio_eps),
        video_encoder=create_i3d(cfg.video) if with_video_encoder else None,
    )
