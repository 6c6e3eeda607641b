"""`fmn adapt`: does confirming a few matches teach the memory banks a new voice? (DESIGN §2.6)

The paper updates its banks at test time, and in the app a user's "this is a correct match" is
the strongest update there is. The question this module answers: after a user with a voice the
model never heard confirms k results per class, does retrieval get better for the *rest* of what
that voice says?

Protocol, for each voice family F of the evaluated split (``family_of``), each k and each seed:

1. restore the model's own shipped banks (every run starts from them);
2. pick k utterances per class of F (seeded; the first k of one shuffle, so k=1's picks are among
   k=2's), never all of a class: at least one utterance of each class is left to be queried;
3. confirm them one at a time as the app does: rank the split's videos for the utterance with
   the banks as they are, take the best-ranked video of its class, and pass the pair to
   ``FeatureMemoryNetwork.confirm_match`` (what ``Retriever.confirm`` calls);
4. rank the split's videos for F's *other* utterances (speech→video) and take R@1 and mAP; the
   same utterances ranked with the shipped banks are the no-update figure (k = 0).

Each rule of storing confirmations (``FMNConfig.memory_confirm``) is measured on the same picks,
without and with the voice's offset learned from the confirmations (``PairedMemory.learn_voice``,
as ``Retriever.confirm`` does for a user's own speech: the remaining utterances are then read with
the offset taken away). A run's name is its rule, with ``+voice`` when the voice was learned.

Beside the figures, each run says what one more kind of readout could add at most: R@1 of the
nearest confirmed utterance alone (1-NN over the voice's confirmed utterances in the common space,
the exemplar readouts DESIGN §2.6 tried), R@1 where *either* the ranking or that neighbour is
right (a ceiling for any rule that chooses between the two per query), and how many of the
ranking's misses have their class among its best 3 classes (a class ranked by its best video: what
a re-ranking of the top could reach).
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmn_core.errors import FmnError
from fmn_core.eval.evaluate import Progress, encode_split, speech_groups
from fmn_core.eval.metrics import retrieval_metrics
from fmn_core.eval.scoring import pair_scores
from fmn_core.inference import FMNModel
from fmn_core.manifest import read_manifest
from fmn_core.models.fmn import FeatureMemoryNetwork
from fmn_core.models.memory import CONFIRM_RULES
from fmn_core.splits import family_of

VOICE = "+voice"  # a run's name suffix: confirmations also learned the voice's offset


def run_names(rules: Sequence[str], voice: Sequence[bool] = (False, True)) -> list[str]:
    """Every measured way of confirming: each rule, without and (``+voice``) with the voice learned."""
    return [rule + (VOICE if v else "") for rule in rules for v in voice]


DEFAULT_KS: tuple[int, ...] = (1, 2, 5)


@dataclass
class AdaptCell:
    """One family, one k, one rule: a figure per seed."""

    family: str
    k: int  # confirmations asked for per class (fewer where a class has at most k utterances)
    rule: str  # how confirmations were stored ('paper', ...), with '+voice' when the voice's offset was learned
    r1: list[float] = field(default_factory=list)  # speech->video R@1 on the remaining utterances, after
    map: list[float] = field(default_factory=list)  # mAP, after
    r1_before: list[float] = field(default_factory=list)  # the same utterances with the shipped banks (k = 0)
    map_before: list[float] = field(default_factory=list)
    n_queries: list[int] = field(default_factory=list)  # remaining utterances scored
    n_confirmed: list[int] = field(default_factory=list)  # confirmations made
    n_changes: list[int] = field(default_factory=list)  # bank changes they made (appends, averages, replaces)
    r1_exemplar: list[float] = field(default_factory=list)  # the nearest confirmed utterance is of the query's class
    r1_either: list[float] = field(default_factory=list)  # the ranking's first or that neighbour is right
    misses_top3: list[float] = field(default_factory=list)  # of the ranking's misses: class among its best 3

    @staticmethod
    def _stat(values: Sequence[float]) -> tuple[float, float]:
        """Mean and sd over the seeds where it is defined (a seed whose ranking missed nothing has no misses)."""
        defined = [v for v in values if not np.isnan(v)]
        return (float(np.mean(defined)), float(np.std(defined))) if defined else (float("nan"), float("nan"))

    def summary(self) -> dict[str, Any]:
        """Means and spreads (standard deviation over seeds) of each figure."""
        out: dict[str, Any] = {"family": self.family, "k": self.k, "rule": self.rule, "seeds": len(self.r1)}
        for name in ("r1", "map", "r1_before", "map_before", "r1_exemplar", "r1_either", "misses_top3"):
            out[name], out[name + "_sd"] = self._stat(getattr(self, name))
        out["n_queries"] = float(np.mean(self.n_queries))
        out["n_confirmed"] = float(np.mean(self.n_confirmed))
        return out


@dataclass
class AdaptationReport:
    """Every cell, with what each family is (size, heard in training or not)."""

    split: str
    rules: list[str]
    ks: list[int]
    seeds: int
    families: dict[str, dict[str, Any]]  # family -> {'utterances': n, 'classes': n, 'seen': bool | None}
    cells: list[AdaptCell]

    def cell(self, family: str, k: int, rule: str) -> AdaptCell:
        for c in self.cells:
            if (c.family, c.k, c.rule) == (family, k, rule):
                return c
        raise KeyError((family, k, rule))

    def table(self) -> str:
        """family × k: R@1 and mAP (mean ± sd over seeds) with no update and after each rule's confirmations."""
        head = ["voice family", "k", "n"]
        head += ["R@1 k=0", *(f"R@1 {r}" for r in self.rules), "mAP k=0", *(f"mAP {r}" for r in self.rules)]
        lines = [head]
        for fam, info in self.families.items():
            seen = {True: "seen", False: "unseen", None: "?"}[info.get("seen")]
            for k in self.ks:
                cells = [self.cell(fam, k, r).summary() for r in self.rules]
                base = cells[0]
                row = [f"{fam} ({seen})", str(k), f"{base['n_queries']:.0f}"]
                row += [_pm(base["r1_before"], base["r1_before_sd"]), *(_pm(c["r1"], c["r1_sd"]) for c in cells)]
                row += [_pm(base["map_before"], base["map_before_sd"]), *(_pm(c["map"], c["map_sd"]) for c in cells)]
                lines.append(row)
        return _columns(lines)

    def ceiling_table(self) -> str:
        """family × k × rule: R@1 after, of the nearest confirmed utterance, of either, the misses' best 3."""
        lines = [["voice family", "k", "rule", "R@1 after", "R@1 nearest confirmed", "R@1 either", "misses in best 3"]]
        for fam in self.families:
            for k in self.ks:
                for rule in self.rules:
                    c = self.cell(fam, k, rule).summary()
                    lines.append([fam, str(k), rule, *(_pm(c[n], c[n + "_sd"]) for n in
                                                       ("r1", "r1_exemplar", "r1_either", "misses_top3"))])  # fmt: skip
        return _columns(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "rules": self.rules,
            "ks": self.ks,
            "seeds": self.seeds,
            "families": self.families,
            "cells": [asdict(c) | {"summary": c.summary()} for c in self.cells],
        }

    def write_json(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False))


def _pm(mean: float, sd: float) -> str:
    return f"{100 * mean:5.1f}±{100 * sd:4.1f}"


def _columns(lines: list[list[str]]) -> str:
    """Rows of cells as aligned text: the first column left, the others right, a rule under the head."""
    widths = [max(len(r[i]) for r in lines) for i in range(len(lines[0]))]
    fmt = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in lines
    ]
    return "\n".join([fmt[0], "-" * len(fmt[0]), *fmt[1:]])


def pick_confirmations(labels: Sequence[str], k: int, seed: int, family: str) -> list[int]:
    """Positions (into ``labels``) of the utterances to confirm: k per class, at least one left per class.

    Deterministic in ``(seed, family)``: one shuffle per class, of which the first k are taken,
    so the picks of a smaller k are among those of a larger one. Returned in round-robin class
    order (a user confirms a result of each class before a second of any).
    """
    by_class: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_class.setdefault(lab, []).append(i)
    picks: list[list[int]] = []
    for lab in sorted(by_class):
        members = list(by_class[lab])
        rng = np.random.default_rng([seed, zlib.crc32(family.encode("utf-8")), zlib.crc32(lab.encode("utf-8"))])
        rng.shuffle(members)
        picks.append(members[: min(k, len(members) - 1)])
    return [p[j] for j in range(max((len(p) for p in picks), default=0)) for p in picks if j < len(p)]


@contextmanager
def confirm_rule(net: FeatureMemoryNetwork, rule: str) -> Iterator[None]:
    """Store confirmations by ``rule`` (a :func:`run_names` name) within the block, and put the
    banks, the rule and the voice setting back after it."""
    memory = net.memory
    before, snapshot = (memory.confirm_rule, memory.learn_voice), memory.snapshot()
    memory.confirm_rule, memory.learn_voice = rule.removesuffix(VOICE), rule.endswith(VOICE)
    try:
        yield
    finally:
        memory.confirm_rule, memory.learn_voice = before
        memory.restore(snapshot)


def best_correct_video(net: FeatureMemoryNetwork, v_raw: torch.Tensor, a: torch.Tensor, correct: np.ndarray) -> int:
    """The best-ranked video of the utterance's class, with the banks as they are (ties: the earlier video)."""
    scores = pair_scores(net, v_raw, a[None])[:, 0]
    candidates = np.flatnonzero(correct)
    return int(candidates[np.argmax(scores[candidates])])


def adapt_features(
    net: FeatureMemoryNetwork,
    v_raw: torch.Tensor,
    video_labels: Sequence[str],
    a_raw: torch.Tensor,
    speech_labels: Sequence[str],
    families: Sequence[str],
    ks: Sequence[int] = DEFAULT_KS,
    seeds: int = 3,
    rules: Sequence[str] = tuple(run_names(CONFIRM_RULES)),
    only: Sequence[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[AdaptCell]:
    """The protocol of the module docstring on encoded features.

    Args:
        net: the network; its banks are the starting point of every run and are as they were after.
        v_raw: ``(Nv, Dv)`` raw features of the gallery videos.
        video_labels: ``(Nv,)`` their classes.
        a_raw: ``(Na, Da)`` raw features of the utterances.
        speech_labels: ``(Na,)`` their classes.
        families: ``(Na,)`` the voice family of each utterance.
        ks: confirmations per class (0: none, the shipped ranking).
        seeds: repetitions with different picks (seeds 0 .. seeds-1).
        rules: ways of confirming to measure (:func:`run_names`: a ``FMNConfig.memory_confirm``
            rule, with ``+voice`` to learn the voice's offset too).
        only: the families to measure (default: all).
        progress: ``progress(what, done, total)``.

    Returns:
        One cell per family, k and rule.
    """
    v_labels, a_labels, fams = np.asarray(video_labels), np.asarray(speech_labels), np.asarray(families)
    base_scores = pair_scores(net, v_raw, a_raw)  # (Nv, Na), shipped banks
    wanted = sorted(set(fams.tolist())) if only is None else list(only)
    cells: list[AdaptCell] = []
    total, done = len(wanted) * len(ks) * len(rules) * seeds, 0
    for fam in wanted:
        members = np.flatnonzero((fams == fam) & np.isin(a_labels, v_labels))  # queries with a relevant video
        for k in ks:
            for rule in rules:
                cell = AdaptCell(fam, k, rule)
                for seed in range(seeds):
                    _run(net, v_raw, v_labels, a_raw, a_labels, members, k, seed, fam, rule, base_scores, cell)
                    done += 1
                    if progress:
                        progress("adaptation runs", done, total)
                cells.append(cell)
    return cells


def _run(
    net: FeatureMemoryNetwork,
    v_raw: torch.Tensor,
    v_labels: np.ndarray,
    a_raw: torch.Tensor,
    a_labels: np.ndarray,
    members: np.ndarray,
    k: int,
    seed: int,
    family: str,
    rule: str,
    base_scores: np.ndarray,
    cell: AdaptCell,
) -> None:
    """One family, k, seed and rule: confirm, score the rest, append the figures to ``cell``."""
    picked = members[pick_confirmations(a_labels[members].tolist(), k, seed, family)]
    rest = np.setdiff1d(members, picked)
    changes = 0
    with confirm_rule(net, rule):
        for i in picked.tolist():
            j = best_correct_video(net, v_raw, net.memory.adjust_voice(a_raw[i]), v_labels == a_labels[i])
            changes += len(net.confirm_match(v_raw[j][None], a_raw[i][None], voice=True))
        rest_raw = net.memory.adjust_voice(a_raw[rest])  # as the retriever reads the user's later queries
        after = pair_scores(net, v_raw, rest_raw) if len(rest) else np.zeros((len(v_raw), 0))
        nearest = _nearest_confirmed(net, net.memory.adjust_voice(a_raw[picked]), rest_raw)
    _ceilings(after, v_labels, a_labels[rest], a_labels[picked][nearest] if nearest is not None else None, cell)
    for scores, r1, mean_ap in ((after, cell.r1, cell.map), (base_scores[:, rest], cell.r1_before, cell.map_before)):
        if len(rest):
            m = retrieval_metrics(scores.T, a_labels[rest], v_labels, ks=(1,))
            r1.append(m.recall_at[1])
            mean_ap.append(m.map)
        else:
            r1.append(float("nan"))
            mean_ap.append(float("nan"))
    cell.n_queries.append(len(rest))
    cell.n_confirmed.append(len(picked))
    cell.n_changes.append(changes)


@torch.no_grad()
def _nearest_confirmed(net: FeatureMemoryNetwork, confirmed: torch.Tensor, queries: torch.Tensor) -> np.ndarray | None:
    """For each query, the position (into ``confirmed``) of the confirmed utterance nearest it in the
    common space; None when nothing was confirmed or nothing is left to query."""
    if not len(confirmed) or not len(queries):
        return None
    net.eval()
    device = next(net.parameters()).device
    sims = net.project_speech(queries.to(device)) @ net.project_speech(confirmed.to(device)).T
    return sims.argmax(dim=1).cpu().numpy()


def _ceilings(
    after: np.ndarray, v_labels: np.ndarray, labels: np.ndarray, neighbour: np.ndarray | None, cell: AdaptCell
) -> None:
    """Append what other readouts could reach to ``cell`` (the module docstring; NaN where undefined)."""
    if not len(labels):
        cell.r1_exemplar.append(float("nan"))
        cell.r1_either.append(float("nan"))
        cell.misses_top3.append(float("nan"))
        return
    hit = v_labels[np.argmax(after, axis=0)] == labels
    classes = np.unique(v_labels)
    best = np.stack([after[v_labels == c].max(axis=0) for c in classes])  # (C, n): each class's best video
    own = best[np.searchsorted(classes, labels), np.arange(len(labels))]
    rank = (best > own[None]).sum(axis=0)  # classes ranked above the query's own
    cell.misses_top3.append(float((rank[~hit] < 3).mean()) if (~hit).any() else float("nan"))
    if neighbour is None:
        cell.r1_exemplar.append(float("nan"))
        cell.r1_either.append(float(hit.mean()))
        return
    right = neighbour == labels
    cell.r1_exemplar.append(float(right.mean()))
    cell.r1_either.append(float((hit | right).mean()))


def measure_adaptation(
    model: FMNModel,
    manifest_path: str | os.PathLike[str],
    split: str = "test",
    ks: Sequence[int] = DEFAULT_KS,
    seeds: int = 3,
    rules: Sequence[str] = tuple(run_names(CONFIRM_RULES)),
    families: Sequence[str] | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> AdaptationReport:
    """Encode one split of a manifest once and run the protocol on every voice family of its speech.

    Args:
        model: the model (any front end); its banks are left as they were.
        manifest_path: a manifest with a ``split`` column.
        split: the split whose videos are the gallery and whose speech is confirmed and queried.
        ks, seeds, rules: as in :func:`adapt_features`.
        families: the families to measure (default: every family of the split's speech).
        jobs: decoding processes.
        progress: progress(what, done, total).

    Raises:
        FmnError: the split has no decodable video or speech, or an unknown family or rule is asked for.
    """
    known = run_names(CONFIRM_RULES)
    unknown = sorted(set(rules) - set(known))
    if unknown:
        raise FmnError(f"unknown confirmation rule(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if any(k < 0 for k in ks):
        raise FmnError(f"k must not be negative, got {list(ks)}")
    manifest = read_manifest(manifest_path)
    data = encode_split(model, manifest, split, jobs, progress)
    if not data.video_rows or not data.speech_rows:
        raise FmnError(f"{manifest_path}: split {split!r} has no decodable video or speech")
    fams = [family_of(r) for r in data.speech_rows]
    missing = sorted(set(families or ()) - set(fams))
    if missing:
        raise FmnError(f"split {split!r} has no speech of famil{'y' if len(missing) == 1 else 'ies'} {missing}")
    seen = speech_groups(manifest, data.speech_rows).family_seen
    wanted = sorted(set(fams)) if families is None else list(families)
    cells = adapt_features(
        model.net, data.v_raw, data.video_labels.tolist(), data.a_raw, data.speech_labels.tolist(), fams,
        ks, seeds, rules, wanted, progress,
    )  # fmt: skip
    info = {
        f: {
            "utterances": fams.count(f),
            "classes": len({r.label for r, g in zip(data.speech_rows, fams, strict=True) if g == f}),
            "seen": seen.get(f),
        }
        for f in wanted
    }
    return AdaptationReport(split, list(rules), list(ks), seeds, info, cells)
