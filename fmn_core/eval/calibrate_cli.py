"""The `fmn calibrate` command: fit how sure hits are, and when to say that nothing matches.

Thin: parse, call :mod:`fmn_core.eval.calibration`, print, write ``calibration.json`` beside the
model's checkpoint. Importing this module stays cheap (the parser is built for every command).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from fmn_core.eval.calibration import DIRECTIONS, calibration_path
    from fmn_core.eval.calibration_fit import calibrate, flag_rates, pair_scores_of
    from fmn_core.eval.evaluate import encode_split
    from fmn_core.inference import FMNModel
    from fmn_core.manifest import read_manifest
    from fmn_core.progress import StageBars

    model = FMNModel.load(args.model, args.device)
    bars = StageBars()
    calibration = calibrate(model, args.manifest, args.split, args.jobs, bars)
    figures: dict[str, dict[str, dict[str, float]]] = {args.split: {}}
    print(f"model {model.name}, fitted on split {args.split} of {args.manifest}")
    print(f"{'direction':<15} {'split':<6} {'threshold':>9} {'false alarms':>13} {'caught':>7} {'queries':>8}")
    for d in DIRECTIONS:
        fit = calibration.directions[d]
        figures[args.split][d] = {"false_alarm_rate": fit.false_alarm_rate, "catch_rate": fit.catch_rate}
        print(f"{d:<15} {args.split:<6} {fit.threshold:>9.3f} {fit.false_alarm_rate:>12.1%} {fit.catch_rate:>7.1%} "
              f"{fit.queries:>8}")  # fmt: skip
    if args.check:
        pairs = pair_scores_of(model, encode_split(model, read_manifest(args.manifest), args.check, args.jobs, bars))
        figures[args.check] = {}
        for d in DIRECTIONS:
            fit = calibration.directions[d]
            rates = flag_rates(fit, pairs, d)
            figures[args.check][d] = rates
            print(f"{d:<15} {args.check:<6} {fit.threshold:>9.3f} {rates['false_alarm_rate']:>12.1%} "
                  f"{rates['catch_rate']:>7.1%} {int(rates['queries']):>8}   best hits: stated "
                  f"{rates['top_hit_confidence']:.1%} sure, right {rates['top_hit_accuracy']:.1%}")  # fmt: skip
    print("false alarms: queries whose class is in the gallery but flagged 'no good match';")
    print("caught: queries flagged once every item of their class is taken out of the gallery")
    if model.path is None:  # pragma: no cover - FMNModel.load always has a path
        return 0
    written = calibration.write(calibration_path(model.path))
    print(f"wrote {written}")
    if args.json:
        Path(args.json).write_text(json.dumps({"calibration": calibration.to_dict(), "rates": figures}, indent=2))
        print(f"wrote {args.json}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `fmn calibrate` to the `fmn` command's subparsers."""
    p = subparsers.add_parser(
        "calibrate",
        help="fit hit confidences and the 'no good match' threshold on validation data",
        description="Map each hit's S1 and memory agreement to the probability that it is right (a logistic fit "
        "on every pair of a validation split), choose the best hit's confidence below which `fmn search` and the "
        "app say that nothing in the library matches well, and write both to calibration.json beside the model.",
    )
    p.add_argument("--model", type=Path, default=None, help="model folder or file (default: the shipped model)")
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--split", default="val", help="split to fit on (default val)")
    p.add_argument("--check", metavar="SPLIT", help="also measure the flag rates on this split (e.g. test)")
    p.add_argument("--json", type=Path, help="also write the fit and the rates to this JSON file")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--jobs", type=int, default=None, help="decoding processes (default: all cores)")
    p.set_defaults(func=_cmd_calibrate)
