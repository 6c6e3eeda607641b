"""`fmn probe`: how much of *what was said* a speech front end's frames carry, before any training.

A linear classifier of the class, fitted on the mean and standard deviation over time of each
training utterance's frames and scored on held-out utterances, by voice family and by phrasing
seen or not. It costs minutes, not a training run, and it is how the front ends were compared
(docs/benchmarks.md): MFCC statistics name the class of few utterances of unheard voice families,
Whisper encoder frames most of them. It measures the frames, not the FMN trained on them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmn_core.errors import FmnError
from fmn_core.eval.evaluate import speech_groups
from fmn_core.features.audio import SpeechFrontEndConfig
from fmn_core.manifest import Manifest, ManifestRow, read_manifest
from fmn_core.training.data import decode_speech

Progress = Callable[[str, int, int], None]


@dataclass
class ProbeResult:
    """Held-out accuracy of one front end's linear probe, overall and by group."""

    front_end: str
    accuracy: float
    n: int
    by_group: dict[str, tuple[float, int]]  # group name -> (accuracy, utterances)

    def to_dict(self) -> dict[str, Any]:
        return {
            "front_end": self.front_end,
            "accuracy": self.accuracy,
            "n": self.n,
            "by_group": {k: {"accuracy": a, "n": n} for k, (a, n) in self.by_group.items()},
        }


def describe(cfg: SpeechFrontEndConfig) -> str:
    """A front end's short name: its kind, and its context when it pads."""
    return cfg.kind + (f" (padded to {cfg.context_seconds:g} s)" if cfg.context_seconds else "")


def pooled(frames: Sequence[torch.Tensor]) -> np.ndarray:
    """``(N, 2F)`` mean and standard deviation over time of each ``(L_i, F)`` sequence."""
    return np.stack([torch.cat([f.mean(0), f.std(0, unbiased=False)]).numpy() for f in frames])


def fit_linear_probe(x: np.ndarray, y: np.ndarray, n_classes: int, weight_decay: float = 1e-3) -> torch.nn.Linear:
    """A softmax classifier on standardised features, fitted to convergence with L-BFGS (deterministic)."""
    torch.manual_seed(0)
    head = torch.nn.Linear(x.shape[1], n_classes)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).long()
    opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=300, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(xt), yt) + weight_decay * head.weight.pow(2).sum()
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]  # torch leaves LBFGS.step unannotated
    return head


def _groups(manifest: Manifest, rows: Sequence[ManifestRow]) -> dict[str, list[str]]:
    """Group names per utterance: language, voice family, phrasing seen or not."""
    groups = speech_groups(manifest, rows)
    names: dict[str, list[str]] = {"lang": [f"lang {r.lang or '?'}" for r in rows]}
    names["family"] = [
        f"family {f} ({'seen' if groups.family_seen.get(f) else 'unseen'})" if f else "" for f in groups.family
    ]
    names["phrasing"] = [f"phrasing {p}" if p else "" for p in groups.phrasing]
    return names


def probe(
    manifest_path: str | Path,
    front_ends: Sequence[SpeechFrontEndConfig],
    split: str = "val",
    jobs: int | None = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> list[ProbeResult]:
    """Fit each front end's linear probe on the training speech and score it on ``split``.

    Raises:
        FmnError: the manifest has no training or no ``split`` speech.
        FrontEndError: a Whisper front end that is not installed.
    """
    manifest = read_manifest(manifest_path)
    train_rows, test_rows = manifest.of("speech", "train"), manifest.of("speech", split)
    if not train_rows or not test_rows:
        raise FmnError(f"{manifest_path}: the probe needs training speech and {split} speech")
    classes = {c: i for i, c in enumerate(sorted({r.label for r in train_rows}))}
    results = []
    for cfg in front_ends:
        name = describe(cfg)

        def bar(part: str, name: str = name) -> Callable[[int, int], None] | None:
            return (lambda d, t: progress(f"{name}: {part}", d, t)) if progress else None

        tr = decode_speech(manifest, train_rows, cfg, jobs, bar("train"), cache_dir=cache_dir)
        te = decode_speech(manifest, test_rows, cfg, jobs, bar(split), cache_dir=cache_dir)
        keep_te = [i for i, r in enumerate(te.rows) if r.label in classes]
        x_tr, x_te = pooled(tr.items), pooled([te.items[i] for i in keep_te])
        mean, std = x_tr.mean(0), x_tr.std(0) + 1e-6
        head = fit_linear_probe((x_tr - mean) / std, np.array([classes[r.label] for r in tr.rows]), len(classes))
        with torch.no_grad():
            pred = head(torch.from_numpy((x_te - mean) / std).float()).argmax(1).numpy()
        rows = [te.rows[i] for i in keep_te]
        right = pred == np.array([classes[r.label] for r in rows])
        by_group: dict[str, list[bool]] = defaultdict(list)
        for names in _groups(manifest, rows).values():
            for ok, g in zip(right, names, strict=True):
                if g:
                    by_group[g].append(bool(ok))
        results.append(
            ProbeResult(
                name,
                float(right.mean()),
                len(rows),
                {g: (float(np.mean(v)), len(v)) for g, v in sorted(by_group.items())},
            )
        )
    return results


def format_results(results: Sequence[ProbeResult]) -> str:
    """One column per front end, one row per group: accuracy in percent (utterances)."""
    groups = sorted({g for r in results for g in r.by_group})
    head = ["group", *(r.front_end for r in results)]
    lines = [("all", *(f"{100 * r.accuracy:.1f} ({r.n})" for r in results))]
    for g in groups:
        lines.append(
            (g, *(f"{100 * r.by_group[g][0]:.1f} ({r.by_group[g][1]})" if g in r.by_group else "-" for r in results))
        )
    widths = [max(len(str(row[i])) for row in [head, *lines]) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in [head, *lines])
