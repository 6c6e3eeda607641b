"""Train / validation / test splits of a manifest.

The paper (§4.1) uses 70 % of each class for training and 30 % for testing. We keep those
proportions and carve the validation set (which chooses thresholds and the epoch) out of the
training share. With ``holdout_voices`` speech is split by *voice family* when the manifest
names one per row (the built-in corpus does: ``family`` column), else by *speaker*, so test
speech comes only from voices never heard in training: the honest setting for a tool whose
users have voices of their own.
"""

from __future__ import annotations

import random
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from fmn_core.manifest import ManifestRow


@dataclass(frozen=True)
class SplitSpec:
    """Fractions of every class (and language) given to each split."""

    test: float = 0.3  # the paper's 30 % test share
    val: float = 0.1  # taken from the paper's 70 % training share
    seed: int = 0  # which items (or voices) go where
    holdout_voices: bool = False  # split speech by voice, not by utterance

    def __post_init__(self) -> None:
        if not (0 <= self.test < 1 and 0 <= self.val < 1 and self.test + self.val < 1):
            raise ValueError(f"split fractions must leave room for training: test={self.test}, val={self.val}")


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends only on the seed and the keys (stable across runs and Python versions)."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode("utf-8")) for k in keys)])


def _counts(n: int, spec: SplitSpec) -> tuple[int, int]:
    """How many of n go to test and to val; every split that should exist gets at least one when n allows."""
    n_test = min(n - 1, max(1 if spec.test > 0 else 0, round(n * spec.test))) if n > 1 else 0
    n_val = min(n - n_test - 1, max(1 if spec.val > 0 else 0, round(n * spec.val))) if n - n_test > 1 else 0
    return n_test, max(n_val, 0)


def partition(keys: Sequence[str], spec: SplitSpec, *salt: str) -> dict[str, str]:
    """Deal keys into 'test', 'val' and 'train' in the spec's proportions, deterministically.

    Args:
        keys: distinct items to deal (row ids, or voice names).
        spec: fractions and seed.
        salt: extra keys for the random order, e.g. the label, so classes are shuffled independently.
    """
    order = sorted(keys)
    _rng(spec.seed, *salt).shuffle(order)
    n_test, n_val = _counts(len(order), spec)
    return {k: ("test" if i < n_test else "val" if i < n_test + n_val else "train") for i, k in enumerate(order)}


# Which split holds each voice family of the built-in corpus out whole (families: corpus/voice_catalogue.py).
# A fixed table rather than a seeded deal, so the held-out families are stated, not drawn, and were
# chosen before any model was trained on them (no model figure chose them):
# - training keeps the largest and most varied families: espeak-ng's eleven male and female
#   timbres in eight English dialects, and the three statistical parametric speakers (awb, rms,
#   slt), its only non-espeak voices and the most natural-sounding of the classic engines;
# - validation, which picks the epoch and thresholds, holds out diphone concatenation (kal, ked,
#   and rab, don where installed): a method training never hears, with two speakers;
# - test holds out the neural Piper voice, the method most unlike training and closest to a
#   person, and espeak-ng's Klatt voices, a new synthesizer of a known engine, so the report can
#   tell a new engine from a new voice line;
# - Mandarin has espeak-ng and Kokoro: training keeps espeak-ng's male line (seven timbres) and
#   Kokoro's four female voices, validation espeak-ng's female line, test espeak-ng's Klatt line
#   and Kokoro's male voice, so the Klatt timbres are heard in training in no language (the female
#   timbres speak English in training: Mandarin validation is new in Mandarin only). Kokoro's male
#   voice is the test's nearest thing to a Mandarin speaker: Whisper hears it, as it does a person,
#   where it hears espeak-ng's cmn as English.
CORPUS_FAMILY_SPLITS: dict[str, str] = {
    "espeak": "train",
    "parametric": "train",
    "diphone": "val",
    "piper": "test",
    "espeak-klatt": "test",
    "espeak-zh-m": "train",
    "espeak-zh-f": "val",
    "espeak-zh-klatt": "test",
    "kokoro-zh-f": "train",
    "kokoro-zh-m": "test",
}


def family_of(row: ManifestRow) -> str:
    """The voice family of a speech row (its ``family`` column), or "" when the manifest has none."""
    return row.extra.get("family", "")


def _linked_families(members: dict[str, set[str]]) -> list[list[str]]:
    """Families that share a speaker, transitively, grouped (a speaker's voices must stay on one side)."""
    groups: list[tuple[set[str], set[str]]] = []  # (families, their speakers)
    for family, speakers in sorted(members.items()):
        merged = ({family}, set(speakers))
        for group in [g for g in groups if g[1] & speakers]:
            groups.remove(group)
            merged = (merged[0] | group[0], merged[1] | group[1])
        groups.append(merged)
    return sorted(sorted(families) for families, _ in groups)


def family_splits(
    families_by_lang: Mapping[str, Iterable[tuple[str, str]]],
    spec: SplitSpec,
    table: dict[str, str] | None = None,
) -> dict[tuple[str, str], str]:
    """Which split each voice family belongs to, per language, when families are held out whole.

    Families linked by a shared speaker go together. A group the table places goes there; a group
    it does not know is heard in training when the table places others of that language (a new
    voice package then adds to training rather than quietly changing what the test measures),
    and when it places none (a user's manifest) the groups are dealt in the spec's proportions.

    Args:
        families_by_lang: language -> (family, speaker) of every voice.
        spec: fractions and seed, for families the table does not place.
        table: family -> split; default :data:`CORPUS_FAMILY_SPLITS`.

    Returns:
        (language, family) -> 'train', 'val' or 'test'.

    Raises:
        ValueError: the table sends families that share a speaker to different splits.
    """
    table = CORPUS_FAMILY_SPLITS if table is None else table
    split_of: dict[tuple[str, str], str] = {}
    for lang, pairs in sorted(families_by_lang.items()):
        members: dict[str, set[str]] = defaultdict(set)
        for family, speaker in pairs:
            members[family].add(speaker)
        groups = _linked_families(members)
        placed: dict[str, str] = {}
        for group in groups:
            splits = {table[f] for f in group if f in table}
            if len(splits) > 1:
                raise ValueError(f"families {', '.join(group)} share a speaker but are placed in {sorted(splits)}")
            if splits:
                placed["+".join(group)] = splits.pop()
        unplaced = ["+".join(g) for g in groups if "+".join(g) not in placed]
        if placed:
            placed.update(dict.fromkeys(unplaced, "train"))
        else:
            placed = partition(unplaced, spec, "families", lang)
        for key, split in placed.items():
            split_of.update({(lang, family): split for family in key.split("+")})
    return split_of


def speaker_of(row: ManifestRow) -> str:
    """The speaker behind a speech row: the ``speaker`` column when present, else the voice.

    Synthetic voices can share one timbre (espeak-ng's en-us+m3 and en-gb+m3), and a held-out
    test must keep such voices together, so the corpus records a speaker per voice.
    """
    return row.extra.get("speaker") or row.voice


def speaker_family(speaker: str) -> str:
    """The kind of voice a speaker is: its name without a trailing number.

    Numbered speakers are variations on one kind (espeak-ng's timbres m1…m7 are male, f1…f4
    female, klatt…klatt3 another synthesizer; a user's spk01, spk02… one pool).
    """
    return speaker.rstrip("0123456789") or speaker


def _deal_by_family(speakers: Iterable[str], spec: SplitSpec, *salt: str) -> dict[str, str]:
    """Deal speakers into splits within each family, so every kind of voice is in every split.

    Without this a random deal can send most of one kind to test (three of espeak-ng's four
    female timbres once did), and the test measures a voice type training never heard rather
    than new speakers. Families of one speaker are dealt together as one pool.
    """
    families: dict[str, list[str]] = defaultdict(list)
    for s in speakers:
        families[speaker_family(s)].append(s)
    singles = sorted(s for members in families.values() if len(members) == 1 for s in members)
    groups = {family: members for family, members in families.items() if len(members) > 1}
    if singles:
        groups[""] = singles
    split_of: dict[str, str] = {}
    for family, members in sorted(groups.items()):
        split_of.update(partition(sorted(members), spec, *salt, family))
    return split_of


def speaker_splits(speakers_by_lang: Mapping[str, Iterable[str]], spec: SplitSpec) -> dict[str, str]:
    """Which split each speaker belongs to when speakers are held out.

    A speaker heard in several languages gets one split for all of them (else a test voice in
    one language would be a training voice in another). Shared speakers and each language's
    own speakers are dealt separately, so every language gets the spec's proportions, and
    within each family of voices (:func:`speaker_family`), so every kind of voice is in every split.
    """
    sets = {lang: set(s) for lang, s in speakers_by_lang.items()}
    shared = set.intersection(*sets.values()) if len(sets) > 1 else set()
    split_of = _deal_by_family(shared, spec, "speakers", "shared")
    for lang, speakers in sorted(sets.items()):
        split_of.update(_deal_by_family(speakers - shared, spec, "speakers", lang))
    return split_of


def assign_splits(rows: Sequence[ManifestRow], spec: SplitSpec) -> list[ManifestRow]:
    """Return copies of the rows with ``split`` set, stratified by modality, label and language.

    With ``holdout_voices``, speech rows that all name a family (``family`` column) are split by
    family (:func:`family_splits`), others by speaker (:func:`speaker_splits`).

    Raises:
        ValueError: ``holdout_voices`` is set but a speech row has no voice.
    """
    groups: dict[tuple[str, str, str], list[ManifestRow]] = defaultdict(list)
    for r in rows:
        groups[(r.modality, r.label, r.lang)].append(r)
    voice_split = _voice_splits(rows, spec) if spec.holdout_voices else None
    split_of: dict[str, str] = {}
    for (modality, label, lang), members in groups.items():
        if modality == "speech" and voice_split is not None:
            split_of.update({r.id: voice_split(r) for r in members})
        else:
            split_of.update(partition([r.id for r in members], spec, modality, label, lang))
    return [replace(r, split=split_of[r.id]) for r in rows]


def _voice_splits(rows: Sequence[ManifestRow], spec: SplitSpec) -> Callable[[ManifestRow], str]:
    """The split of a speech row when voices are held out: by family when every row has one, else by speaker."""
    speech = [r for r in rows if r.modality == "speech"]
    unvoiced = [r.id for r in speech if not r.voice]
    if unvoiced:
        raise ValueError(f"holding out voices needs a voice for every speech row; none for {unvoiced[:5]}")
    if speech and all(family_of(r) for r in speech):
        pairs: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for r in speech:
            pairs[r.lang].append((family_of(r), speaker_of(r)))
        family_split = family_splits(pairs, spec)
        return lambda r: family_split[(r.lang, family_of(r))]
    by_lang: dict[str, set[str]] = defaultdict(set)
    for r in speech:
        by_lang[r.lang].add(speaker_of(r))
    speaker_split = speaker_splits(by_lang, spec)
    return lambda r: speaker_split[speaker_of(r)]


def split_by_video(rows: list[ManifestRow], test: float, val: float, seed: int) -> list[ManifestRow]:
    """Set every row's split so that all segments of one recording share it.

    Segments of a recording share its kitchen, light and cook: split across train and test they
    would let a model match the room instead of the action. Whole recordings are drawn instead
    (``test`` and ``val`` are fractions of the recordings), in a fixed order for a seed.
    """
    videos = sorted({r.path for r in rows})
    random.Random(seed).shuffle(videos)
    n_test, n_val = round(len(videos) * test), round(len(videos) * val)
    split_of = {v: "test" if i < n_test else "val" if i < n_test + n_val else "train" for i, v in enumerate(videos)}
    for r in rows:
        r.split = split_of[r.path]
    return rows
