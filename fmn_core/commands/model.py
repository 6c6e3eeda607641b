"""The `fmn train`, `fmn probe` and `fmn eval` commands: train a model, compare speech front ends, measure retrieval.

Thin: parse, call the library, print. Importing this module stays cheap (the parser is built for
every `fmn` command): the heavy modules are imported inside the commands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fmn_core.progress import StageBars, progress_bar


def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses
    import logging

    from fmn_core.inference import resolve_device
    from fmn_core.models.i3d import I3D_FULL
    from fmn_core.training.distributed import joined
    from fmn_core.training.fmn_stage_config import FMNStageConfig
    from fmn_core.training.train import train
    from fmn_core.training.train_config import DEFAULT_FRONT_END, TrainConfig
    from fmn_core.training.video_stage import VideoStageConfig

    device = resolve_device(args.device)
    cfg = TrainConfig.for_front_end(
        args.front_end or DEFAULT_FRONT_END,
        video_stage=VideoStageConfig(epochs=args.video_epochs),
        fmn_stage=FMNStageConfig(epochs=args.epochs, fill_pairs=args.memory_pairs),
        seed=args.seed,
    )
    if args.i3d == "full":
        cfg = dataclasses.replace(cfg, fmn=dataclasses.replace(cfg.fmn, video=I3D_FULL))
    with joined(device) as dist:  # a process group when torchrun started this process, else nothing
        if not dist.is_main:
            logging.getLogger().setLevel(logging.WARNING)  # rank 0 tells the story
        else:
            on = f"{dist.world} processes ({dist.device.type})" if dist.active else str(dist.device)
            print(f"training on {on}; work files in {args.out / 'work'}", file=sys.stderr)
        report = train(
            args.manifest, args.out, cfg, dist.device, args.jobs, StageBars() if dist.is_main else None,
            not args.no_resume, args.kinetics, args.video_encoder_from, dist,
        )  # fmt: skip
    if not report.main:
        return 0
    choice = report.memory["choice"]
    print(f"wrote {args.out}/model.safetensors ({report.counts['classes']} classes)")
    print(
        f"validation chose S = {choice['combination']} with T1 = {choice['t1']}, T2 = {choice['t2']} "
        f"(val mAP {choice['val_value']:.3f})"
    )
    print("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in report.seconds.items()))
    if report.failures:
        print(f"{len(report.failures)} rows could not be used:")
        for f in report.failures:
            print(f"  {f.id}: {f.reason}")
    return 0


def _cmd_probe(args: argparse.Namespace) -> int:
    import json

    from fmn_core.eval.probe import format_results, probe
    from fmn_core.features.audio import front_end_config

    front_ends = [front_end_config(s) for s in args.front_ends.split(",") if s.strip()]
    bars: dict[str, Any] = {}

    def progress(what: str, done: int, total: int) -> None:
        if what not in bars:
            bars[what] = progress_bar(what, "utt")
        bars[what](done, total)

    results = probe(args.manifest, front_ends, args.split, args.jobs, args.cache, progress)
    print(f"linear class probe on pooled frames, {args.split} split: accuracy % (utterances)")
    print(format_results(results))
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
        print(f"wrote {args.json}")
    return 0


def _eval_moments(model: Any, args: argparse.Namespace) -> int:
    from fmn_core.errors import FmnError
    from fmn_core.eval.moments_eval import choose_moment_prior, evaluate_moments

    bars = StageBars()
    # the windows the index would use, unless asked otherwise
    args.window = args.window if args.window is not None else model.video_frontend.window
    args.hop = args.hop if args.hop is not None else model.video_frontend.hop
    if args.grow > 0 and args.centre:
        raise FmnError("--grow and --centre are two ways of shaping a moment: give one")
    if args.choose_prior:
        prior = choose_moment_prior(
            model, args.manifest, args.split, length=args.window, hop=args.hop, grow=args.grow, jobs=args.jobs,
            progress=lambda what, done, total: bars(what, done, total),
        )  # fmt: skip
        for setting, value in prior.figures.items():
            print(f"{setting:<24}: within-video R@1 at IoU 0.5 {100 * value:.1f}")
        print(f"chose background weight {prior.background_weight:g}, centre {prior.centre_within:g} on split "
              f"{args.split}; wrote {prior.save(model.path)}")  # fmt: skip
        return 0
    report = evaluate_moments(
        model, args.manifest, args.split, args.window, args.hop, grow=args.grow, jobs=args.jobs, strip=args.plot,
        centre=args.centre, progress=lambda what, done, total: bars(what, done, total),
    )  # fmt: skip
    print(f"{model.name} on {args.manifest}, split {args.split}, windows {args.window:g} s every {args.hop:g} s: "
          f"{report.counts}")  # fmt: skip
    print(report.table())
    if args.json:
        report.write_json(args.json)
        print(f"wrote {args.json}")
    return 0


def _held_out_summary(check: dict[str, Any]) -> str:
    """One line (two with a warning) on whether the evaluated split is new to the model."""
    shared = check["shared"]
    line = f"voices: {check['evaluated_speakers']} speakers evaluated, " + (
        f"{len(shared)} also heard in training or validation: {', '.join(shared)}"
        if shared
        else "none of them heard in training or validation"
    )
    if check["seen_items"] and check["split"] != "test":
        # Expected, not a mistake: the model chose its epoch and memory settings on these items.
        line += f"\n(the {check['split']} split: the model trained or chose its settings on these items; not held out)"
    elif check["seen_items"]:
        line += (
            f"\nWARNING: {check['seen_items']} evaluated items carry ids this model trained or validated on; "
            "this manifest is not split as the model's training manifest was, so these figures are not held out"
        )
    elif not check["model_has_record"]:
        line += "\n(this model does not record what it trained on; only the manifest's own split was checked)"
    return line


def _cmd_eval(args: argparse.Namespace) -> int:
    from fmn_core.eval.evaluate import evaluate
    from fmn_core.inference import FMNModel

    model = FMNModel.load(args.model, args.device)
    if args.moments:
        return _eval_moments(model, args)
    baselines = [b for b in args.baselines.split(",") if b] if args.baselines else []
    bars = StageBars()
    report = evaluate(
        model, args.manifest, args.split, baselines, ablations=bool(baselines) or args.ablations, jobs=args.jobs,
        progress=lambda what, done, total: bars(what, done, total),
    )  # fmt: skip
    print(f"{model.name} on {args.manifest}, split {args.split}: {report.counts}")
    print(_held_out_summary(report.voices))
    for scope in report.scopes():
        print(f"\n[{scope}]")
        print(report.table(scope))
    group_tables = (
        (report.by_speaker, "per speaker", report.speaker_table),
        (report.by_family, "per voice family, seen or unseen in training", report.family_table),
        (
            report.by_phrasing,
            f"per phrasing ({report.phrasing_basis}), seen or unseen in training",
            report.phrasing_table,
        ),
        (
            report.by_family_phrasing,
            "per language, family and phrasing seen or unseen in training",
            report.family_phrasing_table,
        ),
    )
    for groups, title, table in group_tables:
        if groups:
            print(f"\n[{title}: {report.shipped}]")
            print(table())
    if report.by_speaker or report.by_family:
        print("(video->speech per group: each video ranks only that group's speech, so chance differs by group)")
    if report.failures:
        print(f"\n{len(report.failures)} rows could not be used:")
        for f in report.failures:
            print(f"  {f.id}: {f.reason}")
    if args.json:
        report.write_json(args.json)
        print(f"wrote {args.json}")
    if args.plot:
        from fmn_core.eval.plot import recall_plot

        print(f"wrote {recall_plot(report, args.plot)}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `fmn train`, `fmn probe` and `fmn eval` to the `fmn` command's subparsers."""
    _add_train_parser(sub)
    _add_probe_parser(sub)
    _add_eval_parser(sub)


def _add_train_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "train",
        help="train a Feature Memory Network on a manifest",
        description="Stage 1 trains the I3D on the training videos, stage 2 the speech branch, heads and "
        "memory banks; the validation split chooses the epochs, T2, the memory readout and averaging and the "
        "score combination. "
        "Stopped runs resume from OUT/work. "
        "Under torchrun (torchrun --nproc_per_node N -m fmn_core.cli train ...) the N processes share each "
        "batch (DistributedDataParallel: NCCL on GPUs, gloo on CPUs) and rank 0 writes OUT.",
    )
    p.add_argument("--manifest", type=Path, required=True, help="manifest with train/val/test splits")
    p.add_argument("--out", type=Path, required=True, help="model folder to write")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--video-epochs", type=int, default=20, help="stage-1 epochs (I3D)")
    p.add_argument("--epochs", type=int, default=60, help="stage-2 epochs (speech encoder, heads)")
    p.add_argument(
        "--memory-pairs",
        type=int,
        default=4000,
        metavar="N",
        help="training pairs replayed into the memory banks for each setting validation tries (default 4000; "
        "fewer for a quick trial run)",
    )
    p.add_argument(
        "--front-end",
        metavar="KIND",
        help="speech front end: whisper-base (default: English and Mandarin), whisper-tiny.en (English only) or "
        "mfcc (the paper's); KIND@30 pads Whisper's input to 30 s",
    )
    p.add_argument("--i3d", choices=("compact", "full"), default="compact", help="I3D size (full: 2048-d, i3d_r50)")
    p.add_argument("--kinetics", type=Path, help="Kinetics I3D_8x8_R50 weights to fine-tune (with --i3d full)")
    p.add_argument(
        "--video-encoder-from",
        type=Path,
        metavar="MODEL",
        help="reuse this trained model's frozen I3D instead of stage 1 (same classes and video settings)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same model)")
    p.add_argument("--jobs", type=int, default=None, help="decoding processes (default: all cores)")
    p.add_argument("--no-resume", action="store_true", help="ignore work checkpoints in OUT/work")
    p.set_defaults(func=_cmd_train)


def _add_probe_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "probe",
        help="compare speech front ends with a linear class probe (minutes, no training)",
        description="Fit a linear classifier of the class on each front end's pooled frames of the training "
        "speech and score it on a held-out split, by language, voice family and phrasing seen or not.",
    )
    p.add_argument("--manifest", type=Path, required=True, help="manifest with train and held-out splits")
    p.add_argument(
        "--front-ends",
        default="mfcc,whisper-base,whisper-tiny.en",
        help="comma-separated front ends (KIND or KIND@SECONDS to pad Whisper's input)",
    )
    p.add_argument("--split", default="val", help="held-out split to score (default val: test chooses nothing)")
    p.add_argument("--cache", type=Path, help="folder to keep the frames in for later runs")
    p.add_argument("--jobs", type=int, default=None, help="decoding processes (default: all cores)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the figures to this JSON file")
    p.set_defaults(func=_cmd_probe)


def _add_eval_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "eval",
        help="measure retrieval in both directions on a split",
        description="R@1/5/10/25, mAP and median rank, speech->video and video->speech, over all speech "
        "and per language, with the random-ranking figures; the shipped ranking's also per speaker, per voice "
        "family and per phrasing (template, else transcript), each seen or unseen in the training split.",
    )
    p.add_argument("--model", type=Path, default=None, help="model folder or file (default: the shipped model)")
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument(
        "--baselines",
        nargs="?",
        const="cca,kcca,dcca,infonce",
        default="",
        help="add baselines fitted on the train split (default set: cca,kcca,dcca,infonce) and the FMN ablations",
    )
    p.add_argument("--ablations", action="store_true", help="add the FMN ablations (no memory, paper readings)")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    p.add_argument(
        "--plot", type=Path, metavar="PNG", help="also draw R@k against k (with --moments: a query's score strip)"
    )
    p.add_argument(
        "--moments",
        action="store_true",
        help="instead: find the moment each spoken query describes inside long videos (segment rows), "
        "R@1/R@5 at IoU 0.3/0.5/0.7 within a video and across the library",
    )
    p.add_argument(
        "--window", type=float, help="with --moments: window length in seconds (default: the model's, as the index)"
    )
    p.add_argument("--hop", type=float, help="with --moments: window hop in seconds (default: the model's)")
    p.add_argument(
        "--choose-prior",
        action="store_true",
        help="with --moments (on a validation split): choose the weight of the background prior and the "
        "centre that make moments best and write them beside the model (moments.json)",
    )
    p.add_argument(
        "--grow",
        type=float,
        default=0.0,
        help="with --moments: a moment takes in neighbouring windows scoring within this of its best (0: none)",
    )
    p.add_argument(
        "--centre",
        type=float,
        help="with --moments: a moment is one window centred on the run of windows scoring within this of its "
        "best (0: the best window; default: the model's, from moments.json)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--jobs", type=int, default=None, help="decoding processes (default: all cores)")
    p.set_defaults(func=_cmd_eval)
