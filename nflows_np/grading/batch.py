"""Grading a whole class: ``python -m nflows_np grade-all SUBMISSIONS_DIR --assignment NAME``.

Each student is graded by its own ``python -m nflows_np grade`` process (so one
submission can never stop the batch, and every grading has its own sandbox and
cleanup), several at once.  The output folder gets one ``STUDENT/results.json``
and ``STUDENT/report.txt`` per student, ``grades.csv`` (one row per student,
one column per case), ``summary.txt`` and ``histogram.png``.

Layouts of ``SUBMISSIONS_DIR``: a folder of ``.py`` / ``.ipynb`` files (one per
student, named after the student), or a folder of folders (one per student,
as in Gradescope's "Export submissions": ``submission_123/``), in which the
file named after the assignment is graded, else the only ``.py`` / ``.ipynb``.
"""
from __future__ import annotations

import csv
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from nflows_np.grading.cases import Assignment
from nflows_np.grading.report import gradescope_dict, sanitize, write_json_atomic
from nflows_np.grading.runner import failed_result
from nflows_np.grading.submission import SUFFIXES

MAX_ENTRIES = 200        # files and folders looked at per student folder
MAX_DEPTH = 3            # folder levels searched per student
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Student:
    """One row of the class: who, which file, and the grading's results.json."""

    name: str
    path: str | None
    problem: str = ""
    report: dict = field(default_factory=dict)
    seconds: float = 0.0


def _find_in_folder(folder: str, assignment: str) -> tuple[str | None, str]:
    """The file to grade in one student's folder, or ``(None, why)``; bounded in depth and size."""
    found: list[str] = []
    seen = 0
    stack = [(folder, 0)]
    while stack:
        top, depth = stack.pop()
        try:
            entries = sorted(os.scandir(top), key=lambda entry: entry.name)
        except OSError as exc:
            return None, f"cannot read the folder: {exc.strerror}"
        for entry in entries:
            seen += 1
            if seen > MAX_ENTRIES:
                return None, f"more than {MAX_ENTRIES} files and folders in the submission"
            if entry.is_dir(follow_symlinks=False) and depth + 1 < MAX_DEPTH:
                stack.append((entry.path, depth + 1))
            elif entry.is_file(follow_symlinks=False) and entry.name.endswith(SUFFIXES):
                found.append(entry.path)
    for suffix in SUFFIXES:
        named = [path for path in found if os.path.basename(path) == assignment + suffix]
        if named:
            return named[0], ""
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, "no .py or .ipynb file in the submission"
    return None, f"{len(found)} .py/.ipynb files and none named {assignment}.py or {assignment}.ipynb"


def find_submissions(directory: str, assignment: str) -> list[Student]:
    """The students of ``directory`` (see the module docstring), sorted by name."""
    students = []
    names: set[str] = set()
    for entry in sorted(os.scandir(directory), key=lambda entry: entry.name):
        if entry.name.startswith("."):
            continue
        if entry.is_file(follow_symlinks=False) and entry.name.endswith(SUFFIXES):
            name, path, problem = os.path.splitext(entry.name)[0], entry.path, ""
        elif entry.is_dir(follow_symlinks=False):
            name = entry.name
            path, problem = _find_in_folder(entry.path, assignment)
        else:
            continue
        safe = _SAFE.sub("_", name).strip("._") or "student"
        while safe in names:
            safe += "_"
        names.add(safe)
        students.append(Student(safe, path, problem))
    return students


def _grade_one(student: Student, assignment: Assignment, out: str, options: Sequence[str]) -> Student:
    folder = os.path.join(out, student.name)
    os.makedirs(folder, exist_ok=True)
    results = os.path.join(folder, "results.json")
    start = time.monotonic()
    if student.path is None:
        report = gradescope_dict(failed_result(assignment, f"the submission could not be graded: "
                                                           f"{student.problem}"))
        write_json_atomic(results, report)
        student.report = report
        return student
    command = [sys.executable, "-m", "nflows_np", "grade", student.path, "--assignment", assignment.name,
               "--json", results, *options]
    proc = subprocess.run(command, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)
    with open(os.path.join(folder, "report.txt"), "w", encoding="utf-8") as handle:
        handle.write(sanitize(proc.stdout + proc.stderr))
    student.seconds = time.monotonic() - start
    try:
        with open(results, encoding="utf-8") as handle:
            student.report = json.load(handle)
    except (OSError, ValueError) as exc:
        student.problem = f"the grader wrote no results.json (exit status {proc.returncode}): {exc}"
        student.report = gradescope_dict(failed_result(assignment, student.problem))
        write_json_atomic(results, student.report)
    if proc.returncode != 0 and not student.problem:
        student.problem = sanitize(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip()
                                   else f"exit status {proc.returncode}")
    return student


def grade_all(directory: str, assignment: Assignment, out: str, jobs: int,
              options: Sequence[str] = ()) -> list[Student]:
    """Grade every student of ``directory`` into ``out``; returns them with their reports."""
    students = find_submissions(directory, assignment.name)
    os.makedirs(out, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(_grade_one, student, assignment, out, options) for student in students]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _csv_cell(text: str) -> str:
    # Spreadsheets run cells that start with = + - @ as formulas.
    text = sanitize(str(text)).replace("\n", " ")
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def write_csv(path: str, students: Sequence[Student], assignment: Assignment) -> None:
    """``grades.csv``: student, file, score, max score, problem, then one column per case."""
    cases = [case.name for case in assignment.cases]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "file", "score", "max_score", "problem", *cases])
        for student in students:
            scores = {test.get("name"): test.get("score") for test in student.report.get("tests", [])}
            writer.writerow([_csv_cell(student.name), _csv_cell(os.path.basename(student.path or "")),
                             student.report.get("score", 0.0), assignment.max_score,
                             _csv_cell(student.problem), *[scores.get(name, 0.0) for name in cases]])


def summary(students: Sequence[Student], assignment: Assignment, bins: int = 10) -> str:
    """Mean, median, a text histogram, the mean of every case, and the students not graded."""
    scores = [float(student.report.get("score", 0.0)) for student in students]
    top = assignment.max_score
    lines = [f"{assignment.name}: {len(students)} submissions, max score {top:g}"]
    if scores:
        lines.append(f"mean {statistics.mean(scores):.2f}, median {statistics.median(scores):.2f}, "
                     f"min {min(scores):.2f}, max {max(scores):.2f}")
        counts = [0] * bins
        for score in scores:
            counts[min(bins - 1, int(bins * score / top))] += 1
        for index, count in enumerate(counts):
            low, high = top * index / bins, top * (index + 1) / bins
            lines.append(f"  [{low:5.1f}, {high:5.1f}{']' if index == bins - 1 else ')'} "
                         f"{'#' * count} {count}")
    lines.append("per case (mean score / max, share passed):")
    for case in assignment.cases:
        got = [next((t["score"] for t in s.report.get("tests", []) if t.get("name") == case.name), 0.0)
               for s in students]
        passed = sum(score >= case.weight for score in got)
        mean = statistics.mean(got) if got else 0.0
        lines.append(f"  {mean:5.2f} / {case.weight:<4g} {passed}/{len(got)} passed  {case.name}")
    failed = [student for student in students if student.problem]
    lines.append(f"failures to run: {len(failed)}")
    lines.extend(f"  {student.name}: {student.problem}" for student in failed)
    return sanitize("\n".join(lines))


def draw_histogram(path: str, students: Sequence[Student], assignment: Assignment) -> None:
    """The distribution of total scores as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = [float(student.report.get("score", 0.0)) for student in students]
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.hist(scores, bins=20, range=(0.0, assignment.max_score), color="tab:blue", edgecolor="white")
    axes.set_xlabel(f"score (out of {assignment.max_score:g})")
    axes.set_ylabel("students")
    axes.set_title(f"{assignment.name}: {len(scores)} submissions")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
