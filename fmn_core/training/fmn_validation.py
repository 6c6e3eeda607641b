"""How stage 2 is judged on validation: the trained encoder's raw speech features and the selection figure.

The figure (mAP or R@1, both directions) chooses the epoch, the weight average and the memory settings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fmn_core.eval.metrics import metrics_by_group
from fmn_core.eval.scoring import pair_scores
from fmn_core.features.audio import collate_speech
from fmn_core.models.fmn import FeatureMemoryNetwork
from fmn_core.training.fmn_batches import SpeechSet, VideoSet
from fmn_core.training.fmn_stage_config import FMNStageConfig


def speech_raw(
    model: FeatureMemoryNetwork, feats: Sequence[torch.Tensor], device: torch.device, batch_size: int = 64
) -> torch.Tensor:
    """Raw speech features ``(N, Da)`` on the CPU, in eval mode, batched by similar length."""
    model.eval()
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]))
    out = torch.zeros(len(feats), model.speech_encoder.output_dim)
    with torch.no_grad():
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            x, lengths = collate_speech([feats[j] for j in idx])
            out[idx] = model.speech_features(x.to(device), lengths).float().cpu()
    return out


def _selection_value(scores: np.ndarray, video: VideoSet, speech: SpeechSet, cfg: FMNStageConfig) -> float:
    """The validation figure ('map' or 'r1'), the mean over both directions.

    With ``cfg.selection_by`` 'family' or 'speaker' (and those known) it is averaged over the
    groups (``metrics_by_group``), each group's clips being its speech queries and its
    video→speech gallery; with 'clip', or when no item has a group, it is the figure over all clips.
    """
    named = {"family": speech.families, "speaker": speech.speakers}.get(cfg.selection_by) or []
    groups = named if any(named) else ["all"] * len(speech.labels)
    metrics = metrics_by_group(scores, video.labels.numpy(), speech.labels.numpy(), groups, ks=(1,))
    metric = cfg.selection_metric
    values = [m.map if metric == "map" else m.recall_at[1] for by_dir in metrics.values() for m in by_dir.values()]
    return float(np.mean(values))


def _validate(
    model: FeatureMemoryNetwork, val: tuple[VideoSet, SpeechSet], cfg: FMNStageConfig, device: torch.device
) -> float:
    """The selection figure of S = S1 on the validation split."""
    a_val = speech_raw(model, val[1].feats, device)
    scores = pair_scores(model, val[0].feats, a_val, combination="none")
    return _selection_value(scores, val[0], val[1], cfg)
