"""Splits keep the paper's proportions per class, are deterministic, and can hold out voices."""

from __future__ import annotations

from collections import Counter

import pytest

from fmn_core.manifest import ManifestRow
from fmn_core.splits import SplitSpec, assign_splits, family_splits


def _speech(n_voices: int = 10, per_voice: int = 5) -> list[ManifestRow]:
    return [
        ManifestRow(f"s{v}_{i}", "speech", f"{v}_{i}.wav", label, voice=f"voice{v}", lang="en")
        for label in ("a", "b")
        for v in range(n_voices)
        for i in range(per_voice)
    ]


def test_proportions_per_class_and_determinism() -> None:
    rows = [ManifestRow(f"v{c}{i}", "video", f"{i}.mp4", c) for c in "ab" for i in range(50)]
    first = assign_splits(rows, SplitSpec(seed=3))
    assert first == assign_splits(rows, SplitSpec(seed=3))
    assert first != assign_splits(rows, SplitSpec(seed=4))
    for label in "ab":
        counts = Counter(r.split for r in first if r.label == label)
        assert counts == {"train": 30, "val": 5, "test": 15}


def test_held_out_voices_never_meet_training() -> None:
    rows = assign_splits(_speech(), SplitSpec(holdout_voices=True))
    voices = {s: {r.voice for r in rows if r.split == s} for s in ("train", "val", "test")}
    assert voices["test"] and voices["val"] and voices["train"]
    assert not voices["test"] & voices["train"] and not voices["val"] & voices["train"]
    assert not voices["test"] & voices["val"]
    assert len(voices["test"]) == 3  # 30 % of 10 voices


def test_a_speaker_heard_in_two_languages_has_one_split() -> None:
    rows = [
        ManifestRow(
            f"{lang}{v}{i}", "speech", "x.wav", "a", voice=f"{lang}+v{v}", lang=lang, extra={"speaker": f"v{v}"}
        )
        for lang in ("en", "zh")
        for v in range(10)
        for i in range(2)
    ]
    rows = assign_splits(rows, SplitSpec(holdout_voices=True))
    split_of = {}
    for r in rows:
        assert split_of.setdefault(r.extra["speaker"], r.split) == r.split
    assert sorted(split_of.values()).count("test") == 3


def test_every_kind_of_voice_is_in_every_split() -> None:
    speakers = [f"espeak+m{i}" for i in range(1, 8)] + [f"espeak+f{i}" for i in range(1, 5)] + ["kal", "awb", "slt"]
    rows = [
        ManifestRow(f"{s}_{i}", "speech", "x.wav", "a", voice=s, lang="en", extra={"speaker": s})
        for s in speakers
        for i in range(2)
    ]
    for seed in range(5):
        split_of = {r.extra["speaker"]: r.split for r in assign_splits(rows, SplitSpec(seed=seed, holdout_voices=True))}
        for family in ("espeak+m", "espeak+f"):
            kinds = {split for s, split in split_of.items() if s.rstrip("0123456789") == family}
            assert kinds == {"train", "val", "test"}, (seed, family, split_of)
        # the named voices of their own are dealt as one pool
        assert {split_of[s] for s in ("kal", "awb", "slt")} == {"train", "val", "test"}


def test_holding_out_voices_needs_voices() -> None:
    rows = [ManifestRow("s", "speech", "s.wav", "a")]
    with pytest.raises(ValueError, match="voice"):
        assign_splits(rows, SplitSpec(holdout_voices=True))


def test_bad_fractions_are_refused() -> None:
    with pytest.raises(ValueError):
        SplitSpec(test=0.8, val=0.3)


def _family_rows(families: dict[str, list[str]], lang: str = "en") -> list[ManifestRow]:
    return [
        ManifestRow(
            f"{lang}_{f}_{s}_{i}",
            "speech",
            "x.wav",
            "a",
            voice=f"{f}:{s}",
            lang=lang,
            extra={"speaker": s, "family": f},
        )
        for f, speakers in families.items()
        for s in speakers
        for i in range(3)
    ]


def test_the_corpus_deal_holds_whole_families_out() -> None:
    rows = _family_rows(
        {
            "espeak": ["espeak+m1", "espeak+f1"],
            "espeak-klatt": ["espeak+klatt"],
            "parametric": ["awb", "slt"],
            "diphone": ["kal", "ked"],
            "piper": ["joe"],
        }
    )
    rows += _family_rows({"espeak-zh-m": ["espeak+m1"], "espeak-zh-f": ["espeak+f1"], "espeak-zh-klatt": ["k"]}, "zh")
    for seed in range(3):  # a stated table: the seed changes nothing
        split_of = {
            (r.lang, r.extra["family"]): r.split for r in assign_splits(rows, SplitSpec(seed=seed, holdout_voices=True))
        }
        assert split_of == {
            ("en", "espeak"): "train",
            ("en", "parametric"): "train",
            ("en", "diphone"): "val",
            ("en", "piper"): "test",
            ("en", "espeak-klatt"): "test",
            ("zh", "espeak-zh-m"): "train",
            ("zh", "espeak-zh-f"): "val",
            ("zh", "espeak-zh-klatt"): "test",
        }


def test_families_sharing_a_speaker_go_together_and_a_conflict_is_refused() -> None:
    pairs = {"en": [("a", "s1"), ("b", "s1"), ("b", "s2"), ("c", "s3"), ("d", "s4"), ("e", "s5")]}
    split_of = family_splits(pairs, SplitSpec(), table={})
    assert split_of[("en", "a")] == split_of[("en", "b")]  # linked by s1
    assert set(split_of.values()) == {"train", "val", "test"}  # the table places none: dealt
    # a family the table does not know joins training when the table places the others
    assert family_splits(pairs, SplitSpec(), table={"a": "test", "c": "val"})[("en", "d")] == "train"
    with pytest.raises(ValueError, match="share a speaker"):
        family_splits(pairs, SplitSpec(), table={"a": "test", "b": "train"})


def test_rows_without_families_keep_the_speaker_deal() -> None:
    rows = assign_splits(_speech(), SplitSpec(holdout_voices=True))
    assert len({r.voice for r in rows if r.split == "test"}) == 3
