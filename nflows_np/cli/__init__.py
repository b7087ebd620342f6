"""The command line: ``python -m nflows_np [COMMAND] ...`` (also installed as ``nflows-np``).

Each command module exposes ``register(subparsers)``, which adds its
sub-parser(s) and sets ``func`` (a callable taking the parsed
``argparse.Namespace`` and returning an exit code). Bad arguments exit
non-zero with a one-line message and no traceback.

:func:`main` also makes every command quiet about two ordinary events: a
reader that stops early (``... | head``, ``... | grep -q``): the command
finishes its work and its output goes nowhere; and Ctrl-C outside a training
loop: one line, exit status 130.

- :mod:`nflows_np.cli.train` — ``demo`` (the default), ``train``, ``plot``, ``list``
  (their pictures: :mod:`nflows_np.cli.pictures`)
- :mod:`nflows_np.cli.grade` — ``assign``, ``grade``
- :mod:`nflows_np.cli.common` — what they share (usage errors, numeric options)
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

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


class _ReaderMayLeave:
    """``sys.stdout`` for a reader that may stop early: once the pipe breaks, the rest goes to /dev/null.

    Without it, the first ``print`` after ``head`` exits raises BrokenPipeError
    (a traceback, and the work stops half done); the interpreter's last flush
    would then print "Exception ignored ... BrokenPipeError".
    """

    def __init__(self, stream: TextIO):
        self._stream = stream

    def _gone(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone()
            self._stream.flush()  # what was buffered now goes to /dev/null

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status (each command's help lists its own)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = [DEFAULT_COMMAND, *argv]
    stdout = sys.stdout
    if hasattr(stdout, "fileno"):
        sys.stdout = _ReaderMayLeave(stdout)
    try:
        args = parser.parse_args(argv)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except UsageError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    finally:
        if sys.stdout is not stdout:
            sys.stdout.flush()
            sys.stdout = stdout
