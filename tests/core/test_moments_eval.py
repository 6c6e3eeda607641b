"""`fmn eval --moments` end to end on two small recipe videos (a random model: the mechanics, not the figures)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fmn_core.cli import main
from fmn_core.eval.moments_eval import evaluate_moments
from fmn_core.features.video import window_clips
from fmn_core.inference import FMNModel
from fmn_core.manifest import read_manifest
from fmn_core.models import FMNConfig, create_fmn
from fmn_core.models.speech import SpeechEncoderConfig


@pytest.fixture
def recipes(recipe_corpus: Path) -> Path:
    return recipe_corpus


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    cfg = FMNConfig(speech=SpeechEncoderConfig(hidden=32, frame_stack=3), embed_dim=32, fusion_hidden=32)
    folder = tmp_path_factory.mktemp("model") / "m"
    FMNModel(create_fmn(cfg).eval(), cfg).save(folder)
    return folder


def test_window_clips_match_decoding_each_window(recipes: Path, model_dir: Path) -> None:
    from fmn_core.features.video import decode_clip

    model = FMNModel.load(model_dir)
    path = str(recipes / "recipes" / "recipe_000.mp4")
    spans = [(0.0, 2.0), (1.0, 3.0), (2.5, 4.5)]
    together = window_clips(path, spans, model.video_frontend, middles=[1])
    assert together.missing == 0 and set(together.middles) == {1}
    for clip, span in zip(together.clips, spans, strict=True):
        assert np.array_equal(clip, decode_clip(path, model.video_frontend, span).numpy())
    # a stretch further in is read from a seek, and still gives the frames decode_clip samples
    later = [(3.0, 5.0), (4.0, 6.0)]
    for clip, span in zip(window_clips(path, later, model.video_frontend).clips, later, strict=True):
        assert np.array_equal(clip, decode_clip(path, model.video_frontend, span).numpy())


def test_moment_retrieval_reports_every_protocol_beside_chance(
    recipes: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = evaluate_moments(FMNModel.load(model_dir), recipes / "manifest.csv", length=2.0, hop=1.0, jobs=1)
    manifest = read_manifest(recipes / "manifest.csv")
    assert report.counts["videos"] == 2 and report.counts["segments"] == len([r for r in manifest.rows if r.segment])
    figures = report.figures["all"]
    assert set(figures) == {
        "FMN, within the video", "every window equally likely, within",
        "FMN, across the library", "every window equally likely, across",
    }  # fmt: skip
    for method in figures.values():
        assert all(0.0 <= v <= 1.0 for v in method.values()) and len(method) == 6
        assert method["R@5 IoU0.3"] >= method["R@1 IoU0.3"] >= method["R@1 IoU0.7"]
    argv = ["eval", "--moments", "--model", str(model_dir), "--manifest", str(recipes / "manifest.csv"),
            "--window", "2", "--json", str(tmp_path / "m.json"), "--jobs", "1",
            "--plot", str(tmp_path / "s.png")]  # fmt: skip
    assert main(argv) == 0
    import cv2

    strip = cv2.imread(str(tmp_path / "s.png"))
    assert strip is not None and strip.shape[1] == 960 and (strip < 250).any()
    assert "R@1 IoU0.5" in capsys.readouterr().out
    assert json.loads((tmp_path / "m.json").read_text())["counts"]["videos"] == 2


def test_a_broken_stretch_costs_its_frames_not_the_video(recipes: Path, model_dir: Path, tmp_path: Path) -> None:
    model = FMNModel.load(model_dir)
    whole = bytearray((recipes / "recipes" / "recipe_000.mp4").read_bytes())
    damaged = tmp_path / "damaged.mp4"
    third = len(whole) // 3
    whole[third : third + len(whole) // 10] = bytes(len(whole) // 10)  # a stretch of the picture data zeroed
    damaged.write_bytes(bytes(whole))
    decoded = window_clips(str(damaged), [(0.0, 1.0), (3.0, 4.0), (5.0, 6.0)], model.video_frontend)
    assert decoded.clips.shape[0] == 3 and decoded.missing >= 0  # decoded as far as it can be: never a crash
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(bytes(whole[: len(whole) // 2]))  # its index (at the end) is gone: nothing to read
    from fmn_core.media.errors import MediaError

    with pytest.raises(MediaError, match="truncated.mp4"):
        window_clips(str(truncated), [(0.0, 1.0)], model.video_frontend)


def test_a_manifest_without_segments_is_refused(tiny_corpus: Path, model_dir: Path) -> None:
    from fmn_core.errors import FmnError

    with pytest.raises(FmnError, match="no video rows with start/end"):
        evaluate_moments(FMNModel.load(model_dir), tiny_corpus / "manifest.csv")
