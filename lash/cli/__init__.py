"""The ``lash`` command line: inspect, maintain, move and demo sessions.

Subcommands are argparse parsers registered by one module per group: each module in
:data:`COMMAND_MODULES` has ``register(subparsers, parents)``, and each command's function
takes the parsed arguments and an :class:`~lash.cli.output.Output` and returns the exit
code. Any :class:`lash.LashError` becomes exit code 1 and one ``lash: error: ...`` line.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from lash import __version__
from lash.cli.output import Output, error
from lash.errors import LashError

COMMAND_MODULES = (
    "lash.cli.demo",
    "lash.cli.sessions",
    "lash.cli.maintenance",
    "lash.cli.archive",
    "lash.cli.migrate",
    "lash.cli.environment",
    "lash.cli.rekey",
    "lash.cli.retention",
)
"""One line per command module, in the order ``lash --help`` lists their commands."""


def build_parser() -> argparse.ArgumentParser:
    """The ``lash`` parser with every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="config file (default: $LASH_CONFIG, then lash.toml / pyproject.toml upwards, then SQLite under .lash/)",
    )
    parser = argparse.ArgumentParser(
        prog="lash",
        parents=[common],
        description="Persistence for long-running AI-agent sessions. Start with `lash demo`.",
    )
    parser.add_argument("--version", action="version", version=f"lash {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers, [common])
    return parser


def _message(exc: BaseException) -> str:
    notes = getattr(exc, "__notes__", ())
    return "; ".join([str(exc), *notes])


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lash`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    args = build_parser().parse_args(argv)
    out = Output(json_mode=getattr(args, "json", False))
    try:
        return args.func(args, out)
    except LashError as exc:
        error(_message(exc))
    except OSError as exc:
        error(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    return 1
