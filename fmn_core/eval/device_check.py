"""Does a model give the same answers on the GPU as on the CPU, and how fast is each?

Runs the network's own stages (I3D on clips, Bi-LSTM on front-end frames, the projections and
the pairwise scores with the memory) on the same random inputs on both devices, and prints the
largest difference and the median time of each stage::

    python -m fmn_core.eval.device_check --model models/fmn-cooking-v4

Random inputs are enough here: the question is whether the CUDA kernels compute what the CPU
ones do, not what the model retrieves. The speech front end (Whisper through CTranslate2) is
not part of it; its frames are mimicked by random ones of its width.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import torch

from fmn_core.errors import FmnError
from fmn_core.eval.latency import measure
from fmn_core.inference import FMNModel


def _stages(model: FMNModel, clips: torch.Tensor, frames: list[torch.Tensor]) -> dict[str, Callable[[], torch.Tensor]]:
    """Each stage as a call returning its output on the CPU."""

    def video() -> torch.Tensor:
        return model.video_raw_from_clips(clips)

    def speech() -> torch.Tensor:
        return model.speech_raw_from_mfcc(frames)

    v_raw, a_raw = video(), speech()
    return {
        "I3D, clips": video,
        "Bi-LSTM, utterances": speech,
        "projections": lambda: torch.cat([model.embed_video(v_raw), model.embed_speech(a_raw)]),
        "scores with the memory": lambda: model.score_pairwise(v_raw, a_raw).s,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmn_core.eval.device_check", description=__doc__)
    parser.add_argument("--model", default=None, help="model folder or file (default: the shipped model)")
    parser.add_argument("--clips", type=int, default=16, help="clips per I3D call")
    parser.add_argument("--utterances", type=int, default=64, help="utterances per Bi-LSTM call")
    parser.add_argument("--frames", type=int, default=150, help="front-end frames per utterance (3 s of Whisper's)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each stage")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise FmnError("no CUDA device here: this check compares the CPU with a GPU")
    gen = torch.Generator().manual_seed(0)
    cpu = FMNModel.load(args.model, device="cpu")
    gpu = FMNModel.load(args.model, device="cuda")
    fe, vcfg = cpu.video_frontend, cpu.cfg.video
    clips = torch.randn(args.clips, 3, vcfg.input_frames, vcfg.input_size, vcfg.input_size, generator=gen)
    width = cpu.speech_frontend.n_features
    frames = [torch.randn(args.frames, width, generator=gen) for _ in range(args.utterances)]
    print(f"{cpu.name}: {fe.frames} frames of {fe.size} px per clip, {width}-d speech frames; "
          f"{torch.cuda.get_device_name()}, CPU {torch.get_num_threads()} threads")  # fmt: skip
    on_cpu, on_gpu = _stages(cpu, clips, frames), _stages(gpu, clips, frames)
    for name, run_cpu in on_cpu.items():
        run_gpu = on_gpu[name]
        a, b = run_cpu(), run_gpu()
        diff = float((a - b).abs().max()) / max(float(a.abs().max()), 1e-12)
        t_cpu = measure(run_cpu, runs=args.runs)
        t_gpu = measure(run_gpu, runs=args.runs)
        ms_cpu, ms_gpu = 1000 * t_cpu.p50, 1000 * t_gpu.p50
        print(f"  {name:24s} largest difference {diff:.1e} of the largest value; median "
              f"CPU {ms_cpu:8.2f} ms, CUDA {ms_gpu:7.2f} ms ({ms_cpu / ms_gpu:5.1f}x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
