"""Training under torchrun: two gloo processes take one process's step, and `fmn train` checkpoints and resumes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from fmn_core.features.audio import SpeechFrontEndConfig
from fmn_core.models.fmn import FMNConfig, create_fmn
from fmn_core.models.i3d import I3DConfig
from fmn_core.models.speech import SpeechEncoderConfig
from fmn_core.training.distributed import SINGLE, Dist, DistributedError, joined
from fmn_core.training.fmn_batches import SpeechSet, VideoSet, pk_batches
from fmn_core.training.fmn_stage import _start, _step
from fmn_core.training.fmn_stage_config import FMNStageConfig
from fmn_core.training.video_stage import augment

REPO = Path(__file__).resolve().parents[2]

# Every term of the loss at once, the hardest negatives (mined over the whole batch) among them, and
# 9 speech clips per batch, which 2 ranks share unevenly. No dropout: its masks differ per rank.
NET = FMNConfig(
    video=I3DConfig(stem_dim_out=8, input_frames=8, input_size=64),
    speech=SpeechEncoderConfig(n_features=SpeechFrontEndConfig().n_features, hidden=16, frame_stack=3, dropout=0.0),
    embed_dim=16,
    fusion_hidden=16,
    fusion_dropout=0.0,
    memory_capacity=4,
)
STAGE = FMNStageConfig(
    classes_per_batch=3, per_class=3, background_per_batch=2, hard_negatives=True, speaker_adversarial=0.5
)


def _data() -> tuple[VideoSet, SpeechSet]:
    """Three classes of speech (two speeds each, four speakers) and video, and background videos."""
    gen = torch.Generator().manual_seed(5)
    labels = torch.arange(3).repeat_interleave(6)
    feats = [torch.randn(int(torch.randint(20, 40, (1,), generator=gen)), NET.speech.n_features, generator=gen)
             for _ in labels]  # fmt: skip
    variants = [[f, f[::2].clone()] for f in feats]
    speakers = ["a", "b", "c", "d", "", "a"] * 3
    speech = SpeechSet(feats, labels, ["en"] * len(labels), variants, speakers)
    video_labels = torch.cat([torch.arange(3).repeat_interleave(4), torch.full((3,), 3)])  # 3: background
    return VideoSet(torch.randn(len(video_labels), NET.video.feature_dim, generator=gen), video_labels), speech


def _one_step(dist: Dist) -> dict[str, torch.Tensor]:
    """Stage 2's first step on its first batch: the gradients it applied and the weights after it."""
    torch.manual_seed(0)
    model = create_fmn(NET, with_video_encoder=False)
    run = _start(model, _data(), STAGE, (torch.device("cpu"), dist), 3, None, 0)
    generator = torch.Generator().manual_seed(3 * 1009)
    s_idx, v_idx = pk_batches(run.speech.labels, run.video.labels, STAGE, generator)[0]
    _step(run, s_idx, v_idx, generator, 0)
    named = dict(model.named_parameters())
    out = {f"grad.{k}": p.grad for k, p in named.items() if p.grad is not None}
    return out | {f"param.{k}": p.detach().clone() for k, p in named.items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_step(rank: int, world: int, port: int, out: str) -> None:
    """One rank of ``mp.spawn``: join up as torchrun's workers do, take the step, save what it did."""
    env = {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": world, "LOCAL_WORLD_SIZE": world, "MASTER_PORT": port}
    os.environ.update({k: str(v) for k, v in env.items()} | {"MASTER_ADDR": "127.0.0.1"})
    torch.set_num_threads(1)
    with joined(torch.device("cpu")) as dist:
        assert dist.active and dist.rank == rank
        save_file({k: v.contiguous() for k, v in _one_step(dist).items()}, f"{out}/rank{rank}.safetensors")


def test_two_gloo_processes_take_the_step_one_process_takes_on_the_same_batch(tmp_path: Path) -> None:
    one = _one_step(SINGLE)
    mp.spawn(_rank_step, args=(2, _free_port(), str(tmp_path)), nprocs=2)
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]
    assert any(k.startswith("grad.speech_encoder.") for k in one) and "grad.fusion.out.weight" in one
    for k, expected in one.items():
        for r, got in enumerate(ranks):
            torch.testing.assert_close(got[k], expected, atol=1e-5, rtol=1e-4, msg=f"rank {r}: {k}")
    for k in ranks[0]:  # the ranks took the very same step
        assert torch.equal(ranks[0][k], ranks[1][k]), k


def test_a_batch_is_shared_out_in_order_and_a_single_process_keeps_it_whole() -> None:
    three = [Dist(rank=r, world=3) for r in range(3)]
    assert three[0].sizes(10) == [3, 3, 4]
    assert [list(range(10))[d.share(10)] for d in three] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert SINGLE.share(7) == slice(0, 7) and SINGLE.sizes(7) == [7]
    x = torch.ones(4, 2, requires_grad=True)
    assert SINGLE.gather(x, 4) is x  # no group, nothing to gather
    assert SINGLE.broadcast_ints([3, 4]) == [3, 4] and SINGLE.sum([1.5]) == [1.5]


def test_a_ranks_share_of_augmented_clips_is_the_same_clips_and_leaves_the_generator_in_step() -> None:
    clips = torch.randint(0, 255, (5, 3, 8, 20, 20), dtype=torch.uint8)
    whole_gen, part_gen = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    whole = augment(clips, 4, 16, True, whole_gen)
    part = augment(clips, 4, 16, True, part_gen, keep=slice(2, 4))
    assert torch.equal(part, whole[2:4])
    assert torch.equal(whole_gen.get_state(), part_gen.get_state())


def test_half_of_torchruns_environment_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DistributedError, match="torchrun --nproc_per_node"), joined(torch.device("cpu")):
        pass


def _torchrun_train(manifest: Path, out: Path) -> subprocess.CompletedProcess[str]:
    args = ["--nproc_per_node", "2", "--standalone", "-m", "fmn_core.cli", "train", "--manifest", str(manifest),
            "--out", str(out), "--device", "cpu", "--front-end", "mfcc", "--video-epochs", "1", "--epochs", "2",
            "--memory-pairs", "50", "--jobs", "1"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _pretend_stopped_after_epoch_1(path: Path) -> None:
    """Rewrite stage 2's work checkpoint as a run stopped after its first epoch would have left it."""
    with safe_open(str(path), "pt") as f:
        meta = json.loads((f.metadata() or {})["meta"])
    meta |= {"epoch": 1, "history": meta["history"][:1]}
    save_file(load_file(str(path)), str(path), metadata={"meta": json.dumps(meta)})


@pytest.mark.slow
def test_fmn_train_under_torchrun_writes_one_model_from_rank_0_and_resumes(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    first = _torchrun_train(tiny_corpus / "manifest.csv", out)
    assert first.stdout.count("wrote ") == 1  # rank 0 reports; rank 1 says nothing
    assert "training on 2 processes (cpu)" in first.stderr
    assert sorted(p.name for p in (out / "work").iterdir() if not p.name.startswith("speech-")) == [
        "fmn_stage.safetensors", "video_encoder.safetensors",
    ]  # fmt: skip  # and no temporary file left by a second writer
    record = json.loads((out / "training.json").read_text())
    assert record["reused"] == [] and [e["epoch"] for e in record["fmn_history"]] == [1, 2, 2]
    _pretend_stopped_after_epoch_1(out / "work" / "fmn_stage.safetensors")
    (out / "model.safetensors").unlink()
    second = _torchrun_train(tiny_corpus / "manifest.csv", out)
    assert "stage 2: resuming after epoch 1" in second.stderr
    record = json.loads((out / "training.json").read_text())
    assert record["reused"] == ["stage1_video", "stage2_fmn"]
    assert [e["epoch"] for e in record["fmn_history"]] == [1, 2, 2]  # epoch 2 again, and the average
    assert (out / "model.safetensors").is_file()


def test_wrapping_works_with_a_torch_before_forward_sync_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    # GPU images carry their own torch build; DDP of torch < 2.13 has no forward_sync_buffers.
    made: list[dict[str, object]] = []

    def old_ddp(module: nn.Module, find_unused_parameters: bool = False, broadcast_buffers: bool = True) -> nn.Module:
        made.append({"find_unused_parameters": find_unused_parameters, "broadcast_buffers": broadcast_buffers})
        return module

    monkeypatch.setattr(nn.parallel, "DistributedDataParallel", old_ddp)
    model = nn.Linear(2, 2)
    assert Dist(world=2, active=True).wrap(model, find_unused_parameters=True) is model
    assert made == [{"find_unused_parameters": True, "broadcast_buffers": True}]  # buffers synced, as at the start
