"""Generate the built-in cooking corpus: videos, speech and the manifest (DESIGN.md §3).

Every item's content depends only on the master seed and the item's own keys (class, language,
index), so the same seed gives identical files, and adding a class changes no other class.
Work is spread over a process pool; the manifest is written last and atomically, so an
interrupted or failed run never leaves a manifest that points at missing files.
"""

from __future__ import annotations

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

import numpy as np

from fmn_core.corpus import speech
from fmn_core.corpus.video import RenderSettings, write_clip
from fmn_core.corpus.vocabulary import DEFAULT_CLASSES, LANGUAGES, parse_class, phrasings
from fmn_core.errors import FmnError
from fmn_core.manifest import Manifest, ManifestRow, atomic_write_text, write_manifest
from fmn_core.splits import SplitSpec, assign_splits, partition, speaker_splits

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
    voice: speech.Voice
    seed: int
    path: str  # relative to the corpus folder


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


def _speaker_splits(spec: CorpusSpec, voices_by_lang: dict[str, list[speech.Voice]]) -> dict[str, str]:
    return speaker_splits({lang: [v.speaker for v in vs] for lang, vs in voices_by_lang.items()}, spec.split)


def _voice_for_each_utterance(
    spec: CorpusSpec, class_key: str, voices: Sequence[speech.Voice], split_of_speaker: dict[str, str] | None
) -> list[speech.Voice]:
    """Choose a voice per utterance of one class, cycling over speakers so that each speaks as often.

    The cycle is over *speakers*, then over each speaker's voices: espeak-ng gives one timbre
    eight dialect voices and flite's awb has one, and cycling over voices gave each espeak-ng
    timbre about eight times the speech of a flite or festival speaker (20 of 1,200 training
    utterances came from such voices, and validation could not see how they fared).

    With held-out voices, the utterances that will be test (or val) utterances are spoken only
    by test (or val) speakers, in the split's proportions, so every class has test speech.
    """
    m, lang = spec.utterances_per_class, voices[0].lang
    offset = item_seed(spec.seed, "voice-offset", class_key, lang)
    by_speaker: dict[str, list[speech.Voice]] = {}
    for v in voices:
        by_speaker.setdefault(v.speaker, []).append(v)
    speakers = list(by_speaker)
    if split_of_speaker is None:
        pools = {"train": speakers}
        split_of_index = dict.fromkeys((f"{i:05d}" for i in range(m)), "train")
    else:
        pools = {s: [k for k in speakers if split_of_speaker[k] == s] for s in ("train", "val", "test")}
        split_of_index = partition([f"{i:05d}" for i in range(m)], spec.split, "utterances", class_key, lang)
    turns = dict.fromkeys(pools, 0)  # utterances given to each split's speakers so far
    spoken = dict.fromkeys(speakers, 0)  # utterances given to each speaker so far
    chosen = []
    for i in range(m):
        s = split_of_index[f"{i:05d}"]
        pool = pools[s] or pools["train"]
        speaker = pool[(offset + turns[s]) % len(pool)]
        own = by_speaker[speaker]
        chosen.append(own[(offset + spoken[speaker]) % len(own)])
        turns[s] += 1
        spoken[speaker] += 1
    return chosen


def plan_speech(spec: CorpusSpec, voices_by_lang: dict[str, list[speech.Voice]]) -> list[SpeechJob]:
    """One job per utterance: phrasing, voice, seed and output path.

    Phrasings are dealt in a shuffled cycle, so each class has as many distinct phrasings as
    it has utterances, up to the number of phrasings the vocabulary knows.
    """
    jobs = []
    split_of_speaker = _speaker_splits(spec, voices_by_lang) if spec.split.holdout_voices else None
    for c in spec.classes:
        cls = parse_class(c)
        for lang in spec.langs:
            texts = phrasings(cls, lang)
            np.random.default_rng(item_seed(spec.seed, "phrasing", c, lang)).shuffle(texts)
            voices = _voice_for_each_utterance(spec, c, voices_by_lang[lang], split_of_speaker)
            for i in range(spec.utterances_per_class):
                jobs.append(
                    SpeechJob(
                        id=f"s_{lang}_{c}_{i:03d}",
                        class_key=c,
                        lang=lang,
                        text=texts[i % len(texts)],
                        voice=voices[i],
                        seed=item_seed(spec.seed, "speech", c, lang, i),
                        path=f"speech/{lang}/{c}/{c}_{lang}_{i:03d}.wav",
                    )
                )
    return jobs


def _make_video(job: VideoJob, out: str, render: RenderSettings) -> ManifestRow:
    write_clip(job.class_key, job.seed, Path(out) / job.path, render)
    return ManifestRow(id=job.id, modality="video", path=job.path, label=job.class_key)


def _make_speech(job: SpeechJob, out: str) -> ManifestRow:
    from fmn_core.media.audio_io import write_wav

    wave, _ = speech.render_utterance(job.text, job.voice, job.seed)
    write_wav(Path(out) / job.path, wave)
    return ManifestRow(
        id=job.id,
        modality="speech",
        path=job.path,
        label=job.class_key,
        text=job.text,
        voice=job.voice.id,
        lang=job.lang,
        extra={"speaker": job.voice.speaker},
    )


def available_voices(langs: Sequence[str]) -> dict[str, list[speech.Voice]]:
    """Usable voices per language; warns about missing engines, fails if a language has none."""
    for engine, fix in speech.engine_status().items():
        if fix:
            log.warning("TTS engine %s is not available (%s); going on with the other engines", engine, fix)
    by_lang = {lang: speech.voices(lang) for lang in langs}
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


def _run_jobs(futures: list[Future[ManifestRow]], on_done: Callable[[], None]) -> list[ManifestRow]:
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
    seconds = len(video_jobs) * (spec.render.min_seconds + spec.render.max_seconds) / 2
    _check_writable(out, int(seconds * _BYTES_PER_VIDEO_SECOND + len(speech_jobs) * _BYTES_PER_UTTERANCE))
    total, done = len(video_jobs) + len(speech_jobs), 0
    if progress:
        progress(0, total)

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        # Long (video) jobs first, so the short speech jobs fill the gaps at the end.
        futures: list[Future[ManifestRow]] = [pool.submit(_make_video, j, str(out), spec.render) for j in video_jobs]
        futures += [pool.submit(_make_speech, j, str(out)) for j in speech_jobs]
        rows = _run_jobs(futures, tick)
    rows = assign_splits(rows, spec.split)
    atomic_write_text(out / "corpus.json", json.dumps(_describe(spec, voices_by_lang), indent=2, ensure_ascii=False))
    write_manifest(rows, out / "manifest.csv")
    return Manifest(rows=rows, root=out)


def _describe(spec: CorpusSpec, voices_by_lang: dict[str, list[speech.Voice]]) -> dict[str, object]:
    """What was generated and how, saved beside the manifest for reproducibility."""
    return {
        "spec": asdict(spec),
        "speakers": _speaker_splits(spec, voices_by_lang) if spec.split.holdout_voices else {},
        "voices": {lang: [v.id for v in vs] for lang, vs in voices_by_lang.items()},
        "engines": {k: v or "ok" for k, v in speech.engine_status().items()},
    }
