"""The command line: ``python -m nflows_np [COMMAND] ...`` (also installed as ``nflows-np``).

Each command module exposes ``register(subparsers)``, which adds its
sub-parser(s) and sets ``func`` (a callable taking the parsed
``argparse.Namespace`` and returning an exit code). Bad arguments exit
non-zero with a one-line message and no traceback.

- :mod:`nflows_np.cli.train` — ``demo`` (the default), ``train``, ``plot``, ``list``
- :mod:`nflows_np.cli.grade` — ``assign``, ``grade``
- :mod:`nflows_np.cli.common` — what they share (usage errors, numeric options)
"""
from __future__ import annotations

import argparse
import sys

from nflows_np.cli import grade, train
from nflows_np.cli.common import OneLineParser, UsageError, parse_number

# Modules that contribute sub-commands, in the order ``--help`` lists them.
COMMAND_MODULES = (train, grade)

# What ``python -m nflows_np`` runs with no command (options like ``--out DIR`` go to it).
DEFAULT_COMMAND = "demo"

__all__ = ["UsageError", "build_parser", "main", "parse_number"]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m nflows_np",
        description="Normalizing flows in NumPy with hand-written gradients.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = [DEFAULT_COMMAND, *argv]
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UsageError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
