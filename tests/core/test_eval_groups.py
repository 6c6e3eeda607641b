"""`fmn eval` by group: voice families and phrasings, seen or unseen in training, and their fallbacks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fmn_core.cli import main
from fmn_core.eval.evaluate import (
    EncodedSplit,
    EvalReport,
    _by_group,
    evaluate,
    normalise_text,
    speech_groups,
    voice_family,
)
from fmn_core.eval.metrics import bidirectional_metrics, format_table, n_utterances
from fmn_core.inference import FMNModel
from fmn_core.manifest import Manifest, ManifestRow, read_manifest, write_manifest
from fmn_core.models import FMNConfig, create_fmn
from fmn_core.models.speech import SpeechEncoderConfig


def _speech(
    id: str, split: str, label: str, family: str = "", template: str = "", lang: str = "en", **kw: str
) -> ManifestRow:
    extra = {k: v for k, v in (("family", family), ("template", template)) if v}
    return ManifestRow(id, "speech", f"{id}.wav", label, split, lang=lang, extra=extra, **kw)


# Training hears espeak and flite saying templates cut/en/01 and stir/en/01.
TRAIN = [
    _speech("t1", "train", "cut", "espeak", "cut/en/01", voice="m1"),
    _speech("t2", "train", "stir", "flite", "stir/en/01", voice="slt"),
    _speech("t3", "val", "cut", "piper", "cut/en/02", voice="amy"),  # validation: not training
]
# Test: a known family on a known and a new phrasing, an unknown family likewise, and Chinese.
TEST = [
    _speech("a", "test", "cut", "espeak", "cut/en/01", voice="m2"),  # family seen, phrasing seen
    _speech("b", "test", "stir", "espeak", "stir/en/02", voice="m2"),  # family seen, phrasing unseen
    _speech("c", "test", "cut", "piper", "cut/en/01", voice="amy"),  # family unseen (only in val), phrasing seen
    _speech("d", "test", "stir", "piper", "cut/en/02", voice="amy"),  # family unseen, phrasing unseen (only val)
    _speech("e", "test", "cut", "espeak-zh-f", "cut/zh/01", lang="zh", voice="zh+f1"),
]
VIDEOS = [ManifestRow(f"v{i}", "video", f"v{i}.mp4", label, "test") for i, label in enumerate(["cut", "stir"])]


def _manifest(rows: list[ManifestRow]) -> Manifest:
    return Manifest(rows, Path("."))


def test_families_and_phrasings_are_seen_when_the_training_split_has_them() -> None:
    groups = speech_groups(_manifest(TRAIN + TEST + VIDEOS), TEST)
    assert groups.family == ["espeak", "espeak", "piper", "piper", "espeak-zh-f"]
    assert groups.family_seen == {"espeak": True, "espeak-zh-f": False, "piper": False}
    assert groups.phrasing_basis == "template"
    assert groups.phrasing == ["seen", "unseen", "seen", "unseen", "unseen"]
    assert groups.family_phrasing == [
        "en: family seen, phrasing seen",
        "en: family seen, phrasing unseen",
        "en: family unseen, phrasing seen",
        "en: family unseen, phrasing unseen",
        "zh: family unseen, phrasing unseen",
    ]


def test_without_a_family_column_the_family_is_the_speakers_kind() -> None:
    rows = [dataclasses.replace(r, extra={k: v for k, v in r.extra.items() if k != "family"}) for r in TRAIN + TEST]
    rows[0].extra["speaker"] = "klatt2"  # the speaker column wins over the voice, and loses its number
    groups = speech_groups(_manifest(rows), rows[len(TRAIN) :])
    assert voice_family(rows[0]) == "klatt"
    assert groups.family == ["m", "m", "amy", "amy", "zh+f"]
    assert groups.family_seen == {"amy": False, "m": False, "zh+f": False}  # training's voices are klatt2 and slt


def test_without_a_template_column_phrasings_are_compared_by_normalised_text() -> None:
    assert (
        normalise_text("  Cut the ONION, please! ") == normalise_text("cut the onion please") == "cut the onion please"
    )
    assert normalise_text("切洋葱。") == "切洋葱"
    train = [
        _speech("t1", "train", "cut", text="Cut the onion."),
        _speech("t2", "train", "cut"),  # no text: no phrasing, seen by nobody
    ]
    test = [
        _speech("a", "test", "cut", text="cut the onion"),
        _speech("b", "test", "cut", text="Slice the onion."),
        _speech("c", "test", "cut"),
    ]
    groups = speech_groups(_manifest(train + test), test)
    assert groups.phrasing_basis == "text" and groups.phrasing == ["seen", "unseen", ""]
    assert groups.family == ["", "", ""] and groups.family_phrasing == ["", "", ""]  # no family, no voice


def test_without_template_or_text_the_phrasing_section_is_empty() -> None:
    rows = [_speech("t1", "train", "cut", "espeak"), _speech("a", "test", "cut", "espeak")]
    groups = speech_groups(_manifest(rows), rows[1:])
    assert groups.phrasing_basis == "" and groups.phrasing == [""] and groups.family_phrasing == [""]
    data = _encoded(rows[1:], np.zeros((2, 1)))
    assert _by_group(np.zeros((2, 1)), data, (1,), groups.phrasing) == {}


def _encoded(speech_rows: list[ManifestRow], scores: np.ndarray) -> EncodedSplit:
    n_v, n_a = scores.shape
    return EncodedSplit(VIDEOS[:n_v], torch.zeros(n_v, 1), speech_rows, torch.zeros(n_a, 1), np.zeros((n_a, 1)), [])


def test_groups_are_scored_over_their_own_utterances() -> None:
    # videos cut, stir; utterances a-e (labels cut, stir, cut, stir, cut): a, b ranked right, c, d, e wrong
    scores = np.array([[0.9, 0.1, 0.2, 0.8, 0.3], [0.1, 0.9, 0.8, 0.2, 0.7]])
    data = _encoded(TEST, scores)
    groups = speech_groups(_manifest(TRAIN + TEST + VIDEOS), TEST)
    by_family = _by_group(scores, data, (1,), groups.family)
    assert list(by_family) == ["espeak", "espeak-zh-f", "piper"]
    assert by_family["espeak"]["speech->video"].recall_at[1] == 1.0
    assert by_family["piper"]["speech->video"].recall_at[1] == 0.0
    # video->speech ranks only the group's utterances: the zh family has no "stir" utterance, so
    # the stir video has nothing relevant and is left out
    zh = by_family["espeak-zh-f"]["video->speech"]
    assert zh.n_items == 1 and zh.n_queries == 1 and zh.n_without_relevant == 1
    by_phrasing = _by_group(scores, data, (1,), groups.phrasing)
    unseen = [1, 3, 4]
    assert by_phrasing["unseen"] == bidirectional_metrics(
        scores[:, unseen], ["cut", "stir"], data.speech_labels[unseen], (1,)
    )
    assert {g: n_utterances(m) for g, m in by_phrasing.items()} == {"seen": 2, "unseen": 3}
    cross = _by_group(scores, data, (1,), groups.family_phrasing)
    assert sum(n_utterances(m) for m in cross.values()) == len(TEST)  # every utterance in exactly one cell


def test_tables_count_utterances_and_mark_unseen_families() -> None:
    scores = np.array([[0.9, 0.1, 0.2, 0.8, 0.3], [0.1, 0.9, 0.8, 0.2, 0.7]])
    data = _encoded(TEST, scores)
    groups = speech_groups(_manifest(TRAIN + TEST + VIDEOS), TEST)
    report = EvalReport(
        "test", {}, "FMN", {"videos": 2, "speech": 5}, {},
        by_family=_by_group(scores, data, (1,), groups.family),
        family_seen=groups.family_seen,
        by_phrasing=_by_group(scores, data, (1,), groups.phrasing),
        phrasing_basis=groups.phrasing_basis,
        by_family_phrasing=_by_group(scores, data, (1,), groups.family_phrasing),
    )  # fmt: skip
    table = report.family_table().splitlines()
    assert table[0].split()[-2:] == ["queries", "utterances"]
    piper = [line.split() for line in table if line.startswith("piper (unseen)")]
    assert len(piper) == 2 and all(row[-1] == "2" for row in piper)  # both directions show the 2 utterances
    assert any(line.startswith("espeak (seen)") for line in table)
    assert "phrasing (template)" in report.phrasing_table()
    assert "zh: family unseen, phrasing unseen" in report.family_phrasing_table()
    assert "utterances" not in format_table(report.by_family).splitlines()[0]  # only when asked
    out = json.loads(json.dumps(report.to_dict()))
    assert out["family_seen"] == {"espeak": True, "espeak-zh-f": False, "piper": False}
    assert set(out["by_phrasing"]) == {"seen", "unseen"} and out["phrasing_basis"] == "template"
    assert out["by_family"]["piper"]["speech->video"]["n_queries"] == 2
    assert len(out["by_family_phrasing"]) == 5


SMALL = FMNConfig(
    speech=SpeechEncoderConfig(hidden=32, frame_stack=3), embed_dim=32, fusion_hidden=32, memory_capacity=8
)


def test_fmn_eval_reports_families_and_phrasings(
    tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end on the tiny corpus, with a family and a template column added by hand."""
    manifest = read_manifest(tiny_corpus / "manifest.csv")
    rows = []
    for i, r in enumerate(manifest.rows):
        extra = dict(r.extra)
        if r.modality == "speech":  # two families and two templates a class, so every split has some of each
            extra |= {"family": ("festival", "piper")[i % 2], "template": f"{r.label}/{r.lang}/{i // 2 % 2}"}
        rows.append(dataclasses.replace(r, path=str(manifest.resolve(r)), extra=extra))
    path = write_manifest(rows, tmp_path / "manifest.csv")
    torch.manual_seed(0)
    FMNModel(create_fmn(SMALL).eval(), SMALL).save(tmp_path / "model")
    report = evaluate(FMNModel.load(tmp_path / "model"), path, jobs=2)
    n_speech = report.counts["speech"]
    for groups in (report.by_family, report.by_phrasing, report.by_family_phrasing, report.by_speaker):
        assert groups and sum(n_utterances(m) for m in groups.values()) == n_speech
    assert set(report.family_seen) <= {"festival", "piper"} and report.phrasing_basis == "template"
    assert set(report.by_phrasing) <= {"seen", "unseen"}
    assert main(["eval", "--model", str(tmp_path / "model"), "--manifest", str(path), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "[per voice family, seen or unseen in training" in out
    assert "[per phrasing (template), seen or unseen in training" in out
    assert "[per language, family and phrasing seen or unseen in training" in out
