"""The `fmn` command line. Thin: each command parses its arguments and calls library code."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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
    # Paths are written relative to the manifest's folder when they can be.
    base = out.resolve().parent
    for r in rows:
        full = (manifest.root / r.path).resolve()
        r.path = full.relative_to(base).as_posix() if full.is_relative_to(base) else str(full)
    write_manifest(rows, out)
    print(f"wrote {out}: {len(rows)} items, {len({r.label for r in rows})} labels")
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


if __name__ == "__main__":
    sys.exit(main())
