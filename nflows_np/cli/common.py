"""What every sub-command of the command line shares: one-line usage errors and numeric options."""
from __future__ import annotations

import argparse
import math
from typing import Any


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


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, exit status 2 (no usage dump)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")
