"""The grader: assign, grade, partial credit, the command line.

Every grading run goes through the real command line, in a process of its own
(``python -m nflows_np grade``), with ``TMPDIR`` inside the run's temporary
directory.  The runs are started together by one module fixture, three at a
time, to keep the file fast on a 2-core machine.  Hostile submissions, the
sandbox, the transport and ``grade-all`` are tested in tests/grading/.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import nbformat
import numpy as np
import pytest

from gradelib import assert_gradescope

from nflows_np import cli
from nflows_np.grading import assignments
from nflows_np.grading.cases import compare_arrays
from nflows_np.grading.markers import MarkerError, assign_file, strip_solution

ROOT = pathlib.Path(__file__).resolve().parents[1]
HOSTILE = pathlib.Path(__file__).resolve().parent / "hostile"
ASSIGNMENT = assignments.load("change_of_variables")
SOLUTION = ROOT / ASSIGNMENT.solution
STUDENT = ROOT / ASSIGNMENT.student
HOSTILE_TIMEOUT = "3"  # seconds per case for hostile runs (a normal case takes ~0.2 s)
ELEMENTWISE = {case.name for case in ASSIGNMENT.cases if case.name.startswith("elementwise")}
TRIANGULAR = {case.name for case in ASSIGNMENT.cases if case.name.startswith("triangular")}


def run_cli(*args: str, tmp_path: pathlib.Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """``python -m nflows_np ARGS`` in ``tmp_path``, its temporary files under ``tmp_path/tmp``."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "nflows_np", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def grade(submission: pathlib.Path, tmp_path: pathlib.Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Grade through the CLI with ``--json out/results.json`` (relative to the grader's cwd)."""
    results = tmp_path / "out" / "results.json"
    proc = run_cli("grade", str(submission), "--assignment", "change_of_variables",
                   "--json", str(results.relative_to(tmp_path)), *extra, tmp_path=tmp_path)
    return proc, json.loads(results.read_text())


def survivors(report: dict) -> list[str]:
    """Live processes whose command line holds the grading's id (every case process does)."""
    needle = report["extra_data"]["grading_id"].encode()
    assert needle.startswith(b"nflows-grading-")
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = pathlib.Path(f"/proc/{entry}/cmdline").read_bytes()
                state = pathlib.Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if needle in cmdline and state != "Z":
                found.append(entry)
    return found


# ---- all grading runs, started together ----------------------------------------------

def _wrong_solution() -> str:
    # log(det A) instead of log|det A|: right for det A > 0, NaN otherwise; and a
    # log-det of the wrong sign in the triangular map, which breaks normalisation.
    return SOLUTION.read_text().replace(
        "_, log_abs_det_A = np.linalg.slogdet(A)", "log_abs_det_A = np.log(np.linalg.det(A))"
    ).replace("+ np.log(abs(a)) + alpha * x1", "- np.log(abs(a)) - alpha * x1")


def _notebook_solution() -> str:
    head, functions = SOLUTION.read_text().split("import numpy as np\n", 1)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Change of variables"),
        nbformat.v4.new_code_cell("%matplotlib inline\n!pip install nothing\nimport numpy as np"),
        nbformat.v4.new_code_cell("%%bash\necho this is not Python"),
        nbformat.v4.new_code_cell(functions),
    ]
    return nbformat.writes(notebook)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """``{run: Future((tmp_path, proc, report, seconds, finished))}`` for every grading run."""
    runs = {
        "solution": ("solution.py", SOLUTION.read_text(), []),
        "student": ("change_of_variables.py", STUDENT.read_text(), []),
        "notebook": ("submission.ipynb", _notebook_solution(), []),
        "wrong": ("wrong.py", _wrong_solution(), ["--seed", "7"]),
        # the endless loop eats the whole budget
        "budget": ("loop.py", SOLUTION.read_text() + (HOSTILE / "infinite_loop.py").read_text(),
                   ["--timeout", HOSTILE_TIMEOUT, "--budget", "4"]),
    }

    def run(key, filename, text, extra):
        tmp_path = tmp_path_factory.mktemp(key)
        (tmp_path / filename).write_text(text)
        start = time.monotonic()
        proc, report = grade(tmp_path / filename, tmp_path, *extra)
        finished = time.monotonic()
        return tmp_path, proc, report, finished - start, finished

    keys = ["budget"] + [key for key in runs if key != "budget"]
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {key: pool.submit(run, key, *runs[key]) for key in keys}
    return futures


# ---- the solution and the student version ----------------------------------------

def test_solution_scores_full_marks_within_30_seconds(graded):
    tmp_path, proc, report, seconds, _ = graded["solution"].result()
    assert proc.returncode == 0, proc.stderr
    assert_gradescope(report)
    assert report["score"] == ASSIGNMENT.max_score == 20.0
    assert all(test["status"] == "passed" for test in report["tests"])
    hidden = {case.name for case in ASSIGNMENT.cases if case.hidden}
    assert {t["name"] for t in report["tests"] if t["visibility"] == "after_due_date"} == hidden
    # The whole command, interpreter start included, while other gradings share the cores.
    assert seconds < 30.0 and report["execution_time"] < 30.0
    assert "20 / 20 points" in proc.stdout
    assert survivors(report) == []


def test_student_version_scores_zero_with_a_valid_report(graded):
    _, proc, report, _, _ = graded["student"].result()
    assert proc.returncode == 0, proc.stderr
    assert_gradescope(report)
    assert report["score"] == 0.0
    for test in report["tests"]:
        assert test["status"] == "failed"
        assert "NotImplementedError" in test["output"]


def test_notebook_submission_with_magics_scores_full_marks(graded):
    _, proc, report, _, _ = graded["notebook"].result()
    assert proc.returncode == 0, proc.stderr
    assert report["score"] == 20.0, proc.stdout


def test_feedback_says_what_differs_and_gives_partial_credit(graded):
    _, proc, report, _, _ = graded["wrong"].result()
    tests = {test["name"]: test for test in report["tests"]}
    assert tests["affine_log_prob: 2-D, det A > 0"]["status"] == "passed"
    negative = tests["affine_log_prob: 3-D, det A < 0"]
    assert negative["score"] == 0.0 and "received nan" in negative["output"]
    assert "mind the absolute value" in negative["output"]
    values = tests["triangular_log_prob: a > 0"]["output"]
    assert "max abs error" in values and "at index (" in values and "expected" in values
    assert "integrates to" in tests["triangular_log_prob: the density integrates to 1"]["output"]
    assert 0.0 < report["score"] < 20.0


def test_compare_arrays_partial_credit_and_message():
    expected = np.arange(10.0)
    received = expected.copy()
    received[[3, 7]] += [0.5, 2.0]
    outcome = compare_arrays(expected, received)
    assert outcome.fraction == pytest.approx(0.8)
    assert "8/10 values within tolerance" in outcome.message
    assert "max abs error 2 at index (7,): expected 7, received 9" in outcome.message


def test_whole_run_budget_stops_grading(graded):
    tmp_path, proc, report, _, _ = graded["budget"].result()
    assert proc.returncode == 0, proc.stderr
    assert_gradescope(report)
    assert report["execution_time"] < 4 + 2  # the budget, plus the case in flight and cleanup
    skipped = [t for t in report["tests"] if "time budget" in t["output"]]
    assert skipped and all(t["score"] == 0.0 for t in skipped)
    assert report["tests"][0]["status"] == "passed"
    assert survivors(report) == []


# ---- assign ----------------------------------------------------------------------------

PY_SOLUTION = '''\
def double(x):
    """Twice x."""
    # BEGIN SOLUTION
    y = 2 * x
    return y
    # END SOLUTION


if __name__ == "__main__":
    assert double(1) == 2
    # BEGIN HIDDEN TESTS
    assert double(2) == 4
    # END HIDDEN TESTS
'''


def test_assign_py(tmp_path):
    source = tmp_path / "sol.py"
    source.write_text(PY_SOLUTION)
    proc = run_cli("assign", str(source), "-o", str(tmp_path / "student.py"), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    student = (tmp_path / "student.py").read_text()
    assert student == (
        'def double(x):\n    """Twice x."""\n'
        '    raise NotImplementedError("exercise: replace this line with your solution")\n'
        '\n\nif __name__ == "__main__":\n    assert double(1) == 2\n')


@pytest.mark.parametrize("source, line, words", [
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", 2, "nested"),
    ("# BEGIN SOLUTION\nx = 1\n# BEGIN HIDDEN TESTS\n", 3, "nested"),
    ("x = 1\n# BEGIN SOLUTION\nx = 2\n", 2, "never closed"),
    ("x = 1\n# END SOLUTION\n", 2, "does not match"),
    ("# BEGIN HIDDEN TESTS\n# END SOLUTION\n", 2, "does not match"),
])
def test_assign_refuses_bad_markers(source, line, words):
    with pytest.raises(MarkerError, match=f"line {line}: .*{words}"):
        strip_solution(source)


def test_assign_command_refuses_bad_markers_in_one_line(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("x = 1\n# BEGIN SOLUTION\nx = 2\n")
    proc = run_cli("assign", str(path), "-o", str(tmp_path / "out.py"), tmp_path=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == ("python -m nflows_np: error: assign: bad.py, line 2: "
                           "'# BEGIN SOLUTION' is never closed by '# END SOLUTION'\n")
    assert not (tmp_path / "out.py").exists()


def _notebook(*sources: str) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_markdown_cell("# BEGIN SOLUTION (markdown is left alone)"))
    for count, source in enumerate(sources, start=1):
        cell = nbformat.v4.new_code_cell(source, execution_count=count)
        cell.outputs = [nbformat.v4.new_output("stream", text="old output\n")]
        notebook.cells.append(cell)
    return notebook


def test_assign_ipynb(tmp_path, capsys):
    source = tmp_path / "sol.ipynb"
    source.write_text(nbformat.writes(_notebook("import numpy as np", PY_SOLUTION)))
    assert cli.main(["assign", str(source), "-o", str(tmp_path / "student.ipynb")]) == 0
    student = nbformat.read(str(tmp_path / "student.ipynb"), as_version=4)
    markdown, first, second = student.cells
    assert markdown.source.startswith("# BEGIN SOLUTION")
    assert first.source == "import numpy as np"
    assert "raise NotImplementedError" in second.source and "2 * x" not in second.source
    assert "double(2)" not in second.source
    assert all(cell.outputs == [] and cell.execution_count is None for cell in (first, second))


def test_assign_ipynb_error_names_cell_and_line(tmp_path):
    source = tmp_path / "sol.ipynb"
    source.write_text(nbformat.writes(_notebook("x = 1", "y = 2\n# BEGIN SOLUTION\ny = 3\n")))
    with pytest.raises(MarkerError, match="sol.ipynb, cell 3, line 2: .*never closed"):
        assign_file(str(source), str(tmp_path / "out.ipynb"))
    assert not (tmp_path / "out.ipynb").exists()


def test_committed_student_file_is_exactly_what_assign_writes(tmp_path):
    assign_file(str(SOLUTION), str(tmp_path / "student.py"))
    assert (tmp_path / "student.py").read_bytes() == STUDENT.read_bytes(), (
        "regenerate with: python -m nflows_np assign "
        f"{ASSIGNMENT.solution} -o {ASSIGNMENT.student}")


# ---- command line --------------------------------------------------------------------------

def test_grade_list(capsys):
    assert cli.main(["grade", "--list"]) == 0
    assert capsys.readouterr().out.splitlines() == assignments.names()
    assert "change_of_variables" in assignments.names()


def test_bad_arguments_on_the_command_line(tmp_path):
    proc = run_cli("grade", str(SOLUTION), "--assignment", "no_such_thing", "--json", "results.json",
                   tmp_path=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == ("python -m nflows_np: error: grade: unknown assignment 'no_such_thing' "
                           f"(available: {', '.join(assignments.names())})\n")
    report = json.loads((tmp_path / "results.json").read_text())
    assert_gradescope(report)
    assert report["score"] == 0.0 and "unknown assignment" in report["output"]


@pytest.mark.parametrize("args, words", [
    (["grade", "missing.py", "--assignment", "change_of_variables"], "submission not found"),
    (["grade", "SOLUTION"], "--assignment"),
    (["grade"], "SUBMISSION"),
    (["grade", "SOLUTION", "--assignment", "change_of_variables", "--seed", "x"], "--seed"),
    (["grade", "SOLUTION", "--assignment", "change_of_variables", "--timeout", "-1"], "--timeout"),
    (["grade", "SOLUTION", "--assignment", "change_of_variables", "--sandbox-user", "no_such_user_xyz"],
     "no such user"),
    (["grade", "notes.txt", "--assignment", "change_of_variables"], ".py or .ipynb"),
    (["assign", "missing.py", "-o", "out.py"], "no such file"),
    (["assign", "SOLUTION"], "-o DEST"),
])
def test_bad_arguments_give_one_line_and_still_a_report(args, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a submission")
    args = [str(SOLUTION) if arg == "SOLUTION" else arg for arg in args]
    json_args = ["--json", "results.json"] if args[0] == "grade" else []
    assert cli.main([*args, *json_args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    if json_args:
        report = json.loads((tmp_path / "results.json").read_text())
        assert_gradescope(report)
        assert report["score"] == 0.0 and words in report["output"]


def test_grader_failure_still_writes_a_valid_report(tmp_path, monkeypatch, capsys):
    from nflows_np.cli import grade as grading_cli

    def broken(*args, **kwargs):
        raise RuntimeError("the grader is broken")

    monkeypatch.setattr(grading_cli, "grade_submission", broken)
    results = tmp_path / "results.json"
    status = cli.main(["grade", str(SOLUTION), "--assignment", "change_of_variables",
                       "--json", str(results)])
    assert status == 1
    report = json.loads(results.read_text())
    assert_gradescope(report)
    assert report["score"] == 0.0 and "the grader is broken" in report["output"]
    assert len(report["tests"]) == len(ASSIGNMENT.cases)


def test_sandbox_user_refuses_an_interpreter_it_cannot_run(tmp_path, monkeypatch, capsys):
    """An interpreter the sandbox user cannot reach is refused in one line, before any case runs.

    (Grading as the sandbox user itself is tested in test_homework.py, with the
    system interpreter.)
    """
    assert os.geteuid() == 0, "the grader's tests run as root here and in CI (see .ci/run)"
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    python = hidden / "python3"
    python.symlink_to(sys.executable)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["grade", str(SOLUTION), "--assignment", "change_of_variables",
                     "--sandbox-user", "nobody", "--python", str(python)]) == 2
    err = capsys.readouterr().err
    assert "cannot run" in err and err.count("\n") == 1
