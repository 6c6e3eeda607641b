"""Front ends: frames sampled evenly and normalised, MFCCs trimmed and batched, bad input refused."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fmn_core.features.audio import SpeechFrontEndConfig, collate_speech, mfcc, prepare_wave, speech_features
from fmn_core.features.video import VideoFrontEndConfig, even_indices, frames_to_tensor, load_clip
from fmn_core.manifest import read_manifest
from fmn_core.media.errors import MediaError


def test_even_indices_cover_the_clip() -> None:
    assert even_indices(100, 4).tolist() == [12, 37, 62, 87]
    assert even_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]  # short clips repeat frames
    with pytest.raises(ValueError):
        even_indices(0, 4)


def test_frames_become_normalised_rgb_tensors() -> None:
    frames = np.zeros((4, 48, 64, 3), dtype=np.uint8)
    frames[..., 2] = 255  # pure red in BGR
    x = frames_to_tensor(frames, VideoFrontEndConfig(frames=4, size=32))
    assert x.shape == (3, 4, 32, 32) and x.dtype == torch.float32
    assert x[0].mean() > 2 and x[1].mean() < -1.9  # red channel high, green at (0 - 0.45) / 0.225
    cropped = frames_to_tensor(frames, VideoFrontEndConfig(frames=4, size=32, crop=True))
    assert cropped.shape == (3, 4, 32, 32)


def test_load_clip_from_a_generated_video(tiny_corpus: Path) -> None:
    manifest = read_manifest(tiny_corpus / "manifest.csv")
    path = manifest.resolve(manifest.of("video")[0])
    x = load_clip(path, VideoFrontEndConfig(frames=8, size=32))
    assert x.shape == (3, 8, 32, 32)
    assert not torch.equal(x[:, 0], x[:, -1])  # frames really come from different times


def test_speech_features_of_a_generated_utterance(tiny_corpus: Path) -> None:
    manifest = read_manifest(tiny_corpus / "manifest.csv")
    path = manifest.resolve(manifest.of("speech")[0])
    x = speech_features(path)
    assert x.shape[1] == SpeechFrontEndConfig().n_features == 60
    assert 30 < x.shape[0] < 800
    assert torch.allclose(x.mean(dim=0), torch.zeros(60), atol=1e-4)  # per-utterance normalisation


def test_trimming_drops_leading_and_trailing_silence() -> None:
    rng = np.random.default_rng(0)
    speech = rng.normal(0, 0.3, 8000).astype(np.float32)
    padded = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(8000, np.float32)])
    trimmed = prepare_wave(padded, SpeechFrontEndConfig())
    assert abs(len(trimmed) - len(speech)) <= 320


def test_silence_short_and_long_input(caplog: pytest.LogCaptureFixture) -> None:
    cfg = SpeechFrontEndConfig()
    with pytest.raises(MediaError, match="silent"):
        prepare_wave(np.zeros(16000, np.float32), cfg, name="rec.wav")
    with pytest.raises(MediaError, match="at least 0.3 s"):
        prepare_wave(np.concatenate([np.zeros(16000), np.full(1600, 0.5)]).astype(np.float32), cfg)
    noise = np.random.default_rng(1).normal(0, 0.2, 31 * 16000).astype(np.float32)
    with caplog.at_level(logging.WARNING):
        assert len(prepare_wave(noise, cfg)) <= 30 * 16000
    assert "first 30 s" in caplog.text


def test_wrong_modality_and_corrupt_files_name_the_file(tmp_path: Path, tiny_corpus: Path) -> None:
    manifest = read_manifest(tiny_corpus / "manifest.csv")
    video, speech = manifest.resolve(manifest.of("video")[0]), manifest.resolve(manifest.of("speech")[0])
    with pytest.raises(MediaError, match=video.name):
        speech_features(video)
    with pytest.raises(MediaError, match=speech.name):
        load_clip(speech)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(MediaError, match="broken.wav"):
        speech_features(broken)


def test_other_rates_and_stereo_are_converted(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "stereo.wav", np.stack([tone, tone], axis=1), 44100)
    x = speech_features(tmp_path / "stereo.wav")
    assert x.shape[1] == 60 and 95 <= x.shape[0] <= 105  # 1 s at a 10 ms hop


def test_collate_pads_and_keeps_lengths() -> None:
    batch, lengths = collate_speech([torch.ones(5, 3), torch.ones(2, 3)])
    assert batch.shape == (2, 5, 3) and lengths.tolist() == [5, 2]
    assert batch[1, 2:].abs().sum() == 0


def test_mfcc_is_deterministic() -> None:
    wave = np.random.default_rng(2).normal(0, 0.1, 16000).astype(np.float32)
    cfg = SpeechFrontEndConfig(deltas=False)
    assert torch.equal(mfcc(wave, cfg), mfcc(wave, cfg)) and mfcc(wave, cfg).shape[1] == cfg.n_mfcc


def test_raw_mfcc_keeps_the_level_that_normalisation_removes() -> None:
    wave = np.random.default_rng(3).normal(0, 0.1, 16000).astype(np.float32)
    raw = mfcc(wave, SpeechFrontEndConfig(utterance_norm=False))
    normed = mfcc(wave, SpeechFrontEndConfig())
    assert raw.shape == normed.shape
    assert torch.allclose(normed.mean(dim=0), torch.zeros(normed.shape[1]), atol=1e-4)
    assert raw[:, 0].mean().abs() > 1.0  # c0 carries the level (in dB)
    # louder by 20 dB: the raw statistics move, the normalised features do not
    assert not torch.allclose(mfcc(10 * wave, SpeechFrontEndConfig(utterance_norm=False)), raw)
    assert torch.allclose(mfcc(10 * wave, SpeechFrontEndConfig()), normed, atol=1e-3)
