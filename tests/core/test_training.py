"""Training end to end on a small corpus, resuming, and the stage-2 building blocks."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from fmn_core.cli import main as fmn_main
from fmn_core.commands.model import _held_out_summary
from fmn_core.corpus.generate import CorpusSpec, generate_corpus
from fmn_core.corpus.video import RenderSettings
from fmn_core.errors import FmnError
from fmn_core.eval.device_check import main as device_check_main
from fmn_core.eval.evaluate import evaluate
from fmn_core.eval.metrics import random_metrics
from fmn_core.features.audio import SpeechFrontEndConfig
from fmn_core.inference import FMNModel
from fmn_core.losses import TripletRankingLoss
from fmn_core.manifest import read_manifest
from fmn_core.models.fmn import FMNConfig, create_fmn
from fmn_core.models.i3d import I3DConfig
from fmn_core.models.speech import SpeechEncoderConfig
from fmn_core.splits import SplitSpec
from fmn_core.training.fmn_batches import SpeechSet, VideoSet, pk_batches, spec_augment
from fmn_core.training.fmn_stage import _running_average, _speaker_head, train_fmn_stage
from fmn_core.training.fmn_stage_config import FMNStageConfig
from fmn_core.training.fmn_validation import _selection_value
from fmn_core.training.train import train
from fmn_core.training.train_config import TrainConfig
from fmn_core.training.video_stage import VideoStageConfig

SMALL = CorpusSpec(
    classes=("cut_onion", "pour_milk", "stir_pan"),
    videos_per_class=20,  # fewer and the tiny I3D sees too few clips to learn the classes at all
    utterances_per_class=20,
    seed=4,
    render=RenderSettings(width=96, height=72, min_seconds=1.0, max_seconds=1.6),
    split=SplitSpec(holdout_voices=True),
)

# A small network of the same architecture, so a CPU trains it in well under a minute.
SMALL_TRAINING = TrainConfig(
    fmn=FMNConfig(
        video=I3DConfig(stem_dim_out=8, input_frames=8, input_size=64),
        speech=SpeechEncoderConfig(hidden=64, frame_stack=3),
        embed_dim=64,
        fusion_hidden=64,
        memory_capacity=8,
    ),
    speech_frontend=SpeechFrontEndConfig(),  # the paper's MFCCs: cheap, and what these figures were set on
    video_stage=VideoStageConfig(epochs=12, batch_size=8, lr=1e-2),
    fmn_stage=FMNStageConfig(epochs=20, classes_per_batch=3, fill_pairs=300, t1_grid=(0.5, 0.9), t2_grid=(0.5, 0.9)),
    seed=1,
)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small_corpus")
    generate_corpus(out, SMALL, jobs=2)
    return out


@pytest.fixture(scope="module")
def trained(small_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    train(small_corpus / "manifest.csv", out, SMALL_TRAINING, jobs=2)
    return out


def test_training_beats_random_ranking_on_unseen_test_data(trained: Path, small_corpus: Path) -> None:
    model = FMNModel.load(trained)
    report = evaluate(model, small_corpus / "manifest.csv", split="test", jobs=2)
    fmn = report.results[report.shipped]["all"]
    chance = report.results["random ranking (expected)"]["all"]
    # The test speech is of voice families training never heard, and these tests train the paper's
    # MFCC front end, whose frames carry the voice more than the words (docs/benchmarks.md: a probe
    # on them is at chance for unheard families): both directions are only asked to beat chance.
    margins = {"speech->video": 0.0, "video->speech": 0.0}
    for direction, margin in margins.items():
        assert fmn[direction].map > chance[direction].map + margin, (direction, fmn[direction], chance[direction])
    assert report.voices["shared"] == []  # test speech comes from voices never heard in training
    assert report.voices["seen_items"] == 0
    # per speaker: every test utterance is a query of exactly one speaker's row
    speakers = report.by_speaker
    assert speakers and all(name.endswith(("(en)", "(zh)")) for name in speakers)
    n_speech = report.counts["speech"]
    assert sum(by_dir["speech->video"].n_queries for by_dir in speakers.values()) == n_speech


def test_eval_flags_a_test_split_the_model_has_trained_on(trained: Path, small_corpus: Path, tmp_path: Path) -> None:
    """A manifest split differently from the model's training manifest is caught by the model's record."""
    text = (small_corpus / "manifest.csv").read_text()
    root = str(small_corpus)
    resplit = text.replace(",train,", ",test,").replace("video/", f"{root}/video/")
    resplit = resplit.replace("speech/", f"{root}/speech/")
    (tmp_path / "manifest.csv").write_text(resplit)
    report = evaluate(FMNModel.load(trained), tmp_path / "manifest.csv", split="test", jobs=2)
    training = json.loads((trained / "training.json").read_text())["seen"]
    assert report.voices["seen_items"] == sum(1 for line in text.splitlines() if ",train," in line)
    assert report.voices["shared"] and set(report.voices["shared"]) <= set(training["speakers"])


def test_eval_says_a_validation_split_is_not_held_out_without_calling_it_a_wrong_split() -> None:
    check = {"evaluated_speakers": 2, "shared": ["slt"], "seen_items": 30, "model_has_record": True}
    on_val = _held_out_summary({**check, "split": "val"})
    assert "chose its settings" in on_val and "WARNING" not in on_val
    on_test = _held_out_summary({**check, "split": "test"})
    assert "WARNING: 30 evaluated items" in on_test and "not split as" in on_test


def test_the_model_folder_carries_what_inference_needs(trained: Path, small_corpus: Path) -> None:
    model = FMNModel.load(trained)
    manifest_lines = (small_corpus / "manifest.csv").read_text().splitlines()
    assert model.class_names == sorted(SMALL.classes)
    assert model.cfg.video.num_classes == 3
    assert model.video_frontend.frames == 8 and model.video_frontend.size == 64
    training = json.loads((trained / "training.json").read_text())
    choice = training["memory"]["choice"]
    assert choice["combination"] == model.cfg.combination and choice["readout"] == model.cfg.memory_readout
    assert choice["averaging"] == model.cfg.memory_averaging and choice["t2"] == model.cfg.t2
    candidates = training["memory"]["candidates"]
    assert {c["readout"] for c in candidates} == {"max", "soft"}
    assert {c["averaging"] for c in candidates} == {"mean", "ema"}
    assert sum(c["combination"] == "none" for c in candidates) == 1  # S = S1 is judged once
    averaged = [e for e in training["fmn_history"] if "averaged_epochs" in e]  # the weight average was a candidate
    assert len(averaged) == 1 and averaged[0]["averaged_epochs"] == SMALL_TRAINING.fmn_stage.average_last
    assert choice["val_value"] == max(c["value"] for c in candidates)  # validation chose the best candidate
    test_ids = {line.split(",")[0] for line in manifest_lines if ",test," in line}
    assert training["seen"]["speakers"] and test_ids and not test_ids & set(training["seen"]["ids"])
    assert {"stage1_video", "features", "stage2_fmn", "memory"} <= set(training["seconds"])
    assert model.net.memory.video.num_used > 0 or model.cfg.combination == "none"


def test_a_second_run_resumes_from_the_work_checkpoints(trained: Path, small_corpus: Path) -> None:
    before = FMNModel.load(trained)
    train(small_corpus / "manifest.csv", trained, SMALL_TRAINING, jobs=2)  # every stage is in work/
    after = FMNModel.load(trained)
    for (name, a), (_, b) in zip(before.net.state_dict().items(), after.net.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    training = json.loads((trained / "training.json").read_text())
    assert training["reused"] == ["stage1_video", "stage2_fmn"]
    assert training["seconds"]["stage1_video"] > 0 and training["seconds"]["stage2_fmn"] > 0  # the first run's time


def test_a_change_to_the_speech_alone_reuses_stage_1_and_retrains_stage_2(
    trained: Path, small_corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    shutil.copytree(trained / "work", out / "work")
    lines = (small_corpus / "manifest.csv").read_text().splitlines()
    absolute = [lines[0]] + [
        r.replace("video/", f"{small_corpus}/video/", 1).replace("speech/", f"{small_corpus}/speech/", 1)
        for r in lines[1:]
    ]
    dropped = next(i for i, r in enumerate(absolute) if ",speech," in r and ",train," in r)
    (tmp_path / "manifest.csv").write_text("\n".join(absolute[:dropped] + absolute[dropped + 1 :]) + "\n")
    report = train(tmp_path / "manifest.csv", out, SMALL_TRAINING, jobs=2)
    training = json.loads((out / "training.json").read_text())
    assert training["reused"] == ["stage1_video"]  # same videos, other speech: stage 2 must learn it
    assert report.counts["speech_train"] == sum(",speech," in r and ",train," in r for r in lines) - 1


def test_unreadable_rows_are_skipped_and_reported(small_corpus: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.mp4").write_bytes(b"not a video at all")
    rows = (small_corpus / "manifest.csv").read_text().splitlines()
    rows = [
        r.replace("video/", f"{small_corpus}/video/", 1).replace("speech/", f"{small_corpus}/speech/", 1) for r in rows
    ]
    rows.append(f"v_broken,video,{broken / 'bad.mp4'},cut_onion,train,,,,")
    (broken / "manifest.csv").write_text("\n".join(rows) + "\n")
    quick = dataclasses.replace(
        SMALL_TRAINING,
        video_stage=VideoStageConfig(epochs=1, batch_size=8),
        fmn_stage=FMNStageConfig(epochs=1, classes_per_batch=3, fill_pairs=20, t1_grid=(0.5,), t2_grid=(0.5,)),
    )
    report = train(broken / "manifest.csv", tmp_path / "model", quick, jobs=2)
    assert [f.id for f in report.failures] == ["v_broken"]
    assert "bad.mp4" in report.failures[0].path


def test_cli_train_refuses_a_manifest_without_splits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "manifest.csv").write_text("id,modality,path,label\nv1,video,a.mp4,cut_onion\n")
    assert fmn_main(["train", "--manifest", str(tmp_path / "manifest.csv"), "--out", str(tmp_path / "m")]) == 2
    assert "split" in capsys.readouterr().err


def test_cli_train_refuses_cuda_without_a_gpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert fmn_main(["train", "--manifest", "x.csv", "--out", str(tmp_path), "--device", "cuda"]) == 2
    assert "CUDA" in capsys.readouterr().err


def test_pk_batches_hold_p_classes_of_k_items() -> None:
    speech = torch.arange(5).repeat_interleave(6)
    video = torch.arange(5).repeat_interleave(3)
    cfg = FMNStageConfig(classes_per_batch=4, per_class=2)
    batches = pk_batches(speech, video, cfg, torch.Generator().manual_seed(0))
    assert len(batches) == 4  # 30 utterances / (4 x 2)
    for s_idx, v_idx in batches:
        assert len(s_idx) == len(v_idx) == 8
        counts = np.bincount(speech[s_idx].numpy(), minlength=5)
        assert sorted(counts[counts > 0].tolist()) == [2, 2, 2, 2]
        assert speech[s_idx].tolist() == video[v_idx].tolist()  # the same classes in the same order


def test_background_videos_join_every_batch_as_negatives_only() -> None:
    speech = torch.arange(3).repeat_interleave(4)
    video = torch.cat([torch.arange(3).repeat_interleave(2), torch.full((5,), 3)])  # label 3: no speech
    cfg = FMNStageConfig(classes_per_batch=2, per_class=2, background_per_batch=3)
    for s_idx, v_idx in pk_batches(speech, video, cfg, torch.Generator().manual_seed(0)):
        assert len(v_idx) == 4 + 3 and video[v_idx[-3:]].tolist() == [3, 3, 3]
        assert speech[s_idx].tolist() == video[v_idx[:4]].tolist()
    # in the loss a background video is a negative of every speech anchor and an anchor of nothing
    torch.manual_seed(0)
    v, a = torch.randn(3, 8), torch.randn(2, 8)
    loss = TripletRankingLoss(0.2)
    with_background = loss(torch.cat([v, torch.randn(1, 8)]), a, torch.tensor([0, 1, 1, 9]), torch.tensor([0, 1]))
    assert with_background > 0 and torch.isfinite(with_background)
    plain = pk_batches(speech, video[:6], cfg, torch.Generator().manual_seed(0))  # none: batches as before
    assert all(len(v_idx) == 4 for _, v_idx in plain)


def test_speaker_balanced_batches_draw_a_rare_voice_as_often_as_a_common_one() -> None:
    # one class: speaker "common" has 9 utterances, "rare" has 1
    speakers = ["common"] * 9 + ["rare"]
    speech = SpeechSet([torch.zeros(4, 2)] * 10, torch.zeros(10, dtype=torch.int64), ["en"] * 10, None, speakers)
    weights = speech.speaker_weights()
    assert torch.allclose(weights, torch.tensor([1 / 9] * 9 + [1.0]))
    cfg = FMNStageConfig(classes_per_batch=1, per_class=1)
    generator = torch.Generator().manual_seed(0)
    drawn = [int(s) for _ in range(2000) for s, _ in pk_batches(speech.labels, torch.zeros(2), cfg, generator, weights)]
    rare = drawn.count(9) / len(drawn)
    assert 0.45 < rare < 0.55  # half the draws, against 1 in 10 without balancing


def test_running_average_is_the_mean_of_float_tensors_and_keeps_the_latest_counters() -> None:
    states = [{"w": torch.tensor([float(i), 2.0 * i]), "hits": torch.tensor([i])} for i in range(1, 5)]
    average = None
    for n, state in enumerate(states, start=1):
        average = _running_average(average, state, n)
    assert average is not None
    assert torch.allclose(average["w"], torch.tensor([2.5, 5.0])) and average["hits"].tolist() == [4]
    assert states[0]["w"].tolist() == [1.0, 2.0]  # the states themselves are untouched


def test_the_selection_figure_weighs_every_validation_speaker_equally() -> None:
    # 2 classes, 2 videos; "many" speaks 8 clips, all ranked right; "few" speaks 2, both ranked wrong
    video = VideoSet(torch.randn(2, 4), torch.tensor([0, 1]))
    labels = torch.tensor([0, 1] * 5)
    right = np.where(labels.numpy()[None, :] == np.array([[0], [1]]), 0.9, 0.1)
    scores = right.copy()
    scores[:, 8:] = np.where(right[:, 8:] > 0.5, 0.2, 0.3)  # the last two clips, by "few", prefer the wrong video
    speech = SpeechSet([], labels, [], None, ["many"] * 8 + ["few"] * 2)
    by_speaker = _selection_value(scores, video, speech, FMNStageConfig(selection_metric="r1", selection_by="speaker"))
    by_clip = _selection_value(scores, video, speech, FMNStageConfig(selection_metric="r1", selection_by="clip"))
    # speech->video R@1: 1.0 for "many", 0.0 for "few" (0.8 over clips); video->speech R@1: 1.0 and 0.0 (1.0 over clips)
    assert by_speaker == pytest.approx(0.5) and by_clip == pytest.approx(0.9)
    # no families known: the default, 'family', falls back to the figure over all clips
    assert _selection_value(scores, video, speech, FMNStageConfig(selection_metric="r1")) == pytest.approx(0.9)


def test_the_selection_figure_can_weigh_every_validation_family_equally() -> None:
    # "many" and "many2" (8 clips, one family) ranked right, "few" (2 clips, another family) wrong
    video = VideoSet(torch.randn(2, 4), torch.tensor([0, 1]))
    labels = torch.tensor([0, 1] * 5)
    right = np.where(labels.numpy()[None, :] == np.array([[0], [1]]), 0.9, 0.1)
    scores = right.copy()
    scores[:, 8:] = np.where(right[:, 8:] > 0.5, 0.2, 0.3)
    speakers = ["many"] * 4 + ["many2"] * 4 + ["few"] * 2
    speech = SpeechSet([], labels, [], None, speakers, families=["espeak"] * 8 + ["piper"] * 2)
    cfg = FMNStageConfig(selection_metric="r1")
    assert cfg.selection_by == "family"
    assert _selection_value(scores, video, speech, cfg) == pytest.approx(0.5)  # (1 + 0) / 2 families
    by_speaker = FMNStageConfig(selection_metric="r1", selection_by="speaker")
    assert _selection_value(scores, video, speech, by_speaker) == pytest.approx(2 / 3)  # (1 + 1 + 0) / 3 speakers
    with pytest.raises(ValueError, match="selection_by"):
        FMNStageConfig(selection_by="voice")


def test_the_speaker_head_knows_each_training_voice_and_skips_items_without_one() -> None:
    net = create_fmn(SMALL_TRAINING.fmn, with_video_encoder=False)
    speech = SpeechSet([torch.zeros(5, 3)] * 4, torch.tensor([0, 0, 1, 1]), ["en"] * 4, speakers=["b", "a", "", "b"])
    on = FMNStageConfig()
    head, ids = _speaker_head(net, speech, on, seed=0, device=torch.device("cpu"))
    assert head is not None and head(torch.zeros(1, net.speech_proj.out_features)).shape == (1, 2)
    assert ids.tolist() == [1, 0, -1, 1]  # sorted speaker names; -1: no speaker, left out of the loss
    off = FMNStageConfig(speaker_adversarial=0.0)
    assert _speaker_head(net, speech, off, 0, torch.device("cpu"))[0] is None
    one_voice = dataclasses.replace(speech, speakers=["a"] * 4)
    assert _speaker_head(net, one_voice, on, 0, torch.device("cpu"))[0] is None  # nobody to tell apart


def test_batches_without_a_known_speaker_leave_the_adversary_out_instead_of_making_nan() -> None:
    net = create_fmn(SMALL_TRAINING.fmn, with_video_encoder=False)
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    feats = [torch.randn(12, SMALL_TRAINING.speech_frontend.n_features, generator=gen) for _ in labels]
    speech = SpeechSet(feats, labels, ["en"] * 8, speakers=["a", "b", "a", "b", "", "", "", ""])
    video = VideoSet(torch.randn(8, SMALL_TRAINING.fmn.video.feature_dim, generator=gen), labels.clone())
    empty = (VideoSet(torch.zeros(0, video.feats.shape[1]), torch.zeros(0, dtype=torch.int64)), speech)
    # One class per batch: every batch of class 1 has no known speaker.
    cfg = FMNStageConfig(epochs=3, classes_per_batch=1, per_class=2, average_last=0, speed_perturb=(1.0,))
    trained, history = train_fmn_stage(net, (video, speech), empty, cfg, torch.device("cpu"))
    assert all(torch.isfinite(p).all() for p in trained.parameters())
    assert all(np.isfinite(e["loss"]) for e in history)
    assert any(e.get("speaker_ce", 0) > 0 for e in history)  # epochs with known speakers trained the adversary


def test_spec_augment_masks_without_touching_the_input() -> None:
    x = torch.ones(100, 120)
    y = spec_augment(x, FMNStageConfig(), torch.Generator().manual_seed(3))
    assert torch.equal(x, torch.ones(100, 120))
    assert y.shape == x.shape and 0 < int((y == 0).sum()) < y.numel() // 2


def test_random_reference_is_what_the_report_calls_chance() -> None:
    # The margin asserted above is against the exact expectation of a random ranking.
    m = random_metrics(["a", "b", "c"], ["a", "a", "b", "b", "c", "c"], ks=(1,))
    assert m.recall_at[1] == pytest.approx(1 / 3)


def test_a_whisper_front_end_trains_on_the_frozen_i3d_of_another_model(
    trained: Path, small_corpus: Path, tmp_path: Path
) -> None:
    cfg = TrainConfig.for_front_end(
        "whisper-tiny.en",
        video_stage=SMALL_TRAINING.video_stage,
        fmn_stage=dataclasses.replace(SMALL_TRAINING.fmn_stage, epochs=3, speed_perturb=(0.9, 1.0)),
        seed=1,
    )
    cfg = dataclasses.replace(
        cfg, fmn=dataclasses.replace(SMALL_TRAINING.fmn, speech=dataclasses.replace(cfg.fmn.speech, hidden=32))
    )
    report = train(small_corpus / "manifest.csv", tmp_path, cfg, jobs=2, video_encoder_from=trained)
    training = json.loads((tmp_path / "training.json").read_text())
    assert training["reused"] == ["stage1_video"]
    model = FMNModel.load(tmp_path)
    source = FMNModel.load(trained)
    assert model.speech_frontend.kind == "whisper-tiny.en" and model.speech_frontend.encoder_sha256
    assert model.cfg.speech.n_features == 384 and model.speech_status() is None
    for (name, a), (_, b) in zip(
        model.net.video_encoder.state_dict().items(), source.net.video_encoder.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name  # stage 1 borrowed, not retrained
    assert set(source.extra["training"]["seen"]["ids"]) <= set(training["seen"]["ids"])  # what it saw is on record
    speech = read_manifest(small_corpus / "manifest.csv").of("speech", "test")[0]
    assert model.speech_raw(small_corpus / speech.path).shape == (model.cfg.speech.output_dim,)
    assert report.counts["classes"] == len(source.class_names)
    assert list((tmp_path / "work").glob("speech-*.safetensors"))  # encoder frames cached for the next run


def test_borrowing_an_i3d_of_other_classes_is_refused(trained: Path, small_corpus: Path, tmp_path: Path) -> None:
    model = FMNModel.load(trained)
    model.class_names = [*model.class_names[:-1], "wash_plate"]
    model.save(tmp_path / "other")
    with pytest.raises(FmnError, match="classes"):
        train(
            small_corpus / "manifest.csv",
            tmp_path / "new",
            SMALL_TRAINING,
            jobs=2,
            video_encoder_from=tmp_path / "other",
        )


def test_the_device_check_says_it_needs_a_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(FmnError, match="CUDA"):
        device_check_main([])
