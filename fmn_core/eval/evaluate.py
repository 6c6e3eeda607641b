"""`fmn eval`: retrieval quality of a model on a manifest split, beside its ablations, baselines and chance.

Queries and gallery come only from the evaluated split (the test split by default), in both
directions: every test speech clip queries the test videos and every test video queries the test
speech. Relevance is label equality (DESIGN §3). Figures are given over all speech and per
language; the shipped ranking's also per speaker, per voice family and per phrasing, families and
phrasings marked seen or unseen in the manifest's training split (what the model generalises to).
Baselines are fitted on the *training* split's frozen features (I3D features of the model's own
stage 1, with time-pooled MFCC statistics or the model's own speech features) and scored on the
same test items.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmn_core.errors import FmnError
from fmn_core.eval.baselines import make_baseline
from fmn_core.eval.metrics import (
    DEFAULT_KS,
    RetrievalMetrics,
    bidirectional_metrics,
    bidirectional_random,
    format_table,
    metrics_by_group,
)
from fmn_core.eval.scoring import pair_scores
from fmn_core.features.audio import normalize_utterance
from fmn_core.features.video import normalize_clip
from fmn_core.inference import FMNModel
from fmn_core.manifest import Manifest, ManifestRow, read_manifest
from fmn_core.splits import family_of, speaker_family, speaker_of
from fmn_core.training.data import Failure, decode_speech, decode_videos

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (what, done, total)

# How S is made in each FMN row: the ablations of DESIGN §2.5.
FMN_VARIANTS = {
    "learned": "FMN, learned S(S1, Max)",
    "product": "FMN, paper S = S1 * Max",
    "ratio": "FMN, paper S = S1 / Max",
    "none": "FMN, no memory (S = S1)",
}


def variant_name(combination: str, readout: str = "max") -> str:
    """The table's name for an FMN ranking; a soft memory readout is named ('max' is the paper's)."""
    name = FMN_VARIANTS[combination]
    return name + (", soft Max" if readout == "soft" and combination != "none" else "")


@dataclass
class EncodedSplit:
    """The decodable items of one split with their features."""

    video_rows: list[ManifestRow]
    v_raw: torch.Tensor  # (Nv, Dv) frozen I3D features
    speech_rows: list[ManifestRow]
    a_raw: torch.Tensor  # (Na, Da) the model's speech features
    a_pooled: np.ndarray  # (Na, 2F) mean and std over time of the MFCC frames (the baselines' speech features)
    failures: list[Failure]

    @property
    def video_labels(self) -> np.ndarray:
        return np.array([r.label for r in self.video_rows])

    @property
    def speech_labels(self) -> np.ndarray:
        return np.array([r.label for r in self.speech_rows])


ByGroup = dict[str, dict[str, RetrievalMetrics]]  # group -> direction -> metrics


@dataclass
class EvalReport:
    """Metrics by method, then scope ('all' or a language), then direction; the shipped ranking's by group."""

    split: str
    results: dict[str, dict[str, dict[str, RetrievalMetrics]]]
    shipped: str  # the method the model ranks with by default
    counts: dict[str, int]
    voices: dict[str, Any]  # what of the split the model may know already (held_out_check)
    failures: list[Failure] = field(default_factory=list)
    by_speaker: ByGroup = field(default_factory=dict)  # "who (language)"
    by_family: ByGroup = field(default_factory=dict)  # voice family (voice_family)
    family_seen: dict[str, bool] = field(default_factory=dict)  # family -> heard in the training split
    by_phrasing: ByGroup = field(default_factory=dict)  # 'seen' / 'unseen' phrasing in the training split
    phrasing_basis: str = ""  # what a phrasing is: 'template', 'text', or '' (the manifest cannot tell)
    by_family_phrasing: ByGroup = field(default_factory=dict)  # "lang: family seen|unseen, phrasing seen|unseen"

    def table(self, scope: str = "all", fractions: bool = True) -> str:
        """The plain-text table of one scope."""
        rows = {m: by_scope[scope] for m, by_scope in self.results.items() if scope in by_scope}
        return format_table(rows, fractions=fractions)

    def speaker_table(self) -> str:
        """The shipped ranking per speaker ("who (language)"): which voices it fails on."""
        return format_table(self.by_speaker, name="speaker", utterances=True)

    def family_table(self) -> str:
        """The shipped ranking per voice family, each marked seen or unseen in training."""
        rows = {f"{f} ({_seen(self.family_seen.get(f, False))})": m for f, m in self.by_family.items()}
        return format_table(rows, name="voice family", utterances=True)

    def phrasing_table(self) -> str:
        """The shipped ranking on phrasings heard in training and on new ones."""
        return format_table(self.by_phrasing, name=f"phrasing ({self.phrasing_basis})", utterances=True)

    def family_phrasing_table(self) -> str:
        """The shipped ranking per language × family seen or not × phrasing seen or not."""
        return format_table(self.by_family_phrasing, name="language: family, phrasing", utterances=True)

    def scopes(self) -> list[str]:
        return sorted({s for by_scope in self.results.values() for s in by_scope}, key=lambda s: (s != "all", s))

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "shipped": self.shipped,
            "counts": self.counts,
            "voices": self.voices,
            "failures": [f.__dict__ for f in self.failures],
            "results": {
                m: {s: {d: met.to_dict() for d, met in by_dir.items()} for s, by_dir in by_scope.items()}
                for m, by_scope in self.results.items()
            },
            "by_speaker": _groups_dict(self.by_speaker),
            "by_family": _groups_dict(self.by_family),
            "family_seen": self.family_seen,
            "by_phrasing": _groups_dict(self.by_phrasing),
            "phrasing_basis": self.phrasing_basis,
            "by_family_phrasing": _groups_dict(self.by_family_phrasing),
        }

    def write_json(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False))


def _groups_dict(groups: ByGroup) -> dict[str, dict[str, dict[str, Any]]]:
    return {g: {d: met.to_dict() for d, met in by_dir.items()} for g, by_dir in groups.items()}


def _seen(seen: bool) -> str:
    return "seen" if seen else "unseen"


def voice_family(row: ManifestRow) -> str:
    """The voice family of a speech row: its ``family`` column, else its speaker's kind (``speaker_family``)."""
    return family_of(row) or speaker_family(speaker_of(row))


def normalise_text(text: str) -> str:
    """A transcript as phrasings are compared: NFKC, case-folded, punctuation dropped, single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join("".join(" " if unicodedata.category(c).startswith("P") else c for c in text).split())


def phrasing_of(speech_rows: Sequence[ManifestRow]) -> tuple[str, Callable[[ManifestRow], str]]:
    """How a manifest tells phrasings apart: its ``template`` column, else its normalised ``text``.

    Returns:
        The basis ('template', 'text', or '' when the manifest has neither) and the key of a row
        ('' for a row that has none).
    """
    if any("template" in r.extra for r in speech_rows):
        return "template", lambda r: r.extra.get("template", "")
    if any(r.text for r in speech_rows):
        return "text", lambda r: normalise_text(r.text)
    return "", lambda r: ""


@dataclass
class SpeechGroups:
    """How each evaluated utterance stands to the manifest's training speech (one entry per utterance)."""

    family: list[str]  # its voice family ('' when unknown)
    family_seen: dict[str, bool]  # family -> some training utterance has it
    phrasing: list[str]  # 'seen' or 'unseen' (its phrasing among the training utterances'), '' when unknown
    phrasing_basis: str  # 'template', 'text' or ''
    family_phrasing: list[str]  # "lang: family seen|unseen, phrasing seen|unseen", '' when either is unknown


def speech_groups(manifest: Manifest, rows: Sequence[ManifestRow]) -> SpeechGroups:
    """Group evaluated speech rows by voice family and by whether training heard their family and phrasing.

    A family is seen when some training speech row has it (:func:`voice_family`). A phrasing is seen
    when its key (:func:`phrasing_of`: the template, else the normalised text) is that of some
    training speech row.
    """
    train = manifest.of("speech", "train")
    families = [voice_family(r) for r in rows]
    trained_families = {voice_family(r) for r in train}
    family_seen = {f: f in trained_families for f in sorted(set(families) - {""})}
    basis, key = phrasing_of(manifest.of("speech"))
    trained_phrasings = {key(r) for r in train} - {""}
    phrasing = [_seen(key(r) in trained_phrasings) if key(r) else "" for r in rows]
    cross = [
        f"{r.lang + ': ' if r.lang else ''}family {_seen(family_seen[f])}, phrasing {p}" if f and p else ""
        for r, f, p in zip(rows, families, phrasing, strict=True)
    ]
    return SpeechGroups(families, family_seen, phrasing, basis, cross)


def encode_split(
    model: FMNModel, manifest: Manifest, split: str, jobs: int | None = None, progress: Progress | None = None
) -> EncodedSplit:
    """Decode and encode every video and speech row of ``split`` (unreadable rows become failures)."""

    def bar(what: str) -> Callable[[int, int], None] | None:
        return (lambda done, total: progress(what, done, total)) if progress else None

    videos = decode_videos(manifest, manifest.of("video", split), model.video_frontend, jobs, bar(f"{split} videos"))
    clips = torch.stack([normalize_clip(c) for c in videos.items]) if videos.items else torch.zeros(0)
    v_raw = model.video_raw_from_clips(clips) if videos.items else torch.zeros(0, model.cfg.video.feature_dim)
    # Raw MFCCs once: the baselines' hand-made features are their mean and std over time (those of
    # normalised MFCCs would be all 0 and 1), and the model's input is the same frames normalised.
    raw_fe = dataclasses.replace(model.speech_frontend, utterance_norm=False)
    speech = decode_speech(manifest, manifest.of("speech", split), raw_fe, jobs, bar(f"{split} speech"))
    normed = model.speech_frontend.utterance_norm
    a_raw = model.speech_raw_from_mfcc([normalize_utterance(s) if normed else s for s in speech.items])
    pooled = (
        np.stack([torch.cat([s.mean(0), s.std(0)]).numpy() for s in speech.items]) if speech.items else np.zeros((0, 1))
    )
    return EncodedSplit(videos.rows, v_raw, speech.rows, a_raw, pooled, videos.failures + speech.failures)


def _by_scope(scores: np.ndarray, data: EncodedSplit, ks: Sequence[int]) -> dict[str, dict[str, RetrievalMetrics]]:
    """Both directions over all speech, then over each language's speech."""
    out = {"all": bidirectional_metrics(scores, data.video_labels, data.speech_labels, ks)}
    return out | _by_group(scores, data, ks, [r.lang or "" for r in data.speech_rows])


def _by_group(
    scores: np.ndarray, data: EncodedSplit, ks: Sequence[int], groups: Sequence[str]
) -> dict[str, dict[str, RetrievalMetrics]]:
    """Both directions over each group of the speech (``metrics_by_group``).

    Speech→video: the group's utterances query all the videos. Video→speech: every video ranks
    only the group's utterances, its relevant items being the group's utterances of its class.
    """
    return metrics_by_group(scores, data.video_labels, data.speech_labels, groups, ks)


def _random_by_scope(data: EncodedSplit, ks: Sequence[int]) -> dict[str, dict[str, RetrievalMetrics]]:
    out = {"all": bidirectional_random(data.video_labels, data.speech_labels, ks)}
    langs = np.array([r.lang or "" for r in data.speech_rows])
    for lang in sorted(set(langs.tolist()) - {""}):
        out[lang] = bidirectional_random(data.video_labels, data.speech_labels[langs == lang], ks)
    return out


def held_out_check(model: FMNModel, manifest: Manifest, data: EncodedSplit, split: str) -> dict[str, Any]:
    """What of the evaluated split the model may already know (all should be empty).

    The manifest's own training split is one source; the model's record of what it trained and
    validated on is the other, and the one that catches a test split taken from a different
    manifest (another corpus, or the same corpus split another way).
    """
    seen = model.extra.get("training", {}).get("seen", {})
    train = {speaker_of(r) for r in manifest.of("speech", "train")} | set(seen.get("speakers", []))
    tested = {speaker_of(r) for r in data.speech_rows} - {""}
    seen_ids = set(seen.get("ids", []))
    return {
        "evaluated_speakers": len(tested),
        "training_speakers": len(train - {""}),
        "shared": sorted(train & tested),
        "seen_items": sum(r.id in seen_ids for r in data.video_rows + data.speech_rows),
        "model_has_record": bool(seen),
        "split": split,
    }


def evaluate(
    model: FMNModel,
    manifest_path: str | os.PathLike[str],
    split: str = "test",
    baselines: Sequence[str] = (),
    ablations: bool = False,
    ks: Sequence[int] = DEFAULT_KS,
    jobs: int | None = None,
    progress: Progress | None = None,
    seed: int = 0,
) -> EvalReport:
    """Evaluate ``model`` on one split of a manifest.

    Args:
        model: the model to rank with.
        manifest_path: a manifest with a ``split`` column.
        split: the split whose items are queries and gallery ('test': never seen in training).
        baselines: names from ``eval.baselines.BASELINES``, fitted on the training split.
        ablations: add the FMN's other ways of making S (no memory, the paper's two readings).
        ks: R@k cut-offs.
        jobs: decoding processes.
        progress: progress(what, done, total).
        seed: the baselines' seed.

    Raises:
        FmnError: the split has no decodable video or speech, or no label in common.
    """
    manifest = read_manifest(manifest_path)
    data = encode_split(model, manifest, split, jobs, progress)
    _check_evaluable(data, manifest_path, split)
    readout = model.cfg.memory_readout
    shipped = variant_name(model.cfg.combination, readout) + " (shipped)"
    shipped_scores = pair_scores(model.net, data.v_raw, data.a_raw)
    results: dict[str, dict[str, dict[str, RetrievalMetrics]]] = {shipped: _by_scope(shipped_scores, data, ks)}
    speakers = [f"{speaker_of(r)} ({r.lang})" if r.lang else speaker_of(r) for r in data.speech_rows]
    by_speaker = _by_group(shipped_scores, data, ks, speakers)
    if ablations:
        results |= _ablation_results(model, data, ks)
    failures = list(data.failures)
    if baselines:
        train = encode_split(model, manifest, "train", jobs, progress)
        failures += train.failures
        results |= _baseline_results(model, train, data, baselines, ks, progress, seed)
    results["random ranking (expected)"] = _random_by_scope(data, ks)
    counts = {"videos": len(data.video_rows), "speech": len(data.speech_rows), "failed": len(failures)}
    held_out = held_out_check(model, manifest, data, split)
    groups = speech_groups(manifest, data.speech_rows)
    return EvalReport(
        split, results, shipped, counts, held_out, failures, by_speaker,
        by_family=_by_group(shipped_scores, data, ks, groups.family),
        family_seen=groups.family_seen,
        by_phrasing=_by_group(shipped_scores, data, ks, groups.phrasing),
        phrasing_basis=groups.phrasing_basis,
        by_family_phrasing=_by_group(shipped_scores, data, ks, groups.family_phrasing),
    )  # fmt: skip


def _check_evaluable(data: EncodedSplit, manifest_path: str | os.PathLike[str], split: str) -> None:
    """Raise FmnError when the split has no decodable video or speech, or no label in common."""
    if not data.video_rows or not data.speech_rows:
        raise FmnError(
            f"{manifest_path}: split {split!r} has no decodable {'video' if not data.video_rows else 'speech'}"
        )
    if not set(data.video_labels.tolist()) & set(data.speech_labels.tolist()):
        raise FmnError(f"{manifest_path}: split {split!r} shares no label between its videos and its speech")


def _ablation_results(
    model: FMNModel, data: EncodedSplit, ks: Sequence[int]
) -> dict[str, dict[str, dict[str, RetrievalMetrics]]]:
    """The FMN's other ways of making S, and its banks read the paper's way when it reads them otherwise."""
    readout = model.cfg.memory_readout
    results = {}
    learned = model.extra.get("training", {}).get("memory", {}).get("learned_combiner")
    for combination in FMN_VARIANTS:
        if combination == model.cfg.combination or (combination == "learned" and learned is None):
            continue
        scores = pair_scores(model.net, data.v_raw, data.a_raw, combination, learned)
        results[variant_name(combination, readout)] = _by_scope(scores, data, ks)
    if readout != "max":  # the same banks read the paper's way
        scores = pair_scores(model.net, data.v_raw, data.a_raw, "product", readout="max")
        results[variant_name("product")] = _by_scope(scores, data, ks)
    return results


def _baseline_results(
    model: FMNModel,
    train: EncodedSplit,
    data: EncodedSplit,
    baselines: Sequence[str],
    ks: Sequence[int],
    progress: Progress | None,
    seed: int,
) -> dict[str, dict[str, dict[str, RetrievalMetrics]]]:
    """Each baseline fitted on the training split's features and scored on ``data``, with two speech inputs."""
    # Two speech inputs: the front end's pooled frames (nothing trained by us: MFCCs as the
    # paper's baselines see, or a frozen Whisper encoder's) and the FMN's own trained Bi-LSTM
    # features (a stronger, more demanding comparison).
    kind = model.speech_frontend.kind
    speech_inputs = {
        f"{'MFCC' if kind == 'mfcc' else kind} stats": (train.a_pooled, data.a_pooled),
        "FMN speech features": (train.a_raw.numpy(), data.a_raw.numpy()),
    }
    results = {}
    for name in baselines:
        for inputs, (a_train, a_test) in speech_inputs.items():
            if progress:
                progress(f"baseline {name} on {inputs}", 0, 1)
            try:
                baseline = make_baseline(name, seed=seed)
            except ValueError as e:
                raise FmnError(str(e)) from e
            baseline.fit(train.v_raw.numpy(), a_train, train.video_labels, train.speech_labels)
            scores = baseline.similarity(data.v_raw.numpy(), a_test)
            results[f"{name.upper()} (I3D + {inputs})"] = _by_scope(scores, data, ks)
            if progress:
                progress(f"baseline {name} on {inputs}", 1, 1)
    return results
