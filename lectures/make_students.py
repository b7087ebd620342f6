"""Write the student notebooks: the reference notebooks with their solutions removed.

    python lectures/make_students.py          # (re)write lectures/student/*.ipynb
    python lectures/make_students.py --check  # exit 1 if a committed student notebook is out of date

A cell tagged ``solution`` (cell metadata ``"tags": ["solution"]``) is a solution:

* a code cell keeps everything outside the lines ``# BEGIN SOLUTION`` … ``# END SOLUTION``;
  the lines between become one stub line at the indentation of the BEGIN line:
  ``raise NotImplementedError("Exercise: your code here")``, or the text after
  ``# BEGIN SOLUTION:`` when given (e.g. ``# BEGIN SOLUTION: answer = None``);
  without the markers the whole cell becomes ``# Your code here.``;
* a markdown cell (the answer to a question) becomes :data:`ANSWER_STUB`.

Every code cell loses its outputs and its cell metadata but the tags, and relative links out of ``lectures/`` gain a ``../``.
The tests (tests/test_exercises.py) check that the committed student notebooks are
exactly what this script writes.
"""
from __future__ import annotations

import argparse
import copy
import json
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
STUDENT = HERE / "student"
TAG = "solution"
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
DEFAULT_STUB = 'raise NotImplementedError("Exercise: your code here")'
ANSWER_STUB = "**Your answer:** *(write it here, then compare with the reference notebook in `lectures/`)*"
_LINK = re.compile(r"\]\((?!https?:|#|\.\./|0\d_)([^)]+)\)")  # relative links, except to sibling notebooks


def strip_code(source: str) -> str:
    """``source`` with each BEGIN…END SOLUTION block replaced by its stub line."""
    lines, out, inside = source.split("\n"), [], False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise ValueError(f"nested {BEGIN!r}: {line!r}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            stub = stripped[len(BEGIN):].lstrip(":").strip() or DEFAULT_STUB
            out.append(indent + stub)
        elif stripped.startswith(END):
            if not inside:
                raise ValueError(f"{END!r} without {BEGIN!r}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN!r} without {END!r}")
    return "\n".join(out)


def student_version(notebook: dict) -> dict:
    """A copy of ``notebook`` (nbformat 4, as a dict) with the solutions removed and no outputs."""
    notebook = copy.deepcopy(notebook)
    for key in ("widgets", "language_info"):                   # slider states and the interpreter of an executed run
        notebook["metadata"].pop(key, None)
    for cell in notebook["cells"]:
        tags = cell.get("metadata", {}).get("tags")
        cell["metadata"] = {"tags": tags} if tags else {}     # no execution timings: the file depends on the source only
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        is_solution = TAG in cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "code":
            if is_solution:
                source = strip_code(source) if BEGIN in source else "# Your code here."
            cell["outputs"], cell["execution_count"] = [], None
        elif cell["cell_type"] == "markdown":
            source = ANSWER_STUB if is_solution else _LINK.sub(r"](../\1)", source)
        cell["source"] = source
    return notebook


def render(notebook: dict) -> str:
    """The notebook as text, as nbformat writes it."""
    return json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def reference_notebooks() -> list[pathlib.Path]:
    """The reference notebooks, in order."""
    return sorted(HERE.glob("[0-9][0-9]_*.ipynb"))


def expected_files() -> dict[pathlib.Path, str]:
    """``{student path: text}`` for every reference notebook."""
    return {STUDENT / path.name: render(student_version(json.loads(path.read_text(encoding="utf-8"))))
            for path in reference_notebooks()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the student notebooks (solutions removed).")
    parser.add_argument("--check", action="store_true", help="only report student notebooks that are out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in expected_files().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.name)
        if not args.check:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "out of date" if args.check else "written"
    print(f"{len(stale)} student notebook(s) {verb}" + (": " + ", ".join(stale) if stale else ""))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
