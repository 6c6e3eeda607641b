"""The `fmn` command line. Thin: each command parses its arguments and calls library code."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the heavy modules are imported by the commands that need them
    from fmn_core.corpus.generate import CorpusSpec
    from fmn_core.corpus.video import RenderSettings


def _progress_bar(desc: str, unit: str):  # type: ignore[no-untyped-def]
    """A progress(done, total) callback drawing a tqdm bar on stderr."""
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _cmd_corpus(args: argparse.Namespace) -> int:
    from fmn_core.corpus.generate import generate_corpus
    from fmn_core.corpus.video import RenderSettings
    from fmn_core.corpus.vocabulary import DEFAULT_CLASSES, all_class_keys

    if args.list_classes:
        for key in all_class_keys():
            print(("* " if key in DEFAULT_CLASSES else "  ") + key)
        return 0
    classes = tuple(args.classes.split(",")) if args.classes else DEFAULT_CLASSES
    width, height = args.size
    if args.contact_sheet:
        from fmn_core.corpus.contact_sheet import contact_sheet

        path = contact_sheet(
            classes, args.seed, args.contact_sheet, settings=RenderSettings(width=width, height=height)
        )
        print(f"wrote {path}")
        return 0
    if args.out is None:
        raise SystemExit("fmn corpus: --out is required")
    try:
        spec = _corpus_spec(args, classes, RenderSettings(width=width, height=height))
    except ValueError as e:
        raise SystemExit(f"fmn corpus: {e}") from None
    manifest = generate_corpus(args.out, spec, jobs=args.jobs, progress=_progress_bar("corpus", "file"))
    print(f"wrote {len(manifest.rows)} items and {Path(args.out) / 'manifest.csv'}")
    return 0


def _corpus_spec(args: argparse.Namespace, classes: tuple[str, ...], render: RenderSettings) -> CorpusSpec:
    from fmn_core.corpus.generate import CorpusSpec
    from fmn_core.splits import SplitSpec

    return CorpusSpec(
        classes=classes,
        videos_per_class=args.videos_per_class,
        utterances_per_class=args.utterances_per_class,
        langs=tuple(args.langs.split(",")),
        seed=args.seed,
        render=render,
        recipes=args.recipes,
        split=SplitSpec(
            test=args.test_fraction, val=args.val_fraction, seed=args.seed, holdout_voices=args.holdout_voices
        ),
    )


def _cmd_manifest_from_folders(args: argparse.Namespace) -> int:
    from fmn_core.manifest import manifest_from_folders, write_manifest
    from fmn_core.splits import SplitSpec, assign_splits

    manifest = manifest_from_folders(args.root)
    rows = manifest.rows
    if not args.no_split:
        rows = assign_splits(rows, SplitSpec(test=args.test_fraction, val=args.val_fraction, seed=args.seed))
    out = Path(args.out) if args.out else Path(args.root) / "manifest.csv"
    _paths_relative_to(rows, out, manifest.root)
    write_manifest(rows, out)
    print(f"wrote {out}: {len(rows)} items, {len({r.label for r in rows})} labels")
    return 0


def _paths_relative_to(rows: Sequence[Any], out: Path, root: Path | None = None) -> None:
    """Write rows' paths relative to the manifest's folder when they can be (the folder can move), else absolute."""
    base = out.resolve().parent
    for r in rows:
        full = ((root / r.path) if root is not None else Path(r.path)).resolve()
        r.path = full.relative_to(base).as_posix() if full.is_relative_to(base) else str(full)


def _cmd_manifest_import(args: argparse.Namespace) -> int:
    from fmn_core.importers import SPEECH_ADVICE, from_mpii_cooking2, from_tacos
    from fmn_core.manifest import write_manifest
    from fmn_core.splits import split_by_video

    read = from_mpii_cooking2 if args.manifest_command == "from-mpii-cooking2" else from_tacos
    rows = read(args.annotations, args.videos)
    if not args.no_split:
        rows = split_by_video(rows, args.test_fraction, args.val_fraction, args.seed)
    _paths_relative_to(rows, args.out)
    write_manifest(rows, args.out)
    videos = len({r.path for r in rows})
    print(f"wrote {args.out}: {len(rows)} segments of {videos} videos, {len({r.label for r in rows})} labels")
    print(f"note: {SPEECH_ADVICE}")
    return 0


def _cmd_manifest_background(args: argparse.Namespace) -> int:
    from fmn_core.importers import background_rows
    from fmn_core.manifest import read_manifest, write_manifest

    manifest = read_manifest(args.manifest)
    added = background_rows(manifest, args.min_seconds, args.piece)
    rows = [r for r in manifest.rows if r.id not in {a.id for a in added}] + added
    for r in rows:  # written where the output is: paths relative to its folder where they can be
        r.path = str(manifest.resolve(r))
    _paths_relative_to(rows, args.out)
    write_manifest(rows, args.out)
    seconds = sum(float(r.end) - float(r.start) for r in added)
    print(f"wrote {args.out}: {len(manifest.rows)} rows and {len(added)} background stretches ({seconds / 60:.1f} min)")
    return 0


def _cmd_manifest_validate(args: argparse.Namespace) -> int:
    from fmn_core.manifest import read_manifest

    manifest = read_manifest(args.manifest, check_media=not args.no_media)
    counts = {m: len(manifest.of(m)) for m in ("video", "speech")}
    print(f"{args.manifest}: valid, {counts['video']} videos, {counts['speech']} speech, {len(manifest.labels)} labels")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from fmn_core.doctor import run_checks

    checks = run_checks()
    for c in checks:
        print(c.line())
    return 0 if all(c.ok for c in checks) or not args.strict else 1


class _StageBars:
    """progress(stage, done, total, message) drawing one tqdm bar per stage on stderr."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar = None

    def __call__(self, stage: str, done: int, total: int, message: str = "") -> None:
        from tqdm import tqdm

        if stage != self.stage or self.bar is None:
            if self.bar is not None:
                self.bar.close()
            self.stage, self.bar = stage, tqdm(total=total, desc=stage, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)
        if message:
            self.bar.set_postfix_str(message, refresh=False)
        if done >= total:
            self.bar.close()
            self.bar = None


def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from fmn_core.inference import resolve_device
    from fmn_core.models.i3d import I3D_FULL
    from fmn_core.training.fmn_stage import FMNStageConfig
    from fmn_core.training.train import DEFAULT_FRONT_END, TrainConfig, train
    from fmn_core.training.video_stage import VideoStageConfig

    device = resolve_device(args.device)
    cfg = TrainConfig.for_front_end(
        args.front_end or DEFAULT_FRONT_END,
        video_stage=VideoStageConfig(epochs=args.video_epochs),
        fmn_stage=FMNStageConfig(epochs=args.epochs),
        seed=args.seed,
    )
    if args.i3d == "full":
        cfg = dataclasses.replace(cfg, fmn=dataclasses.replace(cfg.fmn, video=I3D_FULL))
    print(f"training on {device}; work files in {args.out / 'work'}", file=sys.stderr)
    report = train(
        args.manifest, args.out, cfg, device, args.jobs, _StageBars(), not args.no_resume, args.kinetics,
        args.video_encoder_from,
    )  # fmt: skip
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
            bars[what] = _progress_bar(what, "utt")
        bars[what](done, total)

    results = probe(args.manifest, front_ends, args.split, args.jobs, args.cache, progress)
    print(f"linear class probe on pooled frames, {args.split} split: accuracy % (utterances)")
    print(format_results(results))
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
        print(f"wrote {args.json}")
    return 0


def _eval_moments(model: Any, args: argparse.Namespace) -> int:
    from fmn_core.eval.moments_eval import choose_background_weight, evaluate_moments

    bars = _StageBars()
    # the windows the index would use, unless asked otherwise
    args.window = args.window if args.window is not None else model.video_frontend.window
    args.hop = args.hop if args.hop is not None else model.video_frontend.hop
    if args.choose_prior:
        prior = choose_background_weight(
            model, args.manifest, args.split, length=args.window, hop=args.hop, grow=args.grow, jobs=args.jobs,
            progress=lambda what, done, total: bars(what, done, total),
        )  # fmt: skip
        for w, value in prior.figures.items():
            print(f"background weight {w:>4}: within-video R@1 at IoU 0.5 {100 * value:.1f}")
        print(f"chose {prior.background_weight:g} on split {args.split}; wrote {prior.save(model.path)}")
        return 0
    report = evaluate_moments(
        model, args.manifest, args.split, args.window, args.hop, grow=args.grow, jobs=args.jobs, strip=args.plot,
        progress=lambda what, done, total: bars(what, done, total),
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
    bars = _StageBars()
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


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 320x240, got {text!r}") from None
    return width, height


def _add_split_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--test-fraction", type=float, default=0.3, help="share of each class for testing (paper: 0.3)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of each class for validation")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")


def build_parser() -> argparse.ArgumentParser:
    """The `fmn` argument parser, one sub-command per task."""
    parser = argparse.ArgumentParser(
        prog="fmn", description="FMN Studio: video <-> speech retrieval for cooking clips."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "corpus",
        help="generate the built-in cooking corpus (videos, speech, manifest)",
        description="Render cooking clips and synthesize spoken phrases, then write OUT/manifest.csv.",
    )
    p.add_argument("--out", type=Path, help="output folder")
    p.add_argument("--classes", help="comma-separated class keys (default: the 20 default classes)")
    p.add_argument("--list-classes", action="store_true", help="list every class key that can be generated and exit")
    p.add_argument("--videos-per-class", type=int, default=50, help="videos per class (default 50, as the paper)")
    p.add_argument("--utterances-per-class", type=int, default=50, help="utterances per class and language")
    p.add_argument("--langs", default="en,zh", help="spoken languages, comma-separated (en, zh)")
    p.add_argument(
        "--recipes",
        type=int,
        default=0,
        metavar="N",
        help="also N long recipe videos (1-2 min: several steps of one dish in one kitchen), each step a "
        "segment row (start, end); the spoken queries of a step's class are its queries",
    )
    p.add_argument("--size", type=_size, default="320x240", help="video size WIDTHxHEIGHT, even numbers (320x240)")
    p.add_argument(
        "--contact-sheet",
        type=Path,
        metavar="PNG",
        help="only render a contact sheet (frames of one clip per class) to this PNG and exit",
    )
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument(
        "--holdout-voices",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="test (and val) speech only from voices never used for training (default: on)",
    )
    _add_split_args(p)
    p.set_defaults(func=_cmd_corpus)

    m = sub.add_parser("manifest", help="make or check a manifest").add_subparsers(
        dest="manifest_command", required=True, metavar="ACTION"
    )
    p = m.add_parser(
        "from-folders",
        help="manifest for a folder laid out as ROOT/<label>/<files>",
        description="Write a manifest listing every video and audio file under ROOT/<label>/.",
    )
    p.add_argument("root", type=Path, help="the folder whose sub-folders are labels")
    p.add_argument("--out", type=Path, help="manifest to write (default ROOT/manifest.csv)")
    p.add_argument("--no-split", action="store_true", help="leave the split column empty")
    _add_split_args(p)
    p.set_defaults(func=_cmd_manifest_from_folders)
    for name, what, source in (
        ("from-mpii-cooking2", "MPII Cooking 2's ground-truth CSV", "CSV"),
        ("from-tacos", "TACoS's segment-and-sentence annotations (JSON)", "JSON"),
    ):
        p = m.add_parser(
            name,
            help=f"a manifest of segments from {what}",
            description=f"One video row per annotated segment of {what}, with start and end in seconds: the "
            "files are read, never cut. Nothing is written when a video is missing or a range is bad; every "
            "problem is listed with its line.",
        )
        p.add_argument("annotations", type=Path, metavar=source, help=f"the {source} annotation file")
        p.add_argument("--videos", type=Path, required=True, help="the folder holding the dataset's videos")
        p.add_argument("--out", type=Path, required=True, help="manifest to write")
        p.add_argument("--no-split", action="store_true", help="leave the split column empty")
        _add_split_args(p)  # whole recordings are drawn, so that a recording's segments share a split
        p.set_defaults(func=_cmd_manifest_import)
    p = m.add_parser(
        "background",
        help="add the unannotated stretches of segment-annotated videos as 'background' rows",
        description="For every video with segment rows, write the stretches no segment covers as video rows "
        "labelled 'background' (pieces of at most --piece seconds, in the file's split). Training uses them as "
        "negatives for every spoken query, so that idle footage between steps stops matching.",
    )
    p.add_argument("manifest", type=Path)
    p.add_argument("--out", type=Path, required=True, help="manifest to write (the rows, plus the background rows)")
    p.add_argument("--min-seconds", type=float, default=2.0, help="shorter stretches are left out (2)")
    p.add_argument("--piece", type=float, default=5.0, help="longer ones are cut into pieces of about this (5 s)")
    p.set_defaults(func=_cmd_manifest_background)
    p = m.add_parser(
        "validate",
        help="check a manifest and its media, listing every bad row",
        description="Check columns, ids, modalities, splits and that every file exists and decodes.",
    )
    p.add_argument("manifest", type=Path)
    p.add_argument("--no-media", action="store_true", help="skip opening the media files")
    p.set_defaults(func=_cmd_manifest_validate)

    p = sub.add_parser(
        "doctor",
        help="check what is installed and usable",
        description="One line per component: OK, or MISSING with how to fix it.",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 if anything is missing")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser(
        "train",
        help="train a Feature Memory Network on a manifest",
        description="Stage 1 trains the I3D on the training videos, stage 2 the speech branch, heads and "
        "memory banks; the validation split chooses the epochs, T2, the memory readout and averaging and the "
        "score combination. "
        "Stopped runs resume from OUT/work.",
    )
    p.add_argument("--manifest", type=Path, required=True, help="manifest with train/val/test splits")
    p.add_argument("--out", type=Path, required=True, help="model folder to write")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--video-epochs", type=int, default=20, help="stage-1 epochs (I3D)")
    p.add_argument("--epochs", type=int, default=60, help="stage-2 epochs (speech encoder, heads)")
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
        help="with --moments (on a validation split): choose the weight of the background prior that ranks "
        "moments best and write it beside the model (moments.json)",
    )
    p.add_argument(
        "--grow",
        type=float,
        default=0.0,
        help="with --moments: a moment takes in neighbouring windows scoring within this of its best (0: none)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--jobs", type=int, default=None, help="decoding processes (default: all cores)")
    p.set_defaults(func=_cmd_eval)
    from fmn_core.eval.adapt_cli import register as register_adapt_command  # light: imports nothing heavy
    from fmn_core.eval.calibrate_cli import register as register_calibrate_command  # light, likewise
    from fmn_core.index.cli import register as register_index_commands  # light: imports nothing heavy

    register_index_commands(sub)  # index, search, bench
    register_adapt_command(sub)  # adapt
    register_calibrate_command(sub)  # calibrate
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `fmn`; expected errors are printed as one clear message, exit code 2."""
    from fmn_core.errors import FmnError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s")
    try:
        return int(args.func(args))
    except FmnError as e:
        print(f"fmn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`fmn search --json ... | head`): stop quietly, as Unix tools do. Python
        # would print another error flushing stdout at exit, so stdout now points at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
