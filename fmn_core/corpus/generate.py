"""Generate the built-in cooking corpus: videos, speech and the manifest (DESIGN.md §3).

Every item's content depends only on the master seed and the item's own keys (class, language,
index), so the same seed gives identical files, and adding a class changes no other class.
Work is spread over a process pool; the manifest is written last and atomically, so an
interrupted or failed run never leaves a manifest that points at missing files.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmn_core.corpus import speech, voice_catalogue
from fmn_core.corpus.recipes import RecipeSettings, plan_recipe, write_recipe
from fmn_core.corpus.speech import SpeakerRanges
from fmn_core.corpus.video import RenderSettings, write_clip
from fmn_core.corpus.vocabulary import (
    ACTIONS,
    DEFAULT_CLASSES,
    LANGUAGES,
    Phrasing,
    parse_class,
    phrasing_templates,
    template_keys,
)
from fmn_core.corpus.voice_catalogue import Voice
from fmn_core.errors import FmnError
from fmn_core.manifest import Manifest, ManifestRow, atomic_write_text, write_manifest
from fmn_core.splits import SplitSpec, assign_splits, family_splits, partition, split_by_video

log = logging.getLogger(__name__)

# Rough sizes, used to refuse a run up front that cannot fit on the disk.
_BYTES_PER_VIDEO_SECOND = 60_000
_BYTES_PER_UTTERANCE = 120_000


class CorpusError(FmnError):
    """The corpus cannot be generated; the message says why and what to do."""


@dataclass(frozen=True)
class CorpusSpec:
    """What to generate."""

    classes: tuple[str, ...] = DEFAULT_CLASSES  # class keys, see vocabulary.parse_class
    videos_per_class: int = 50  # the paper's protocol: 50 videos per class
    utterances_per_class: int = 50  # per language; the paper: 50 speech clips per class
    langs: tuple[str, ...] = ("en", "zh")  # spoken languages
    seed: int = 0  # master seed: same seed, same files
    render: RenderSettings = field(default_factory=RenderSettings)  # video size, fps, duration range
    split: SplitSpec = field(default_factory=lambda: SplitSpec(holdout_voices=True))  # how rows are split
    unseen_templates: float = 0.25  # share of each action's phrasing templates (per language) kept out of training
    recipes: int = 0  # long recipe videos (corpus/recipes.py), each step a segment row; drawn at the render size
    recipe: RecipeSettings = field(default_factory=RecipeSettings)  # steps and idle stretches of a recipe
    # How far training speech's voices are moved (pitch, vocal tract); validation and test speech
    # keep the default ranges, so that held-out families sound as their engines speak.
    train_speaker: SpeakerRanges = field(default_factory=SpeakerRanges)


@dataclass(frozen=True)
class VideoJob:
    id: str
    class_key: str
    seed: int
    path: str  # relative to the corpus folder


@dataclass(frozen=True)
class SpeechJob:
    id: str
    class_key: str
    lang: str
    text: str
    voice: Voice
    seed: int
    path: str  # relative to the corpus folder
    split: str  # decided when planning: the voice's family and the phrasing's template depend on it
    template: str  # the phrasing's template key, e.g. "cut/en/07"
    ranges: SpeakerRanges = SpeakerRanges()  # how far the voice is moved (the spec's train_speaker for training)


@dataclass(frozen=True)
class RecipeJob:
    number: int
    seed: int
    path: str  # relative to the corpus folder
    classes: tuple[str, ...]  # the corpus's classes: a recipe's steps are drawn among them


def item_seed(seed: int, *keys: str | int) -> int:
    """A 32-bit seed for one item, from the master seed and the item's keys."""
    material = [seed, *(zlib.crc32(str(k).encode("utf-8")) for k in keys)]
    return int(np.random.SeedSequence(material).generate_state(1)[0])


def plan_videos(spec: CorpusSpec) -> list[VideoJob]:
    """One job per video: class key, seed and output path."""
    return [
        VideoJob(
            id=f"v_{c}_{i:03d}",
            class_key=c,
            seed=item_seed(spec.seed, "video", c, i),
            path=f"video/{c}/{c}_{i:03d}.mp4",
        )
        for c in spec.classes
        for i in range(spec.videos_per_class)
    ]


def _family_splits(spec: CorpusSpec, voices_by_lang: dict[str, list[Voice]]) -> dict[tuple[str, str], str]:
    """(language, family) -> split, from the corpus's family table (``splits.CORPUS_FAMILY_SPLITS``)."""
    families = {lang: [(v.family, v.speaker) for v in vs] for lang, vs in voices_by_lang.items()}
    return family_splits(families, spec.split)


def unseen_templates(spec: CorpusSpec, action: str, lang: str) -> set[str]:
    """The templates of an action, in a language, that no training utterance uses.

    Drawn from the split seed, per action and language; the first template (the class's own
    name, what a user types first) is always seen.
    """
    keys = template_keys(action, lang)
    n = round(len(keys) * spec.unseen_templates)
    order = list(keys[1:])
    np.random.default_rng(item_seed(spec.split.seed, "unseen-templates", action, lang)).shuffle(order)
    return set(order[:n])


Pool = dict[str, dict[str, list[Voice]]]  # family -> speaker -> voices


def _voice_for_each_utterance(
    spec: CorpusSpec, class_key: str, voices: Sequence[Voice], split_of_family: dict[str, str] | None
) -> list[tuple[Voice, str]]:
    """Choose a voice and a split per utterance of one class.

    Utterances are dealt to splits in the spec's proportions; with held-out families
    (``split_of_family``: family -> split) a split's utterances are spoken only by its own
    families, so every class has test speech. Within a split the deal cycles over families,
    then over each family's speakers, then over each speaker's voices: espeak-ng gives one timbre
    eight dialect voices and flite's awb one, and a deal over voices gave each espeak-ng timbre
    about eight times the speech of a flite or festival speaker; over families, the neural test
    voice speaks as much of the test as espeak-ng's three Klatt timbres together. A split with
    no family of its own (an engine missing here) is spoken by training voices and becomes training.
    """
    m, lang = spec.utterances_per_class, voices[0].lang
    offset = item_seed(spec.seed, "voice-offset", class_key, lang)
    pools: dict[str, Pool] = {s: {} for s in ("train", "val", "test")}
    for v in voices:
        for s in (split_of_family[v.family],) if split_of_family is not None else tuple(pools):
            pools[s].setdefault(v.family, {}).setdefault(v.speaker, []).append(v)
    split_of_index = partition([f"{i:05d}" for i in range(m)], spec.split, "utterances", class_key, lang)
    turns: dict[str, int] = {}  # utterances given so far to each split, family and speaker
    chosen = []
    for i in range(m):
        split = split_of_index[f"{i:05d}"]
        split = split if pools[split] else "train"
        families = sorted(pools[split])
        family = families[(offset + turns.get(split, 0)) % len(families)]
        speakers = list(pools[split][family])
        speaker = speakers[(offset + turns.get(f"family:{family}", 0)) % len(speakers)]
        own = pools[split][family][speaker]
        chosen.append((own[(offset + turns.get(f"speaker:{speaker}", 0)) % len(own)], split))
        for key in (split, f"family:{family}", f"speaker:{speaker}"):
            turns[key] = turns.get(key, 0) + 1
    return chosen


def _phrasing_for_each_utterance(spec: CorpusSpec, class_key: str, lang: str, splits: list[str]) -> list[Phrasing]:
    """Choose a phrasing per utterance: training ones from seen templates, held-out ones half and half.

    Seen and unseen phrasings are each dealt in a shuffled cycle, so a class has as many distinct
    phrasings as the vocabulary allows; in validation and test, utterances alternate between
    unseen and seen templates, so both can be reported.
    """
    cls = parse_class(class_key)
    unseen = unseen_templates(spec, cls.action, lang)
    rng = np.random.default_rng(item_seed(spec.seed, "phrasing", class_key, lang))
    lists: dict[bool, list[Phrasing]] = {False: [], True: []}  # unseen? -> phrasings
    for p in phrasing_templates(cls, lang):
        lists[p.template in unseen].append(p)
    for phrasings in lists.values():
        rng.shuffle(phrasings)
    used = {False: 0, True: 0}
    held_out = {"val": int(rng.integers(2)), "test": int(rng.integers(2))}  # where each split's alternation starts
    chosen = []
    for split in splits:
        new = split != "train" and bool(lists[True]) and held_out[split] % 2 == 0
        if split != "train":
            held_out[split] += 1
        chosen.append(lists[new][used[new] % len(lists[new])])
        used[new] += 1
    return chosen


def plan_speech(spec: CorpusSpec, voices_by_lang: dict[str, list[Voice]]) -> list[SpeechJob]:
    """One job per utterance: split, voice, phrasing (and its template), seed and output path."""
    jobs = []
    split_of_family = _family_splits(spec, voices_by_lang) if spec.split.holdout_voices else None
    for c in spec.classes:
        for lang in spec.langs:
            families = {f: s for (lg, f), s in split_of_family.items() if lg == lang} if split_of_family else None
            voices = _voice_for_each_utterance(spec, c, voices_by_lang[lang], families)
            texts = _phrasing_for_each_utterance(spec, c, lang, [split for _, split in voices])
            for i, ((voice, split), phrasing) in enumerate(zip(voices, texts, strict=True)):
                jobs.append(
                    SpeechJob(
                        id=f"s_{lang}_{c}_{i:03d}",
                        class_key=c,
                        lang=lang,
                        text=phrasing.text,
                        voice=voice,
                        seed=item_seed(spec.seed, "speech", c, lang, i),
                        path=f"speech/{lang}/{c}/{c}_{lang}_{i:03d}.wav",
                        split=split,
                        template=phrasing.template,
                        ranges=spec.train_speaker if split == "train" else SpeakerRanges(),
                    )
                )
    return jobs


def _make_video(job: VideoJob, out: str, render: RenderSettings) -> ManifestRow:
    write_clip(job.class_key, job.seed, Path(out) / job.path, render)
    return ManifestRow(id=job.id, modality="video", path=job.path, label=job.class_key)


def plan_recipes(spec: CorpusSpec) -> list[RecipeJob]:
    """One job per recipe video (none unless ``spec.recipes``)."""
    return [
        RecipeJob(n, item_seed(spec.seed, "recipe", n), f"recipes/recipe_{n:03d}.mp4", spec.classes)
        for n in range(spec.recipes)
    ]


def _recipe_settings(spec: CorpusSpec) -> RecipeSettings:
    """The spec's recipe settings, drawn at the corpus's frame size and rate."""
    render = dataclasses.replace(
        spec.recipe.render, width=spec.render.width, height=spec.render.height, fps=spec.render.fps
    )
    return dataclasses.replace(spec.recipe, render=render)


def _make_recipe(job: RecipeJob, out: str, settings: RecipeSettings) -> list[ManifestRow]:
    info = write_recipe(job.seed, Path(out) / job.path, settings, job.classes)
    recipe_id = f"r_{job.number:03d}"
    return [
        ManifestRow(
            id=f"{recipe_id}_{k:02d}_{step.class_key}",
            modality="video",
            path=job.path,
            label=step.class_key,
            start=f"{step.start:.3f}",
            end=f"{step.end:.3f}",
            extra={"recipe": recipe_id, "dish": info.dish},
        )
        for k, step in enumerate(info.steps)
    ]


def _make_speech(job: SpeechJob, out: str) -> ManifestRow:
    from fmn_core.media.audio_io import write_wav

    wave, _ = speech.render_utterance(job.text, job.voice, job.seed, job.ranges)
    write_wav(Path(out) / job.path, wave)
    return ManifestRow(
        id=job.id,
        modality="speech",
        path=job.path,
        label=job.class_key,
        split=job.split,
        text=job.text,
        voice=job.voice.id,
        lang=job.lang,
        extra={"speaker": job.voice.speaker, "family": job.voice.family, "template": job.template},
    )


def available_voices(langs: Sequence[str]) -> dict[str, list[Voice]]:
    """Usable voices per language; warns about missing engines, fails if a language has none."""
    for engine, fix in voice_catalogue.engine_status().items():
        if fix:
            log.warning("TTS engine %s is not available (%s); going on with the other engines", engine, fix)
    by_lang = {lang: voice_catalogue.voices(lang) for lang in langs}
    empty = [lang for lang, vs in by_lang.items() if not vs]
    if empty:
        raise CorpusError(
            f"no text-to-speech voice for language(s) {', '.join(empty)}: install espeak-ng "
            "(apt-get install espeak-ng, or run .ci/system-deps.sh)"
        )
    return by_lang


def _check_writable(out: Path, needed_bytes: int) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as e:
        raise CorpusError(f"cannot write to {out}: {e.strerror or e}") from None
    free = shutil.disk_usage(out).free
    if free < needed_bytes:
        raise CorpusError(
            f"not enough disk space in {out}: about {needed_bytes / 1e6:.0f} MB needed, {free / 1e6:.0f} MB free"
        )


def _run_jobs(futures: list[Future[Any]], on_done: Callable[[], None]) -> list[Any]:
    """Wait for all jobs, reporting progress; the first failure cancels the rest and is raised."""
    for f in as_completed(futures):
        e = f.exception()
        if e is not None:
            for other in futures:
                other.cancel()
            if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                raise CorpusError(f"disk full while writing the corpus: {e.filename or e}") from e
            raise CorpusError(f"generation failed: {e}") from e
        on_done()
    return [f.result() for f in futures]


def _rows_with_splits(results: list[Any], n_recipes: int, split: SplitSpec) -> list[ManifestRow]:
    """The manifest rows of finished jobs (recipes first, then clips and speech), each with its split."""
    segments = [r for rs in results[:n_recipes] for r in rs]
    rows = results[n_recipes:]
    # Speech rows got their split when planned (it chose their voice and phrasing); clips get theirs
    # here, and a recipe's steps all get their recipe's (a kitchen is never in two splits).
    return (
        split_by_video(segments, split.test, split.val, split.seed)
        + assign_splits([r for r in rows if r.modality == "video"], split)
        + [r for r in rows if r.modality == "speech"]
    )


def generate_corpus(
    out: Path | str,
    spec: CorpusSpec = CorpusSpec(),
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Manifest:
    """Render every video and utterance of the spec into ``out`` and write ``out/manifest.csv``.

    Args:
        out: output folder (created if needed).
        spec: classes, counts, languages, seed, render settings and split.
        jobs: worker processes (default: all cores).
        progress: called as ``progress(done, total)`` after each file.

    Raises:
        CorpusError: unknown classes, no voices, an unwritable folder, a full disk, a failed file.
    """
    out = Path(out).resolve()
    for c in spec.classes:
        parse_class(c)  # fail fast on unknown classes, listing the valid ones
    unknown = [lang for lang in spec.langs if lang not in LANGUAGES]
    if unknown:
        raise CorpusError(f"unknown language(s) {', '.join(unknown)}: valid languages are {', '.join(LANGUAGES)}")
    voices_by_lang = available_voices(spec.langs)
    video_jobs, speech_jobs = plan_videos(spec), plan_speech(spec, voices_by_lang)
    recipe_jobs, recipe = plan_recipes(spec), _recipe_settings(spec)
    if recipe_jobs:
        try:
            plan_recipe(recipe_jobs[0].seed, recipe, spec.classes)  # fail before any work, not in a worker
        except ValueError as e:
            raise CorpusError(f"--recipes: {e}") from None
    seconds = len(video_jobs) * (spec.render.min_seconds + spec.render.max_seconds) / 2
    seconds += len(recipe_jobs) * recipe.longest_seconds()
    _check_writable(out, int(seconds * _BYTES_PER_VIDEO_SECOND + len(speech_jobs) * _BYTES_PER_UTTERANCE))
    total, done = len(recipe_jobs) + len(video_jobs) + len(speech_jobs), 0
    if progress:
        progress(0, total)

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        # Long jobs first (recipes, then clips), so the short speech jobs fill the gaps at the end.
        futures: list[Future[Any]] = [pool.submit(_make_recipe, j, str(out), recipe) for j in recipe_jobs]
        futures += [pool.submit(_make_video, j, str(out), spec.render) for j in video_jobs]
        futures += [pool.submit(_make_speech, j, str(out)) for j in speech_jobs]
        results = _run_jobs(futures, tick)
    rows = _rows_with_splits(results, len(recipe_jobs), spec.split)
    atomic_write_text(out / "corpus.json", json.dumps(_describe(spec, voices_by_lang), indent=2, ensure_ascii=False))
    write_manifest(rows, out / "manifest.csv")
    return Manifest(rows=rows, root=out)


def _describe(spec: CorpusSpec, voices_by_lang: dict[str, list[Voice]]) -> dict[str, object]:
    """What was generated and how, saved beside the manifest for reproducibility."""
    return {
        "spec": asdict(spec),
        "families": {
            lang: {f: s for (lg, f), s in sorted(_family_splits(spec, voices_by_lang).items()) if lg == lang}
            for lang in spec.langs
        }
        if spec.split.holdout_voices
        else {},
        "family_descriptions": voice_catalogue.FAMILIES,
        "unseen_templates": {
            f"{action}/{lang}": sorted(unseen_templates(spec, action, lang))
            for action in ACTIONS
            for lang in spec.langs
        },
        "voices": {lang: [v.id for v in vs] for lang, vs in voices_by_lang.items()},
        "voice_families": {lang: {v.id: v.family for v in vs} for lang, vs in voices_by_lang.items()},
        "engines": {k: v or "ok" for k, v in voice_catalogue.engine_status().items()},
    }
