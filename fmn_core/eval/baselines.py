"""Baselines on frozen features by name: CCA, KCCA, DCCA (the paper's §4.3 comparisons) and an InfoNCE dual encoder.

Every baseline keeps the contract of :class:`~fmn_core.eval.baseline_base.Baseline`: fitted on a
training split where every same-label (video, speech) pair is a positive, then
``similarity(v, a) -> (N, M)``. ``cca_baselines`` holds CCA and KCCA, ``neural_baselines`` DCCA
and InfoNCE. All baselines take a ``seed`` and are deterministic; none touches the global random state.
"""

from __future__ import annotations

import inspect
from typing import Any

from fmn_core.eval.baseline_base import Baseline
from fmn_core.eval.cca_baselines import CCA, KCCA
from fmn_core.eval.neural_baselines import DCCA, InfoNCE

BASELINES: dict[str, type[Baseline]] = {"cca": CCA, "kcca": KCCA, "dcca": DCCA, "infonce": InfoNCE}


def make_baseline(name: str, **settings: Any) -> Baseline:
    """Build a baseline by registry name with its defaults, overridden by ``settings``.

    Args:
        name: one of ``BASELINES`` ("cca", "kcca", "dcca", "infonce"), case-insensitive.
        settings: constructor fields, e.g. ``seed=1`` or ``steps=100``.

    Raises:
        ValueError: for an unknown name or setting.
    """
    cls = BASELINES.get(name.lower())
    if cls is None:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    allowed = set(inspect.signature(cls).parameters)
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise ValueError(f"{name} has no setting {', '.join(unknown)}; it takes {', '.join(sorted(allowed))}")
    return cls(**settings)
