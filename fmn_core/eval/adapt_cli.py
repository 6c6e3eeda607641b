"""The `fmn adapt` command: does confirming k results per class teach the banks a new voice?

Thin: parse, call :func:`fmn_core.eval.adaptation.measure_adaptation`, print. Importing this
module stays cheap (the parser is built for every `fmn` command).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from e
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _cmd_adapt(args: argparse.Namespace) -> int:
    from fmn_core.eval.adaptation import measure_adaptation, run_names
    from fmn_core.inference import FMNModel
    from fmn_core.models.memory import CONFIRM_RULES
    from fmn_core.progress import StageBars

    model = FMNModel.load(args.model, args.device)
    report = measure_adaptation(
        model, args.manifest, args.split, args.ks, args.seeds, args.rules or run_names(CONFIRM_RULES),
        args.families, args.jobs, StageBars(),
    )  # fmt: skip
    print(f"model {model.name} (confirmations stored by {model.cfg.memory_confirm!r}), split {report.split}")
    print(
        f"speech->video on each family's utterances left after k confirmations per class, mean ± sd over "
        f"{report.seeds} seed(s); k=0: the same utterances with the shipped banks; n: utterances scored"
    )
    print(report.table())
    print(
        "\nwhat another readout could reach at most: R@1 of the nearest confirmed utterance alone (common space), "
        "of either it or the ranking, and the ranking's misses with their class among its best 3"
    )
    print(report.ceiling_table())
    if args.json:
        report.write_json(args.json)
        print(f"wrote {args.json}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `fmn adapt` to the `fmn` command's subparsers."""
    p = subparsers.add_parser(
        "adapt",
        help="measure how confirming a few matches teaches the memory a new voice",
        description="For each voice family of a split: confirm k utterances per class against the best-ranked "
        "video of their class (as a user does in the app), then measure speech->video R@1 and mAP on the "
        "family's other utterances, beside the same utterances without any update; for each way of storing "
        "confirmations.",
    )
    p.add_argument("--model", type=Path, default=None, help="model folder or file (default: the shipped model)")
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--split", default="test", help="split whose videos and speech are used (default test)")
    p.add_argument("--ks", type=_ints, default=[1, 2, 5], help="confirmations per class, comma-separated (1,2,5)")
    p.add_argument("--seeds", type=int, default=3, help="repetitions with other picks (default 3)")
    p.add_argument(
        "--rules", type=_names, default=None,
        help="ways of confirming to compare: paper, new_voice, each also with +voice (the voice learned); default all",
    )  # fmt: skip
    p.add_argument("--families", type=_names, default=None, help="voice families to measure (default: all)")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--jobs", type=int, default=None, help="decoding processes (default: all cores)")
    p.set_defaults(func=_cmd_adapt)
