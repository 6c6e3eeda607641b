"""The video branch: I3D (ResNet-50, inflated kernels) built with pytorchvideo's ``create_resnet``.

The paper (§3.1) uses a Kinetics-pretrained I3D fine-tuned on MPII Cooking 2 as a frozen
2048-d feature extractor. We build the same architecture with exactly the settings of
pytorchvideo's ``i3d_r50`` hub builder (stem kernel (5, 7, 7), a temporal max-pool after stage 1,
inflated conv_a kernels per stage), in two sizes:

- ``I3D_FULL``: stem 64, 8 x 224² clips, 2048-d features; loads a user's Kinetics checkpoint in
  pytorchvideo's ``I3D_8x8_R50`` layout (:func:`load_kinetics_i3d`).
- ``I3D_COMPACT``: stem 16, 8 x 96² clips, 512-d features, about 1.7 M parameters; trains on
  a 2-core CPU (DESIGN §2.1). 8 x 96² costs about a third of 16 x 112² per clip, and learning
  from scratch here is bound by how many epochs fit in the time budget, not by the input's
  detail (docs/benchmarks.md).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from fmn_core.models.errors import CheckpointError

# The i3d_r50 hub builder's conv_a kernels per stage; a list alternates over a stage's blocks.
I3D_STAGE_CONV_A_KERNELS = (
    (3, 1, 1),
    [(3, 1, 1), (1, 1, 1)],
    [(3, 1, 1), (1, 1, 1)],
    [(1, 1, 1), (3, 1, 1)],
)
I3D_STEM_CONV_KERNEL = (5, 7, 7)
_SPATIAL_STRIDE = 32  # stem conv, stem pool and stages 2-4 each halve H and W
_TEMPORAL_STRIDE = 2  # the max-pool after stage 1 halves T
_CHECKPOINT_PREFIXES = ("module.", "model.", "net.")  # DataParallel, Lightning-style and our own wrappers


@dataclass(frozen=True)
class I3DConfig:
    """Settings of an I3D video encoder (ResNet-style, pytorchvideo ``i3d_r50`` layout)."""

    stem_dim_out: int = 64  # channels out of the stem; stage widths are 4, 8, 16, 32 times this
    input_frames: int = 8  # T of the (B, 3, T, H, W) input clip
    input_size: int = 224  # H = W of the input clip
    num_classes: int = 20  # outputs of the classification projection (stage-1 supervision; Kinetics: 400)
    dropout: float = 0.5  # dropout before the classification projection
    model_depth: int = 50  # ResNet depth: 50, 101 or 152
    input_channels: int = 3  # RGB

    def __post_init__(self) -> None:
        if self.input_frames < _TEMPORAL_STRIDE or self.input_frames % _TEMPORAL_STRIDE:
            raise ValueError(f"input_frames must be a positive even number, got {self.input_frames}")
        if self.input_size < _SPATIAL_STRIDE:
            raise ValueError(f"input_size must be at least {_SPATIAL_STRIDE}, got {self.input_size}")

    @property
    def feature_dim(self) -> int:
        """Width of the pooled features: stage 4's output channels."""
        return self.stem_dim_out * 32

    @property
    def head_pool_kernel(self) -> tuple[int, int, int]:
        """The head's average-pool kernel: the whole final feature map (i3d_r50: (4, 7, 7) for 8 x 224²)."""
        side = math.ceil(self.input_size / _SPATIAL_STRIDE)
        return (self.input_frames // _TEMPORAL_STRIDE, side, side)


I3D_FULL = I3DConfig(stem_dim_out=64, input_frames=8, input_size=224)
I3D_COMPACT = I3DConfig(stem_dim_out=16, input_frames=8, input_size=96)


class VideoEncoder(nn.Module):
    """A finished pytorchvideo ``Net`` (stem, stages, ``ResNetBasicHead``) seen as a feature extractor.

    Args:
        net: the network from ``create_resnet``; its last block must be a ``ResNetBasicHead``.
        input_shape: the ``(C, T, H, W)`` the network was built for, checked on every call.
    """

    def __init__(self, net: nn.Module, input_shape: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.net = net
        self.input_shape = tuple(input_shape)

    @property
    def blocks(self) -> nn.ModuleList:
        """The network's stem, stages and head, in order."""
        return cast(nn.ModuleList, self.net.blocks)  # pytorchvideo's Net is untyped; its blocks are a ModuleList

    @property
    def head(self) -> nn.Module:
        """The ``ResNetBasicHead``: pool, dropout, classification projection."""
        return self.blocks[-1]

    @property
    def projection(self) -> nn.Linear:
        """The head's classification projection, ``Linear(feature_dim, num_classes)``."""
        return cast(nn.Linear, self.head.proj)

    @property
    def feature_dim(self) -> int:
        """D of :meth:`features`."""
        return self.projection.in_features

    @property
    def num_classes(self) -> int:
        """Outputs of :meth:`forward`."""
        return self.projection.out_features

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 5 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"expected clips of shape (B, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}"
            )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled activations before the classification projection.

        Args:
            x: clips ``(B, 3, T, H, W)``, normalised.

        Returns:
            ``(B, D)`` features (non-negative: they follow a ReLU).
        """
        self._check(x)
        for block in self.blocks[:-1]:
            x = block(x)
        pool = cast(nn.Module, self.head.pool)
        x = pool(x)
        return x.mean(dim=(2, 3, 4))  # the head pool already covers the map; this just flattens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` of clips ``(B, 3, T, H, W)``."""
        self._check(x)
        logits: torch.Tensor = self.net(x)
        return logits


def import_video_backbone() -> Any:
    """pytorchvideo's ``create_resnet``, imported on first call.

    Not at module import: pytorchvideo pulls in torchvision and torch._dynamo (1.5 s), which a
    speech search over an indexed library never needs. A Qt program calls this before it
    creates its QApplication (the app does): triton, which torchvision imports, carries its own
    LLVM, and loaded after Qt has loaded Mesa's OpenGL it crashed the process.
    """
    # pytorchvideo 0.1.5 imports fvcore, which calls torch.jit.script at import time; torch 2.14
    # deprecates that with a FutureWarning that says nothing about our code (and that pytest's
    # "warnings are errors" would turn into an import failure).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
        from pytorchvideo.models.resnet import create_resnet
    return create_resnet


def create_i3d(cfg: I3DConfig) -> VideoEncoder:
    """Build an I3D encoder with the settings of pytorchvideo's ``i3d_r50`` hub builder."""
    create_resnet = import_video_backbone()
    net = create_resnet(
        input_channel=cfg.input_channels,
        model_depth=cfg.model_depth,
        model_num_class=cfg.num_classes,
        dropout_rate=cfg.dropout,
        stem_dim_out=cfg.stem_dim_out,
        stem_conv_kernel_size=I3D_STEM_CONV_KERNEL,
        stage1_pool=nn.MaxPool3d,
        stage_conv_a_kernel_size=I3D_STAGE_CONV_A_KERNELS,
        head_pool_kernel_size=cfg.head_pool_kernel,
    )
    return VideoEncoder(net, (cfg.input_channels, cfg.input_frames, cfg.input_size, cfg.input_size))


@dataclass
class LoadReport:
    """What :func:`load_kinetics_i3d` did."""

    loaded: list[str] = field(default_factory=list)  # keys copied into the encoder (encoder.net's names)
    skipped: list[str] = field(default_factory=list)  # checkpoint keys left out (the projection, class count differs)


def _unwrap(state_dict: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """Strip pytorchvideo's ``model_state`` wrapper and ``module.``/``model.`` key prefixes."""
    for wrapper in ("model_state", "state_dict"):
        inner = state_dict.get(wrapper)
        if isinstance(inner, Mapping):
            state_dict = inner
            break
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            continue
        while key.startswith(_CHECKPOINT_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def _problems(missing: list[str], unexpected: list[str], mismatched: list[str]) -> str:
    parts = []
    for name, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if keys:
            shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
            parts.append(f"{name}: {shown}")
    return "; ".join(parts)


def load_kinetics_i3d(encoder: VideoEncoder, state_dict: Mapping[str, object]) -> LoadReport:
    """Load a Kinetics I3D checkpoint in pytorchvideo's ``I3D_8x8_R50`` key layout into ``encoder``.

    Keys look like ``blocks.0.conv.weight`` (stem), ``blocks.1.res_blocks.0.branch2.conv_a.weight``
    and ``blocks.6.proj.weight`` (the head: block 2 is stage 1's temporal pool). A ``model_state``
    (pytorchvideo) or ``state_dict`` wrapper and ``module.``/``model.`` prefixes are accepted. The
    classification projection is skipped when its class count differs from the encoder's.

    Args:
        encoder: an encoder of the same architecture (``I3D_FULL`` for the published checkpoint).
        state_dict: the loaded checkpoint (see :func:`read_kinetics_state_dict`).

    Returns:
        Which keys were loaded and which skipped.

    Raises:
        CheckpointError: keys missing, unexpected or of another shape (other than the projection).
    """
    source = _unwrap(state_dict)
    target = encoder.net.state_dict()
    proj_prefix = f"blocks.{len(encoder.blocks) - 1}.proj."
    skipped = [k for k in source if k.startswith(proj_prefix) and k in target and source[k].shape != target[k].shape]
    missing = [k for k in target if k not in source and k not in skipped]
    unexpected = [k for k in source if k not in target]
    mismatched = [
        f"{k} {tuple(source[k].shape)} vs {tuple(target[k].shape)}"
        for k in source
        if k in target and k not in skipped and source[k].shape != target[k].shape
    ]
    if skipped:  # the encoder keeps its own (freshly initialised) projection
        missing = [k for k in missing if not k.startswith(proj_prefix)]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            "the checkpoint does not fit this I3D encoder (use I3D_FULL for pytorchvideo's I3D_8x8_R50): "
            + _problems(missing, unexpected, mismatched)
        )
    loaded = {k: v for k, v in source.items() if k not in skipped}
    encoder.net.load_state_dict(loaded, strict=False)
    return LoadReport(loaded=sorted(loaded), skipped=sorted(skipped))


def read_kinetics_state_dict(path: str | os.PathLike[str]) -> Mapping[str, object]:
    """Read a Kinetics checkpoint without running code from it.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(weights_only=True)``, which refuses objects other than tensors and containers.

    Raises:
        CheckpointError: the file is missing or holds more than weights.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        weights: Mapping[str, object] = torch.load(path, map_location="cpu", weights_only=True)
        return weights
    except Exception as e:  # any reader failure means the same to the user: not plain weights
        raise CheckpointError(f"cannot read {path} as weights only ({type(e).__name__}: {e})") from e
