"""The `fmn corpus` and `fmn manifest` commands: make and check the data models train and are measured on.

Thin: parse, call the library, print. Importing this module stays cheap (the parser is built for
every `fmn` command): the heavy modules are imported inside the commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmn_core.progress import progress_bar

if TYPE_CHECKING:  # the heavy modules are imported by the commands that need them
    from fmn_core.corpus.generate import CorpusSpec
    from fmn_core.corpus.video import RenderSettings


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
    manifest = generate_corpus(args.out, spec, jobs=args.jobs, progress=progress_bar("corpus", "file"))
    print(f"wrote {len(manifest.rows)} items and {Path(args.out) / 'manifest.csv'}")
    return 0


def _corpus_spec(args: argparse.Namespace, classes: tuple[str, ...], render: RenderSettings) -> CorpusSpec:
    from fmn_core.corpus.generate import CorpusSpec
    from fmn_core.corpus.speech import SpeakerRanges
    from fmn_core.splits import SplitSpec

    return CorpusSpec(
        classes=classes,
        videos_per_class=args.videos_per_class,
        utterances_per_class=args.utterances_per_class,
        langs=tuple(args.langs.split(",")),
        seed=args.seed,
        render=render,
        recipes=args.recipes,
        train_speaker=SpeakerRanges(args.train_pitch_semitones, args.train_warp),
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


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 320x240, got {text!r}") from None
    return width, height


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI such as 0.85,1.15, got {text!r}") from None
    return lo, hi


def _add_split_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--test-fraction", type=float, default=0.3, help="share of each class for testing (paper: 0.3)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of each class for validation")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `fmn corpus` and `fmn manifest` to the `fmn` command's subparsers."""
    _add_corpus_parser(sub)
    _add_manifest_parser(sub)


def _add_corpus_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    p.add_argument(
        "--train-pitch-semitones", type=float, default=3.0, metavar="X",
        help="training speech's pitch is shifted by up to X semitones either way (default 3; validation and "
        "test speech always 3)",
    )  # fmt: skip
    p.add_argument(
        "--train-warp", type=_range, default=(0.85, 1.15), metavar="LO,HI",
        help="training speech's vocal-tract-length factor is drawn in LO..HI (default 0.85,1.15; validation "
        "and test speech always that)",
    )  # fmt: skip
    _add_split_args(p)
    p.set_defaults(func=_cmd_corpus)


def _add_manifest_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("manifest", help="make or check a manifest").add_subparsers(
        dest="manifest_command", required=True, metavar="ACTION"
    )
    _add_from_folders_parser(m)
    _add_import_parsers(m)
    _add_background_parser(m)
    _add_validate_parser(m)


def _add_from_folders_parser(m: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _add_import_parsers(m: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _add_background_parser(m: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _add_validate_parser(m: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = m.add_parser(
        "validate",
        help="check a manifest and its media, listing every bad row",
        description="Check columns, ids, modalities, splits and that every file exists and decodes.",
    )
    p.add_argument("manifest", type=Path)
    p.add_argument("--no-media", action="store_true", help="skip opening the media files")
    p.set_defaults(func=_cmd_manifest_validate)
