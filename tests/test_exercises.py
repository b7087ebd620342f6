"""The notebook exercises: every notebook has at least three, each checked automatically.

For every exercise a notebook poses (a markdown heading "Exercise NN.k", a cell tagged
``solution``, then ``exercises.check("NN.k", answer)``):

* the reference notebook's solution passes the check;
* the student notebook's stub (what ``lectures/make_students.py`` leaves) fails it;
* each known mistake (a ``Diagnosis``) fails it *and* is named in the feedback.

And the committed student notebooks are exactly what the generator writes.
"""
from __future__ import annotations

import json
import pathlib
import re
import sys

import numpy as np
import pytest

from nflows_np import exercises
from nflows_np.exercises.core import evaluate_outputs

LECTURES = pathlib.Path(__file__).resolve().parent.parent / "lectures"
sys.path.insert(0, str(LECTURES))
import make_students

CHECK = re.compile(r'exercises\.check\("(\d\d\.\d+)",\s*(\w+)\)')
HEADING = re.compile(r"^#+ Exercise (\d\d\.\d+)\b", re.MULTILINE)
NOTEBOOKS = make_students.reference_notebooks()


def cells(notebook: dict) -> list[tuple[str, str, list[str]]]:
    """(cell type, source, tags) of every cell."""
    return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"],
             c.get("metadata", {}).get("tags", [])) for c in notebook["cells"]]


def posed(notebook: dict) -> list[tuple[str, str, str]]:
    """(key, answer name, source of the solution cell before the check) for every checked exercise."""
    found, solution = [], None
    for kind, source, tags in cells(notebook):
        if kind == "code" and make_students.TAG in tags:
            solution = source
        match = CHECK.search(source) if kind == "code" else None
        if match:
            assert solution is not None, f"exercise {match.group(1)}: no solution cell before its check"
            found.append((match.group(1), match.group(2), solution))
            solution = None
    return found


def run_cell(source: str, name: str):
    """Execute one cell on its own (with numpy and nflows_np imported) and return ``name``."""
    import nflows_np as nf
    namespace = {"np": np, "nf": nf, "exercises": exercises}
    exec(compile(source, f"<cell defining {name}>", "exec"), namespace)  # noqa: S102 -- our own notebooks
    return namespace[name]


def load(path: pathlib.Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def all_posed() -> list[tuple[str, str, str, str]]:
    return [(path.name, *item) for path in NOTEBOOKS for item in posed(load(path))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_notebook_has_three_checked_exercises_under_exercise_headings(path):
    notebook = load(path)
    keys = [key for key, _, _ in posed(notebook)]
    headings = HEADING.findall("\n".join(source for kind, source, _ in cells(notebook) if kind == "markdown"))
    assert len(keys) >= 3, f"{path.name}: {len(keys)} checked exercises"
    assert keys == headings, f"{path.name}: checks {keys} against headings {headings}"
    assert all(key.startswith(path.name[:2]) for key in keys)
    assert set(keys) <= set(exercises.EXERCISES)


def test_every_registered_exercise_is_posed_once():
    keys = [key for _, key, _, _ in all_posed()]
    assert sorted(keys) == sorted(exercises.EXERCISES) and len(set(keys)) == len(keys)


@pytest.mark.parametrize("notebook, key, name, solution", all_posed(), ids=[item[1] for item in all_posed()])
def test_reference_passes_and_student_stub_fails(notebook, key, name, solution):
    verdict = exercises.evaluate(key, run_cell(solution, name))
    assert verdict.passed, verdict.message
    assert verdict.message.startswith(f"✓ Exercise {key}")
    stub = run_cell(make_students.strip_code(solution), name)
    verdict = exercises.evaluate(key, stub)
    assert not verdict.passed and verdict.message.startswith(f"✗ Exercise {key}")
    assert "not done yet" in verdict.message or "no value" in verdict.message, verdict.message


@pytest.mark.parametrize("key", list(exercises.EXERCISES))
def test_each_known_mistake_fails_with_its_diagnosis(key):
    exercise = exercises.get(key)
    assert exercise.diagnoses, f"{key}: no known mistake to diagnose"
    inputs = exercise.inputs()
    expected = exercise.reference(inputs)
    for diagnosis in exercise.diagnoses:
        received = {**expected, diagnosis.output: diagnosis.alternative(inputs)}
        verdict = evaluate_outputs(exercise, inputs, received)
        assert not verdict.passed and diagnosis.hint in verdict.message, (diagnosis.hint, verdict.message)


def test_wrong_answers_of_every_kind_are_reported_not_raised():
    def raises(z, u, w, b):
        raise ValueError("a bug in the student's code")

    assert "raised ValueError: a bug" in exercises.evaluate("05.2", raises).message
    assert "tuple" in exercises.evaluate("05.2", lambda z, u, w, b: z).message
    assert "shape" in exercises.evaluate("02.3", [3, 3]).message
    sign_flip = exercises.evaluate("01.2", lambda jacobian: np.linalg.slogdet(jacobian)[1])
    assert not sign_flip.passed and "inverse function theorem" in sign_flip.message
    with pytest.raises(KeyError, match="known"):
        exercises.get("99.9")


def test_generator_strips_only_the_marked_lines():
    source = "def f(x):\n    y = 1\n    # BEGIN SOLUTION\n    return x + y\n    # END SOLUTION\n"
    assert make_students.strip_code(source) == ('def f(x):\n    y = 1\n    raise NotImplementedError('
                                                '"Exercise: your code here")\n')
    assert make_students.strip_code("# BEGIN SOLUTION: answer = None\nanswer = 3\n# END SOLUTION") == "answer = None"
    for broken in ("# BEGIN SOLUTION\nx = 1", "x = 1\n# END SOLUTION"):
        with pytest.raises(ValueError, match="SOLUTION"):
            make_students.strip_code(broken)


def test_committed_student_notebooks_are_what_the_generator_writes():
    expected = make_students.expected_files()
    assert sorted(p.name for p in expected) == sorted(p.name for p in make_students.STUDENT.glob("*.ipynb"))
    for path, text in expected.items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is stale: run python lectures/make_students.py"


def test_student_notebooks_hold_no_solution_and_no_output():
    for path in make_students.STUDENT.glob("*.ipynb"):
        notebook = load(path)
        text = "\n".join(source for _, source, _ in cells(notebook))
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        assert all(not c.get("outputs") for c in notebook["cells"] if c["cell_type"] == "code")
        for kind, source, tags in cells(notebook):
            if make_students.TAG in tags and kind == "markdown":
                assert source == make_students.ANSWER_STUB
