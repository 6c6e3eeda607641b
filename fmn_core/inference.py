"""A trained FMN ready for use: load a model folder, turn media files into features, score them.

Evaluation, the library index, search and the application all go through :class:`FMNModel`, so
a file is decoded and encoded the same way everywhere. A model folder holds
``model.safetensors`` (weights, memory banks, config, front-end settings, class names) and a
``MODEL_CARD.md``; :func:`resolve_model_path` accepts the folder or the file.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fmn_core.errors import FmnError
from fmn_core.eval.scoring import pair_scores, ranking_from_terms
from fmn_core.features.audio import SpeechFrontEndConfig, collate_speech, prepare_wave, speech_features, wave_features
from fmn_core.features.video import VideoFrontEndConfig, load_clip
from fmn_core.models.checkpoint import load_checkpoint, save_checkpoint
from fmn_core.models.fmn import FeatureMemoryNetwork, FMNConfig, ScoreOutput

if TYPE_CHECKING:
    from fmn_core.eval.calibration import Calibration
    from fmn_core.index.moments import MomentPrior

CHECKPOINT_NAME = "model.safetensors"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "fmn-cooking-v4"  # the shipped model (see its MODEL_CARD.md)


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'.

    Raises:
        FmnError: CUDA asked for but not usable here.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise FmnError(f"unknown device {name!r}; use auto, cpu or cuda") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FmnError(
            "--device cuda: no CUDA GPU is usable here (torch.cuda.is_available() is False); use --device cpu"
        )
    return device


def resolve_model_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The checkpoint file of a model folder or file; the shipped model when ``path`` is None.

    Raises:
        FmnError: nothing there.
    """
    p = Path(path) if path is not None else DEFAULT_MODEL_DIR
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    if not p.is_file():
        hint = " (the shipped model is missing: is this a complete checkout?)" if path is None else ""
        raise FmnError(f"no model at {p}{hint}")
    return p


@dataclass
class FMNModel:
    """A network with the front ends it was trained with.

    Attributes:
        net: the Feature Memory Network (eval mode).
        cfg: its config.
        video_frontend: how clips are sampled and resized for its I3D.
        speech_frontend: how audio becomes frames (MFCCs or a Whisper encoder's) for its Bi-LSTM.
        class_names: the labels it was trained on (informative: retrieval works on any label).
        extra: everything else its checkpoint carries (training details, validation metrics).
        path: where it was loaded from (None when built in memory).
        checkpoint_digest: the file's hash as the index computes it, once known (the index keeps
            it by the file's size and time, so a library's model is not read twice to check it).
    """

    net: FeatureMemoryNetwork
    cfg: FMNConfig
    video_frontend: VideoFrontEndConfig
    speech_frontend: SpeechFrontEndConfig
    class_names: list[str]
    extra: dict[str, Any]
    path: Path | None
    checkpoint_digest: str | None = field(compare=False)  # the checkpoint file's blake2b, once known

    # Written out (a dataclass keeps a class's own __init__) so that the attribute is never None
    # where the argument may be.
    def __init__(
        self,
        net: FeatureMemoryNetwork,
        cfg: FMNConfig,
        video_frontend: VideoFrontEndConfig | None = None,
        speech_frontend: SpeechFrontEndConfig | None = None,
        class_names: list[str] | None = None,
        extra: dict[str, Any] | None = None,
        path: Path | None = None,
        checkpoint_digest: str | None = None,
    ) -> None:
        """The attributes; ``video_frontend`` None: the I3D's own input frames and size."""
        self.net = net
        self.cfg = cfg
        if video_frontend is None:
            video_frontend = VideoFrontEndConfig(frames=cfg.video.input_frames, size=cfg.video.input_size)
        self.video_frontend = video_frontend
        self.speech_frontend = speech_frontend if speech_frontend is not None else SpeechFrontEndConfig()
        self.class_names = class_names if class_names is not None else []
        self.extra = extra if extra is not None else {}
        self.path = path
        self.checkpoint_digest = checkpoint_digest

    @classmethod
    def load(
        cls, path: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu", defer_video: bool = False
    ) -> FMNModel:
        """Load a model folder or checkpoint file (the shipped model when None).

        ``defer_video`` builds the I3D only when a clip is first encoded (see
        :func:`~fmn_core.models.checkpoint.load_checkpoint`).

        Raises:
            FmnError: no model there; CheckpointError (an FmnError) for a damaged, unsafe or
                mismatched checkpoint.
        """
        file = resolve_model_path(path)
        device = resolve_device(device) if isinstance(device, str) else device
        net, cfg, extra = load_checkpoint(file, map_location=device, defer_video=defer_video)
        extra = dict(extra)
        try:
            video_fe = VideoFrontEndConfig(**extra.pop("video_frontend", {}))
            speech_fe = SpeechFrontEndConfig(**extra.pop("speech_frontend", {}))
        except TypeError as e:
            raise FmnError(f"{file}: front-end settings from another version of FMN Studio: {e}") from e
        return cls(net, cfg, video_fe, speech_fe, list(extra.pop("class_names", [])), extra, file)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the checkpoint (into ``path/model.safetensors`` when ``path`` is a folder or has no suffix)."""
        p = Path(path)
        if p.suffix != ".safetensors":
            p = p / CHECKPOINT_NAME
        extra = {
            **self.extra,
            "class_names": self.class_names,
            "video_frontend": dataclasses.asdict(self.video_frontend),
            "speech_frontend": dataclasses.asdict(self.speech_frontend),
        }
        return save_checkpoint(p, self.net, self.cfg, extra)

    @property
    def device(self) -> torch.device:
        """Where the network's weights are."""
        return next(self.net.parameters()).device

    @property
    def front_end_device(self) -> str:
        """Where a pretrained speech encoder runs: on the GPU when the network is there."""
        return "cuda" if self.device.type == "cuda" else "cpu"

    def speech_status(self) -> str | None:
        """None when speech can be encoded here, else why not and the fix (never raises).

        A model whose Whisper front end is missing still searches by video; callers show this.
        """
        try:
            self.speech_frontend.check_installed()
        except FmnError as exc:
            return str(exc)
        return None

    def checkpoint_hash(self) -> str:
        """The checkpoint file's blake2b, computed once per process (what the index and the files
        kept beside the checkpoint are checked against)."""
        from fmn_core.index.library import file_hash

        if self.checkpoint_digest is None:
            assert self.path is not None
            self.checkpoint_digest = file_hash(self.path)
        return self.checkpoint_digest

    @functools.cached_property
    def calibration(self) -> Calibration | None:
        """How sure its hits are (:mod:`fmn_core.eval.calibration`): from ``calibration.json`` beside the checkpoint."""
        if self.path is None:
            return None
        from fmn_core.eval.calibration import load_calibration

        return load_calibration(self.path, self.checkpoint_hash)

    @functools.cached_property
    def _moments(self) -> MomentPrior | None:
        """``moments.json`` beside the checkpoint, when it was written for these weights."""
        if self.path is None:
            return None
        from fmn_core.index.moments import load_moment_prior

        return load_moment_prior(self.path, self.checkpoint_hash)

    @property
    def moment_prior(self) -> float:
        """The weight of the background prior in a window's score (``index.moments.moment_scores``):
        from ``moments.json`` beside the checkpoint, 0 without one or without a background class."""
        if self._moments is None or self.background_class is None:
            return 0.0
        return self._moments.background_weight

    @property
    def moment_centre(self) -> float:
        """How far below its best window a moment's run reaches, the moment being centred on it
        (``centre`` of ``index.moments.merge_windows``): from ``moments.json``, 0 (the best window) without."""
        return self._moments.centre_within if self._moments is not None else 0.0

    @property
    def background_class(self) -> int | None:
        """The I3D's class for stretches where nothing happens (trained from ``background`` rows), if it has one."""
        from fmn_core.manifest import BACKGROUND

        return self.class_names.index(BACKGROUND) if BACKGROUND in self.class_names else None

    @torch.no_grad()
    def background_probability(self, v_raw: torch.Tensor) -> np.ndarray | None:
        """``(N,)`` the I3D's probability that each clip or window is background; None without the class."""
        bg = self.background_class
        if bg is None:
            return None
        if self.net.video_encoder is None:
            self.net.build_video_encoder()
        encoder = self.net.video_encoder
        assert encoder is not None  # a model with a background class has its I3D, built or deferred
        logits = encoder.projection(v_raw.to(self.device).float())
        return torch.softmax(logits, dim=-1)[:, bg].double().cpu().numpy()

    @property
    def name(self) -> str:
        """A short name for status lines: the model folder's name."""
        if self.path is None:
            return "(in memory)"
        return self.path.parent.name if self.path.name == CHECKPOINT_NAME else self.path.stem

    # -- raw features -------------------------------------------------------------------------

    @torch.no_grad()
    def video_raw_from_clips(self, clips: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
        """Raw I3D features ``(N, Dv)`` of normalised clips ``(N, 3, T, S, S)``, on the CPU."""
        self.net.eval()
        out = [
            self.net.video_features(clips[i : i + batch_size].to(self.device)).float().cpu()
            for i in range(0, len(clips), batch_size)
        ]
        return torch.cat(out) if out else torch.zeros(0, self.cfg.video.feature_dim)

    def video_raw(self, path: str | os.PathLike[str]) -> torch.Tensor:
        """Raw features ``(Dv,)`` of one video file.

        Raises:
            MediaError: the file is missing, empty, corrupt or not a video.
        """
        return self.video_raw_from_clips(load_clip(path, self.video_frontend)[None])[0]

    @torch.no_grad()
    def speech_raw_from_mfcc(self, sequences: Sequence[torch.Tensor], batch_size: int = 64) -> torch.Tensor:
        """Raw Bi-LSTM features ``(N, Da)`` of ``(L_i, F)`` front-end frame sequences, on the CPU."""
        self.net.eval()
        out = []
        # Similar lengths share a batch, so little time goes into padding.
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            feats, lengths = collate_speech([sequences[j] for j in idx])
            out.append((idx, self.net.speech_features(feats.to(self.device), lengths).float().cpu()))
        result = torch.zeros(len(sequences), self.cfg.speech.output_dim)
        for idx, feats in out:
            result[idx] = feats
        return result

    def speech_raw(self, path: str | os.PathLike[str]) -> torch.Tensor:
        """Raw features ``(Da,)`` of one audio file.

        Raises:
            MediaError: missing, empty, corrupt or non-audio file, silence, or under 0.3 s of sound.
            FrontEndError: the model's Whisper front end is not installed, damaged or other weights.
        """
        self.speech_frontend.check_installed()
        return self.speech_raw_from_mfcc([speech_features(path, self.speech_frontend, self.front_end_device)])[0]

    def speech_raw_from_wave(self, wave: np.ndarray, name: str = "the recording") -> torch.Tensor:
        """Raw features ``(Da,)`` of 16 kHz mono float samples (a microphone recording).

        Raises:
            MediaError: silence, or under 0.3 s of sound.
            FrontEndError: the model's Whisper front end is not installed, damaged or other weights.
        """
        fe = self.speech_frontend
        fe.check_installed()
        return self.speech_raw_from_mfcc([wave_features(prepare_wave(wave, fe, name), fe, self.front_end_device)])[0]

    # -- common space and scores --------------------------------------------------------------

    @torch.no_grad()
    def embed_video(self, v_raw: torch.Tensor) -> torch.Tensor:
        """Normalised common-space vectors ``(N, E)`` of raw video features ``(N, Dv)``."""
        return self.net.project_video(v_raw.to(self.device)).float().cpu()

    @torch.no_grad()
    def embed_speech(self, a_raw: torch.Tensor) -> torch.Tensor:
        """Normalised common-space vectors ``(N, E)`` of raw speech features ``(N, Da)``."""
        return self.net.project_speech(a_raw.to(self.device)).float().cpu()

    @torch.no_grad()
    def score_pairwise(self, v_raw: torch.Tensor, a_raw: torch.Tensor) -> ScoreOutput:
        """S, S1, memory score and slot of every (video, speech) pair: ``(N, M)`` tensors on the CPU."""
        self.net.eval()
        out = self.net.score_pairwise(v_raw.to(self.device), a_raw.to(self.device))
        return ScoreOutput(
            s=out.s.cpu(),
            s1=out.s1.cpu(),
            memory=out.memory.cpu(),
            slot=out.slot.cpu(),
            logit=None if out.logit is None else out.logit.cpu(),
            s1_logit=None if out.s1_logit is None else out.s1_logit.cpu(),
        )

    def score_and_rank(self, v_raw: torch.Tensor, a_raw: torch.Tensor) -> tuple[ScoreOutput, np.ndarray]:
        """:meth:`score_pairwise` and :meth:`ranking_scores` of the same pairs, the network run once."""
        out = self.score_pairwise(v_raw, a_raw)
        assert out.s1_logit is not None
        return out, ranking_from_terms(self.net.combiner, out.s1_logit, out.memory)

    def ranking_scores(self, v_raw: torch.Tensor, a_raw: torch.Tensor) -> np.ndarray:
        """``(N, M)`` float64 scores to rank by (the logit of S where there is one; see ``eval.scoring``)."""
        return pair_scores(self.net, v_raw, a_raw)


__all__ = [
    "CHECKPOINT_NAME",
    "DEFAULT_MODEL_DIR",
    "FMNModel",
    "resolve_device",
    "resolve_model_path",
]
