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
from fmn_core.corpus import generate, speech
from fmn_core.corpus.generate import CorpusError, CorpusSpec, generate_corpus
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


def test_every_speaker_of_a_split_speaks_as_often_whatever_its_number_of_voices() -> None:
    # espeak-ng gives a timbre many dialect voices, flite one: the deal is by speaker, not by voice.
    voices = [speech.Voice(f"espeak:{d}+m1", "espeak", "en", f"{d}+m1", "espeak+m1") for d in "abcdefgh"]
    voices += [speech.Voice(f"espeak:{d}+f1", "espeak", "en", f"{d}+f1", "espeak+f1") for d in "abcdefgh"]
    voices += [speech.Voice("flite:awb", "flite", "en", "awb", "awb")]
    spec = CorpusSpec(classes=("cut_onion", "pour_milk"), utterances_per_class=30, langs=("en",))
    for split_of_speaker in (None, dict.fromkeys(("espeak+m1", "espeak+f1", "awb"), "train")):
        counts: Counter[str] = Counter()
        for c in spec.classes:
            chosen = generate._voice_for_each_utterance(spec, c, voices, split_of_speaker)
            counts.update(v.speaker for v in chosen)
            assert len({v.id for v in chosen if v.speaker == "espeak+m1"}) == 8  # its voices take turns
        assert counts == {"espeak+m1": 20, "espeak+f1": 20, "awb": 20}


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
    monkeypatch.setattr(generate.speech, "voices", lambda lang: [])
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


def test_doctor_reports_every_component(capsys: pytest.CaptureFixture[str]) -> None:
    main(["doctor"])
    out = capsys.readouterr().out
    for name in ("Python", "torch", "torchaudio", "pytorchvideo", "Qt", "PortAudio", "TTS espeak", "free disk"):
        assert name in out
    assert all(line.startswith(("OK", "MISSING")) for line in out.splitlines())


def test_a_missing_engine_is_named_and_the_others_carry_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    status = {"espeak": None, "flite": "apt-get install flite", "festival": None}
    monkeypatch.setattr(generate.speech, "engine_status", lambda: status)
    with caplog.at_level("WARNING"):
        voices = generate.available_voices(["en"])
    assert "flite is not available (apt-get install flite)" in caplog.text
    assert voices["en"]
