"""The command line: ``python -m nflows_np [COMMAND] ...``.

Each command lives in its own module, which exposes ``register(subparsers)``;
that function adds its sub-parser(s) and sets ``func`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit code). Bad arguments exit
non-zero with a one-line message and no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import math
import sys
from typing import Any

# Modules that contribute sub-commands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "nflows_np.commands",
    "nflows_np.grading.cli",
)

# What ``python -m nflows_np`` runs with no command (options like ``--out DIR`` go to it).
DEFAULT_COMMAND = "demo"


class UsageError(Exception):
    """A bad command-line argument: printed as one line, exit status 2."""


def parse_number(text: Any, option: str, kind: type, minimum: float = 0.0, inclusive: bool = False) -> Any:
    """``text`` as ``kind`` (> ``minimum``, or ≥ with ``inclusive``), or a UsageError naming ``option``.

    Shared by the command modules for every numeric option.
    """
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise UsageError(f"{option} must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
        bound = f">= {minimum:g}" if inclusive else ("positive" if minimum == 0 else f"> {minimum:g}")
        raise UsageError(f"{option} must be {bound}, got {text!r}")
    return value


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, exit status 2 (no usage dump)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m nflows_np",
        description="Normalizing flows in NumPy with hand-written gradients.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
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
