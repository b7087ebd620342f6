"""Reading a submission (``.py`` or ``.ipynb``) into one Python source text.

Only text is read here; nothing of the submission runs in the grader.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

MAX_SUBMISSION_BYTES = 5 * 2**20
SUFFIXES = (".py", ".ipynb")
# Cell magics whose body is still Python: drop the magic line, keep the body.
_PYTHON_CELL_MAGICS = ("%%time", "%%timeit", "%%capture")


class SubmissionError(Exception):
    """The submission cannot be read (too large, not UTF-8, broken notebook...)."""


@dataclass(frozen=True)
class Submission:
    """A submission as source text, plus the file name shown in tracebacks."""

    source: str
    filename: str


def neutralise_magics(cell_source: str) -> str:
    """Replace IPython ``%`` / ``!`` lines of one code cell by ``pass``.

    The replacement keeps the line's indentation and its place, so line
    numbers in tracebacks still match the cell.  A cell magic (``%%bash``,
    ``%%writefile``...) comments out the whole cell, except ``%%time``,
    ``%%timeit`` and ``%%capture`` whose body is Python.
    """
    lines = cell_source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        if lines[0].split()[0] in _PYTHON_CELL_MAGICS:
            lines[0] = "pass  # cell magic removed by the grader"
        else:
            return "\n".join("# " + line for line in lines)
    out = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            indent = line[: len(line) - len(stripped)]
            line = f"{indent}pass  # IPython magic removed by the grader"
        out.append(line)
    return "\n".join(out)


def notebook_source(text: str) -> str:
    """The code cells of a notebook (JSON text), magics neutralised, joined in order."""
    try:
        notebook = json.loads(text)
    except RecursionError:
        raise SubmissionError("not a readable Jupyter notebook: JSON nested too deeply") from None
    except ValueError as exc:
        raise SubmissionError(f"not a readable Jupyter notebook: {exc}") from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise SubmissionError("not a readable Jupyter notebook: it has no list of \"cells\"")
    parts = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(piece, str) for piece in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise SubmissionError(f"not a readable Jupyter notebook: cell {number} has a source "
                                  "that is neither text nor a list of lines")
        parts.append(f"# ---- notebook cell {number} ----\n{neutralise_magics(str(source))}\n")
    return "\n".join(parts)


def read_submission(path: str) -> Submission:
    """Read ``path`` (``.py`` or ``.ipynb``) as a :class:`Submission`.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    SubmissionError
        If the file is too large, not UTF-8, or a broken notebook.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"submission not found: {path}")
    if os.path.getsize(path) > MAX_SUBMISSION_BYTES:
        raise SubmissionError(f"submission larger than {MAX_SUBMISSION_BYTES // 2**20} MiB")
    with open(path, "rb") as handle:
        data = handle.read(MAX_SUBMISSION_BYTES + 1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"submission is not UTF-8 text: {exc}") from None
    # The name shows in tracebacks and reports: no control characters, no newlines.
    name = "".join(char if char.isprintable() else f"\\x{ord(char):02x}" if ord(char) < 0x100
                   else f"\\u{ord(char) & 0xFFFF:04x}" for char in os.path.basename(path))
    if path.endswith(".ipynb"):
        return Submission(notebook_source(text), f"{name} (code cells)")
    return Submission(text, name)
