"""Grading a submission: every case in the sandbox, every comparison in the grader.

:func:`grade_submission` is what ``python -m nflows_np grade`` calls.  It makes
this process a child subreaper while it runs, so call it from a process of its
own (the CLI is one) rather than from a long-lived interactive session.
"""
from __future__ import annotations

import pwd
import secrets
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from nflows_np.grading.cases import Assignment, Case, Outcome
from nflows_np.grading.sandbox import OUTPUT_LIMIT, CaseRun, Sandbox
from nflows_np.grading.submission import Submission, SubmissionError, read_submission

_SHOWN_OUTPUT_CHARS = 2000
MAX_FEEDBACK_CHARS = 6000  # per case: what the student sees, output excerpts included
PRIVATE_PREFIX = "_"  # case inputs named "_..." are never sent to the child
_MIN_CASE_SECONDS = 0.5


@dataclass
class CaseResult:
    """The graded outcome of one case, as reported."""

    name: str
    max_score: float
    score: float
    hidden: bool
    feedback: str
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score


@dataclass
class GradeResult:
    """The whole run, as reported on stdout and in ``results.json``."""

    assignment: str
    title: str
    tests: list[CaseResult]
    seed: int | None = None
    execution_time: float = 0.0
    error: str = ""
    notes: list[str] = field(default_factory=list)
    grading_id: str = ""
    interrupted: bool = False

    @property
    def score(self) -> float:
        return 0.0 if self.error else round(sum(test.score for test in self.tests), 2)

    @property
    def max_score(self) -> float:
        return float(sum(test.max_score for test in self.tests))


def failed_result(assignment: Assignment | None, error: str, name: str = "") -> GradeResult:
    """A score-0 result that names ``error``; lists the cases as not run if known."""
    tests = []
    if assignment is not None:
        tests = [CaseResult(case.name, case.weight, 0.0, case.hidden, f"not run: {error}")
                 for case in assignment.cases]
    return GradeResult(assignment.name if assignment else name,
                       assignment.title if assignment else "", tests, error=error)


def _output_excerpt(run: CaseRun) -> str:
    parts = []
    for label, stream in (("printed", run.stdout), ("wrote to stderr", run.stderr)):
        if not stream.total:
            continue
        text = stream.text()[:_SHOWN_OUTPUT_CHARS]
        note = ""
        if stream.total > len(text):
            kept = "" if stream.total <= OUTPUT_LIMIT else f", only the first {OUTPUT_LIMIT // 1024} KiB were kept"
            note = f"\n[... {stream.total} bytes in all{kept}]"
        parts.append(f"your code {label}:\n{text}{note}")
    return "\n".join(parts)


def trivial_answers(inputs: dict, expected: dict) -> list[dict[str, np.ndarray]]:
    """Answers that take no work: all zeros, and each input passed through where its shape fits."""
    zeros = {name: np.zeros_like(value) for name, value in expected.items()}
    answers = [zeros]
    for key, value in inputs.items():
        value = np.asarray(value)
        if key.startswith(PRIVATE_PREFIX) or value.dtype.kind not in "biuf":
            continue
        fits = [name for name, want in expected.items() if want.shape == value.shape]
        if fits:
            answers.append({**zeros, **{name: value.astype(np.float64) for name in fits}})
    return answers


def trivial_fraction(case: Case, inputs: dict, expected: dict) -> float:
    """The largest fraction of ``case`` that a trivial answer (see :func:`trivial_answers`) earns."""
    best = 0.0
    for answer in trivial_answers(inputs, expected):
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fraction = float(case.score(inputs, expected, answer).fraction)
        except Exception:  # noqa: BLE001 - a scorer that cannot score it gives it nothing
            continue
        best = max(best, float(np.clip(np.nan_to_num(fraction), 0.0, 1.0)))
    return best


def _interpret(case: Case, run: CaseRun, inputs: dict, expected: dict, memory_limit: int) -> Outcome:
    if run.arrays is None:
        message = run.problem
        if "MemoryError" in message:
            message += f"\n(the memory limit is {memory_limit / 2**30:g} GiB)"
        return Outcome(0.0, message)
    outcome = case.score(inputs, expected, run.arrays)
    fraction = float(np.clip(np.nan_to_num(outcome.fraction), 0.0, 1.0))
    # Only what a trivial answer does not already earn counts (structural zeros, pass-through halves...).
    baseline = trivial_fraction(case, inputs, expected)
    if baseline <= 0.0 or fraction >= 1.0 > baseline:
        return Outcome(fraction, outcome.message)
    earned = 0.0 if baseline >= 1.0 else max(0.0, (fraction - baseline) / (1.0 - baseline))
    return Outcome(earned, f"{outcome.message}\n(all zeros, or an input passed through, already matches "
                           f"{baseline:.0%} of this case: only what goes beyond it counts)")


def _run_case(sandbox: Sandbox, submission: Submission, case: Case, rng: np.random.Generator,
              timeout: float) -> CaseResult:
    inputs = {name: np.asarray(value) for name, value in case.make_inputs(rng).items()}
    expected = {name: np.asarray(value, dtype=np.float64)
                for name, value in case.reference(inputs).items()}
    shapes = {name: value.shape for name, value in expected.items()}
    # Inputs whose name starts with "_" stay in the grader (e.g. held-out test data).
    public = {name: value for name, value in inputs.items() if not name.startswith(PRIVATE_PREFIX)}
    run = sandbox.run(submission, case.driver, public, shapes, timeout)
    outcome = _interpret(case, run, inputs, expected, sandbox.limits["RLIMIT_AS"])
    feedback = outcome.message
    if outcome.fraction < 1.0 and case.hint:
        feedback += f"\nhint: {case.hint}"
    excerpt = _output_excerpt(run)
    if excerpt:
        feedback += "\n" + excerpt
    if run.cleanup:
        feedback += "\n" + run.cleanup
    if len(feedback) > MAX_FEEDBACK_CHARS:
        feedback = feedback[:MAX_FEEDBACK_CHARS] + f"\n[... feedback cut at {MAX_FEEDBACK_CHARS} characters]"
    score = round(case.weight * outcome.fraction, 2)
    if outcome.fraction < 1.0:
        score = min(score, case.weight - 0.01)  # rounding must not turn a partial pass into a pass
    return CaseResult(case.name, case.weight, max(score, 0.0), case.hidden, feedback, run.seconds)


def grade_submission(path: str, assignment: Assignment, *, seed: int | None = None,
                     sandbox_user: str | tuple[int, int] | None = None, timeout: float | None = None,
                     budget: float | None = None, python: str = sys.executable,
                     isolated: bool = True) -> GradeResult:
    """Grade the submission at ``path`` against ``assignment``.

    Parameters
    ----------
    path : str
        A ``.py`` or ``.ipynb`` file.
    assignment : Assignment
    seed : int or None
        Seed of the case inputs; ``None`` draws one with :mod:`secrets`, so the
        submission cannot know the (hidden) inputs in advance.
    sandbox_user : str, (uid, gid) or None
        Run the submission as this user (the grader must be root); ``None``:
        as the grader's own user.
    timeout : float or None
        Caps every case's own timeout (seconds).
    budget : float or None
        Wall-clock seconds for all cases; defaults to ``assignment.budget``.
        Cases that no longer fit are reported as not run.
    python : str
        Interpreter for the child processes.
    isolated : bool
        Run every case in the bubblewrap sandbox (:mod:`.isolation`); ``False``
        is the unisolated self-check of one's own code.

    Returns
    -------
    GradeResult
    """
    start = time.monotonic()
    seed = secrets.randbits(63) if seed is None else int(seed)
    budget = assignment.budget if budget is None else float(budget)
    try:
        submission = read_submission(path)
    except SubmissionError as exc:
        result = failed_result(assignment, f"the submission could not be read: {exc}")
        result.error = ""  # the submission failed, not the grader: its cases simply score 0
        result.seed = seed
        return result
    tests = []
    user = sandbox_user if not isinstance(sandbox_user, str) else None
    if isinstance(sandbox_user, str):
        entry = pwd.getpwnam(sandbox_user)
        user = (entry.pw_uid, entry.pw_gid)
    with Sandbox(python=python, user=user, limits=assignment.limits, isolated=isolated) as sandbox:
        for index, case in enumerate(assignment.cases):
            rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
            case_timeout = case.timeout if timeout is None else min(case.timeout, timeout)
            remaining = budget - (time.monotonic() - start)
            if remaining < _MIN_CASE_SECONDS:
                tests.append(CaseResult(case.name, case.weight, 0.0, case.hidden,
                                        f"not run: the time budget of {budget:g} s for the "
                                        "whole assignment was used up by the cases before"))
                continue
            tests.append(_run_case(sandbox, submission, case, rng, min(case_timeout, remaining)))
        notes = sandbox.notes
        grading_id = sandbox.grading_id
    return GradeResult(assignment.name, assignment.title, tests, seed=seed,
                       execution_time=round(time.monotonic() - start, 3), notes=notes,
                       grading_id=grading_id)
