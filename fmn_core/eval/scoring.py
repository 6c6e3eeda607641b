"""Scores to rank by, for any way of combining S1 and the memory (the shipped one and the ablations).

Ranking uses float64 and, where the combination has one, the logit of S: S itself is a sigmoid
and saturates in float32, so many pairs would tie at 1.0 and a pessimistic tie rule would punish
a model for being confident.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch

from fmn_core.models.fmn import FeatureMemoryNetwork, ScoreCombiner


@torch.no_grad()
def pair_scores(
    net: FeatureMemoryNetwork,
    v_raw: torch.Tensor,
    a_raw: torch.Tensor,
    combination: str | None = None,
    learned: Sequence[float] | None = None,
    chunk: int = 256,
    readout: str | None = None,
) -> np.ndarray:
    """``(Nv, Na)`` float64 ranking scores of every (video, speech) pair.

    Args:
        net: the network (its banks as they are).
        v_raw: ``(Nv, Dv)`` raw video features.
        a_raw: ``(Na, Da)`` raw speech features.
        combination: how S is made ('learned', 'product', 'ratio', 'none'); the network's own when None.
        learned: ``[w1, w2, b]`` of a learned combination other than the network's (for ablations).
        chunk: rows scored at once.
        readout: how the banks make Max ('max', 'soft'); the network's own when None.
    """
    net.eval()
    device = next(net.parameters()).device
    v_raw, a_raw = v_raw.to(device), a_raw.to(device)
    s1_logit = net.fusion.pairwise_logit(net.project_video(v_raw), net.project_speech(a_raw), chunk)
    memory = net.memory.max_score_pairwise(v_raw, a_raw, chunk, readout)[0]
    return ranking_from_terms(net.combiner, s1_logit, memory, combination, learned)


@torch.no_grad()
def ranking_from_terms(
    combiner: ScoreCombiner,
    s1_logit: torch.Tensor,
    memory: torch.Tensor,
    combination: str | None = None,
    learned: Sequence[float] | None = None,
) -> np.ndarray:
    """Float64 ranking scores from a scoring's terms (S1's logit and Max), as :func:`pair_scores` ranks.

    Args:
        combiner: the network's combiner.
        s1_logit, memory: ``(N, M)`` terms of the pairs (``ScoreOutput.s1_logit``, ``.memory``).
        combination, learned: as in :func:`pair_scores`.
    """
    s1_logit, memory = s1_logit.double(), memory.double()
    if combination is not None and combination != combiner.mode:
        combiner = ScoreCombiner(combination, combiner.eps)
        if combination == "learned":
            if learned is None:
                raise ValueError("a learned combination needs its weights [w1, w2, b]")
            combiner.linear.weight.data = torch.tensor([list(learned[:2])], dtype=torch.float64)
            combiner.linear.bias.data = torch.tensor(list(learned[2:3]), dtype=torch.float64)
    if combiner.mode == "learned":
        combiner = copy.deepcopy(combiner).to(s1_logit.device).double()  # a copy: the network's stays float32
    s, _, logit = combiner(s1_logit, memory)
    ranking: torch.Tensor = logit if logit is not None else s  # a module call is Any to mypy
    return ranking.cpu().numpy()


def log_s(ranking: np.ndarray, mode: str) -> np.ndarray:
    """log S from :func:`ranking_from_terms`' scores: exact from a logit ('learned', 'none'), else log of S.

    Moments add a log prior to it (``index.moments.moment_scores``); adding to a logit would not
    be a product of probabilities.
    """
    ranking = np.asarray(ranking, dtype=np.float64)
    # numpy's stubs give Any for these
    if mode in ("learned", "none"):
        log_sigmoid: np.ndarray = -np.logaddexp(0.0, -ranking)  # without overflow
        return log_sigmoid
    log_prob: np.ndarray = np.log(np.clip(ranking, 1e-300, None))
    return log_prob
