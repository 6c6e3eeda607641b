"""The `fmn` command line. Thin: each command parses its arguments and calls library code.

The commands live in modules of their own, each with a ``register(sub)`` that adds its parsers:
``fmn_core.commands.data`` (corpus, manifest), ``fmn_core.commands.model`` (train, probe, eval),
``fmn_core.index.cli`` (index, search, bench), ``fmn_core.eval.adapt_cli`` and
``fmn_core.eval.calibrate_cli``. This module builds the parser from them and runs the command.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from fmn_core.commands import data, model


def _cmd_doctor(args: argparse.Namespace) -> int:
    from fmn_core.doctor import run_checks

    checks = run_checks()
    for c in checks:
        print(c.line())
    return 0 if all(c.ok for c in checks) or not args.strict else 1


def _add_doctor_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "doctor",
        help="check what is installed and usable",
        description="One line per component: OK, or MISSING with how to fix it.",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 if anything is missing")
    p.set_defaults(func=_cmd_doctor)


def build_parser() -> argparse.ArgumentParser:
    """The `fmn` argument parser, one sub-command per task."""
    parser = argparse.ArgumentParser(
        prog="fmn", description="FMN Studio: video <-> speech retrieval for cooking clips."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data.register(sub)  # corpus, manifest
    _add_doctor_parser(sub)  # doctor
    model.register(sub)  # train, probe, eval
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
