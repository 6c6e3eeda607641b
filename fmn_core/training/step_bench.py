"""Time training steps alone, in one process or under torchrun, on batches of the default recipe's shapes.

No decoding, no validation: random data of the shapes `fmn train` gives its steps (stage 1: 16
clips of the compact I3D; stage 2: P x K = 10 x 4 utterances of Whisper frames and their 44
videos), so that the figure is the step's and its gradients' exchange::

    python -m fmn_core.training.step_bench --stage fmn                       # one process, no DDP
    torchrun --standalone --nproc_per_node 2 -m fmn_core.training.step_bench --stage fmn

Every process shares each batch as in training; rank 0 prints the median time of a step.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from fmn_core.inference import resolve_device
from fmn_core.models.fmn import create_fmn
from fmn_core.models.i3d import create_i3d
from fmn_core.training.distributed import Dist, joined
from fmn_core.training.fmn_batches import SpeechSet, VideoSet, pk_batches
from fmn_core.training.fmn_stage import _start, _step
from fmn_core.training.train_config import TrainConfig
from fmn_core.training.video_stage import _Loop, _video_epoch


def _fmn_steps(dist: Dist, cfg: TrainConfig, frames: int) -> Callable[[], None]:
    """A stage-2 step on a fresh batch of 20 classes' random utterances of ``frames`` frames."""
    n_features = cfg.speech_frontend.n_features
    fmn_cfg = dataclasses.replace(cfg.fmn, speech=dataclasses.replace(cfg.fmn.speech, n_features=n_features))
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(20).repeat_interleave(20)
    speech = SpeechSet([torch.randn(frames, n_features, generator=gen) for _ in labels], labels, ["en"] * len(labels))
    video_labels = torch.cat([labels, torch.full((40,), 20)])  # and background videos
    video = VideoSet(torch.randn(len(video_labels), fmn_cfg.video.feature_dim, generator=gen), video_labels)
    stage = dataclasses.replace(cfg.fmn_stage, speaker_adversarial=0.0)  # random data has no speakers
    run = _start(create_fmn(fmn_cfg, with_video_encoder=False), (video, speech), stage, (dist.device, dist), 0, None, 0)
    batches = itertools.cycle(pk_batches(speech.labels, video.labels, stage, gen))

    def step() -> None:
        _step(run, *next(batches), gen, 0)

    return step


def _video_steps(dist: Dist, cfg: TrainConfig) -> Callable[[], None]:
    """A stage-1 step on a fresh batch of random clips, decoded as stage 1 stores them."""
    video_cfg, stage = cfg.fmn.video, cfg.video_stage
    encoder = create_i3d(dataclasses.replace(video_cfg, num_classes=21)).to(dist.device)
    if dist.active and dist.device.type == "cuda":
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(encoder)  # type: ignore[no-untyped-call]  # as stage 1 does
    side = round(video_cfg.input_size * stage.store_margin)
    shape = (stage.batch_size, 3, video_cfg.input_frames * stage.store_factor, side, side)
    clips = torch.randint(0, 256, shape, dtype=torch.uint8)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=stage.lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=stage.lr, total_steps=100_000)
    loss_fn = torch.nn.CrossEntropyLoss()
    train = (clips, torch.randint(0, 21, (len(clips),)))
    loop = _Loop(dist.wrap(encoder), train, stage, video_cfg.input_frames, video_cfg.input_size, dist.device,
                 torch.Generator().manual_seed(0), optimizer, scheduler, loss_fn, 100_000, None, dist)  # fmt: skip

    def step() -> None:
        _video_epoch(loop, 0)  # an epoch of one batch

    return step


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmn_core.training.step_bench", description=__doc__)
    parser.add_argument("--stage", choices=("fmn", "video"), default="fmn", help="stage 2 (fmn) or stage 1 (video)")
    parser.add_argument("--steps", type=int, default=20, help="steps timed, after 3 not timed")
    parser.add_argument("--frames", type=int, default=150, help="frames per utterance (Whisper's 20 ms: 3 s)")
    parser.add_argument("--front-end", default="whisper-base", help="the speech front end whose frames are mimicked")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args(argv)
    cfg = TrainConfig.for_front_end(args.front_end)
    with joined(resolve_device(args.device)) as dist:
        step = _fmn_steps(dist, cfg, args.frames) if args.stage == "fmn" else _video_steps(dist, cfg)
        times = []
        for i in range(3 + args.steps):
            t0 = time.perf_counter()
            step()
            if dist.device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 3:
                times.append(time.perf_counter() - t0)
        if dist.is_main:
            threads = torch.get_num_threads()
            print(f"stage {args.stage}, {dist.world} process(es) on {dist.device.type}, {threads} thread(s) each, "
                  f"DDP {'on' if dist.active else 'off'}: median step {1000 * statistics.median(times):.0f} ms "
                  f"(min {1000 * min(times):.0f}, {args.steps} steps)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
