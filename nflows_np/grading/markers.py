"""``assign``: the student version of a solution file (nbgrader / otter markers).

In a solution file (``.py``, or the code cells of an ``.ipynb``)::

    def f(x):
        # BEGIN SOLUTION
        return 2 * x
        # END SOLUTION

becomes ``raise NotImplementedError(...)`` at the marker's indentation, and a
``# BEGIN HIDDEN TESTS`` ... ``# END HIDDEN TESTS`` block disappears with its
markers.  Markers may not nest, and every region must be closed; errors name
the line (and the cell).  Notebooks also lose their outputs and execution
counts.  The output is deterministic, so a committed student file can be
checked byte for byte against a fresh ``assign``.
"""
from __future__ import annotations

import os
import re

STUB_MESSAGE = "exercise: replace this line with your solution"
_MARKER = re.compile(r"^(?P<indent>[ \t]*)#+\s*(?P<kind>BEGIN|END)\s+(?P<what>SOLUTION|HIDDEN TESTS)\b")


class MarkerError(ValueError):
    """A solution file whose markers are nested, unmatched or unterminated."""


def strip_solution(source: str, where: str = "") -> str:
    """Return the student version of one Python source text.

    Parameters
    ----------
    source : str
        Solution source (a ``.py`` file or one notebook cell).
    where : str
        Prefix for error messages, e.g. ``"solution.py"`` or ``"cell 3"``.

    Raises
    ------
    MarkerError
        On a nested, unmatched or unterminated marker, naming its line.
    """
    out: list[str] = []
    open_kind = ""
    open_line = 0
    prefix = f"{where}, " if where else ""
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        match = _MARKER.match(line)
        if match is None:
            if not open_kind:
                out.append(line)
            continue
        kind, what = match["kind"], match["what"]
        if kind == "BEGIN":
            if open_kind:
                raise MarkerError(f"{prefix}line {number}: '# BEGIN {what}' inside the "
                                  f"'# BEGIN {open_kind}' region opened at line {open_line} "
                                  "(markers cannot be nested)")
            open_kind, open_line = what, number
            if what == "SOLUTION":
                newline = line[len(line.rstrip("\r\n")):] or "\n"
                out.append(f'{match["indent"]}raise NotImplementedError("{STUB_MESSAGE}"){newline}')
            continue
        if open_kind != what:
            opened = f"'# BEGIN {open_kind}' at line {open_line}" if open_kind else "no open region"
            raise MarkerError(f"{prefix}line {number}: '# END {what}' does not match {opened}")
        open_kind = ""
    if open_kind:
        raise MarkerError(f"{prefix}line {open_line}: '# BEGIN {open_kind}' is never closed "
                          f"by '# END {open_kind}'")
    return "".join(out)


def _check_compiles(source: str, where: str) -> None:
    try:
        compile(source, where, "exec")
    except SyntaxError as exc:
        raise MarkerError(f"{where}, line {exc.lineno}: the student version does not parse "
                          f"({exc.msg}); check the marker indentation") from None


def assign_notebook(text: str, where: str = "") -> str:
    """Student version of a notebook (JSON text): code cells stripped, outputs cleared."""
    import nbformat

    from nflows_np.grading.submission import neutralise_magics

    notebook = nbformat.reads(text, as_version=4)
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        label = f"{where}, cell {number}" if where else f"cell {number}"
        cell.source = strip_solution(cell.source, label)
        _check_compiles(neutralise_magics(cell.source), label)
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)
    return nbformat.writes(notebook) + "\n"


def assign_file(source_path: str, dest_path: str) -> None:
    """Write the student version of ``source_path`` (``.py`` or ``.ipynb``) to ``dest_path``.

    Raises
    ------
    MarkerError
        On bad markers (nothing is written then).
    ValueError
        On an unsupported suffix or ``dest_path`` equal to ``source_path``.
    """
    if not source_path.endswith((".py", ".ipynb")):
        raise ValueError(f"assign takes a .py or .ipynb file, not {source_path}")
    if os.path.abspath(source_path) == os.path.abspath(dest_path):
        raise ValueError("the student version would overwrite the solution: choose another -o")
    with open(source_path, encoding="utf-8", newline="") as handle:
        text = handle.read()
    name = os.path.basename(source_path)
    if source_path.endswith(".ipynb"):
        result = assign_notebook(text, name)
    else:
        result = strip_solution(text, name)
        _check_compiles(result, name)
    directory = os.path.dirname(os.path.abspath(dest_path))
    os.makedirs(directory, exist_ok=True)
    with open(dest_path, "w", encoding="utf-8", newline="") as handle:
        handle.write(result)
