"""The command line: ``python -m nflows_np [COMMAND] ...``.

Each command lives in its own module, which exposes ``register(subparsers)``;
that function adds its sub-parser(s) and sets ``func`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit code). Bad arguments exit
non-zero with a one-line message and no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute sub-commands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "nflows_np.grading.cli",
)


class UsageError(Exception):
    """A bad command-line argument: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nflows_np",
        description="Normalizing flows in NumPy with hand-written gradients.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UsageError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
