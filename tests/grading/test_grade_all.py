"""``grade-all``: a class graded in parallel, one bad submission never stopping the batch."""
from __future__ import annotations

import csv
import shutil

import pytest

from gradelib import HOSTILE, ROOT, load, run_cli
from test_hostile import SKIP

pytestmark = pytest.mark.skipif(bool(SKIP), reason=SKIP)

SOLUTION = ROOT / "lectures" / "homework" / "solutions" / "change_of_variables.py"
TEMPLATE = ROOT / "lectures" / "homework" / "change_of_variables.py"


def test_grade_all_grades_a_mixed_class_and_its_csv_matches_single_gradings(tmp_path):
    class_dir = tmp_path / "class"
    class_dir.mkdir()
    shutil.copy(SOLUTION, class_dir / "alice.py")
    shutil.copy(TEMPLATE, class_dir / "bob.py")
    (class_dir / "=carol.py").write_text(SOLUTION.read_text() + (HOSTILE / "infinite_loop.py").read_text())
    # Gradescope's export: one folder per submission
    (class_dir / "submission_4" / "deep").mkdir(parents=True)
    (class_dir / "submission_4" / "deep" / "change_of_variables.ipynb").write_text('{"cells": 5}')
    (class_dir / "submission_5").mkdir()
    (class_dir / "submission_6").mkdir()
    shutil.copy(SOLUTION, class_dir / "submission_6" / "change_of_variables.py")
    out = tmp_path / "graded"
    proc = run_cli("grade-all", str(class_dir), "--assignment", "change_of_variables", "--out", str(out),
                   "--seed", "3", "--timeout", "2", "--jobs", "3", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with open(out / "grades.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"carol", "alice", "bob", "submission_4", "submission_5", "submission_6"}
    assert float(rows["alice"]["score"]) == float(rows["submission_6"]["score"]) == 20.0
    assert float(rows["bob"]["score"]) == 0.0 and float(rows["submission_4"]["score"]) == 0.0
    assert rows["carol"]["file"] == "'=carol.py"  # no spreadsheet formula
    assert "no .py or .ipynb" in rows["submission_5"]["problem"]
    for name in rows:
        assert (out / name / "results.json").is_file()
    assert (out / "histogram.png").stat().st_size > 1000
    summary = (out / "summary.txt").read_text()
    assert "mean" in summary and "median" in summary and "failures to run: 1" in summary
    # The same seed, graded alone: the same scores, case by case.
    (tmp_path / "single").mkdir()
    shutil.copy(class_dir / "=carol.py", tmp_path / "single" / "carol.py")
    single = run_cli("grade", "carol.py", "--assignment", "change_of_variables", "--json", "r.json",
                     "--seed", "3", "--timeout", "2", cwd=tmp_path / "single")
    assert single.returncode == 0, single.stderr
    report = load(tmp_path / "single" / "r.json")
    assert float(rows["carol"]["score"]) == report["score"] == 15.0
    for test in report["tests"]:
        assert float(rows["carol"][test["name"]]) == test["score"]
