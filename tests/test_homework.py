"""The homework assignments: solutions, student versions, typical bugs, the sandbox user.

For every assignment in ``nflows_np/grading/assignments``: the solution scores
full marks within 30 s; the generated student version scores 0 with a valid
``results.json``; the committed student file is exactly what ``assign`` writes;
and typical student bugs lose the points of the cases they affect -- with the
hint that names the bug -- and of no other case.  Every grading goes through
the real command line; one module fixture starts them all, three at a time
(a 2-core machine), longest first.

As root (here and in CI) every grading runs in the bubblewrap sandbox, the
submission as a uid of its own with the system interpreter ``/usr/bin/python3`` and
Debian's numpy (``apt-get install -y bubblewrap python3-numpy``); hostile
submissions are in tests/grading/test_hostile.py.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from test_grading import assert_gradescope  # one definition of Gradescope's results.json shape

from nflows_np.grading import assignments
from nflows_np.grading.markers import assign_file

ROOT = pathlib.Path(__file__).resolve().parents[1]
HOMEWORK = ROOT / "lectures" / "homework"
NAMES = assignments.names()
ASSIGNMENTS = {name: assignments.load(name) for name in NAMES}
SYSTEM_PYTHON = "/usr/bin/python3"
SECONDS_PER_ASSIGNMENT = 30.0  # the whole command, start-up included, three gradings at once on 2 cores
BUG_SEED = "7"


def run_cli(*args: str, cwd: pathlib.Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """``python -m nflows_np ARGS`` in ``cwd``, its temporary files under ``cwd/tmp``."""
    (cwd / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(cwd / "tmp"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "nflows_np", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


# ---- typical student bugs -----------------------------------------------------------------

@dataclass(frozen=True)
class Bug:
    """A typical mistake, made by editing the solution source.

    ``affected`` maps each case the bug must cost points to words its feedback
    must contain ("" for none); every other case must pass, except those in
    ``may_fail`` (training results that a wrong gradient may or may not spoil).
    """

    assignment: str
    replacements: tuple[tuple[str, str], ...]
    affected: dict[str, str]
    may_fail: frozenset[str] = field(default_factory=frozenset)


def _case(assignment: str, prefix: str) -> str:
    """The one case of ``assignment`` whose name starts with ``prefix``."""
    names = [case.name for case in ASSIGNMENTS[assignment].cases if case.name.startswith(prefix)]
    assert len(names) == 1, (assignment, prefix, names)
    return names[0]


def _affected(assignment: str, **prefixes_and_words: str) -> dict[str, str]:
    return {_case(assignment, prefix): words for prefix, words in prefixes_and_words.items()}


def _bugs() -> dict[str, Bug]:
    planar, nvp, lu, syl = "planar_flow", "realnvp_coupling", "lu_linear", "sylvester_lemma"
    train_planar = frozenset({_case(planar, "train_planar")})
    train_nvp = frozenset({_case(nvp, "train_realnvp")})
    norm_hint = "divided by ‖w‖ instead of ‖w‖²"
    return {
        "planar: û divided by ‖w‖": Bug(
            planar, (("w / (w @ w)", "w / np.sqrt(w @ w)"),),
            {case.name: "" for case in ASSIGNMENTS[planar].cases}
            | _affected(planar, **{"u_hat: û at": norm_hint, "inverse: x": norm_hint,
                                   "inverse: log": norm_hint})),
        "planar: log-det sign of inverse": Bug(
            planar, (("return z + t[:, None] * u_hat, np.log(psi)", "return z + t[:, None] * u_hat, -np.log(psi)"),),
            {_case(planar, "inverse: log"): "log-det sign", _case(planar, "inverse: 5-D"): "log-det sign",
             _case(planar, "round trip"): "", _case(planar, "reverse_kl_step"): ""},
            train_planar),
        "planar: backward misses the terms through û": Bug(
            planar, (('self.grads["u"] += grad_u_hat + along_w * dk_ds * w', 'self.grads["u"] += grad_u_hat'),
                     ('self.grads["w"] += grad_w + k * grad_u_hat + along_w * (dk_ds * u - 2.0 * k / norm2 * w)',
                      'self.grads["w"] += grad_w')),
            {_case(planar, "backward: ∂L/∂u"): "û was treated as a parameter",
             _case(planar, "backward: ∂L/∂w"): "û was treated as a parameter",
             _case(planar, "backward: 5-D"): "û was treated as a parameter",
             _case(planar, "reverse_kl_step"): ""},
            train_planar),
        "realnvp: backward misses the clamp's derivative": Bug(
            nvp, (("grad_s * (1.0 - (s / LOG_SCALE_BOUND) ** 2)", "grad_s"),),
            {_case(nvp, "forward backward: ∂L/∂x"): "the clamp's derivative is missing",
             _case(nvp, "forward backward: ∂L/∂θ"): "the clamp's derivative is missing",
             _case(nvp, "inverse backward: ∂L/∂z"): "the clamp's derivative is missing",
             _case(nvp, "inverse backward: ∂L/∂θ"): "the clamp's derivative is missing",
             _case(nvp, "forward and backward: 5-D"): "the clamp's derivative is missing",
             _case(nvp, "nll_step"): ""},
            train_nvp),
        "realnvp: log-det sign of forward": Bug(
            nvp, (("return z, s.sum(axis=1)", "return z, -s.sum(axis=1)"),),
            {_case(nvp, "forward: log"): "log-det sign", _case(nvp, "forward and backward: 5-D"): "log-det sign",
             _case(nvp, "round trip"): "", _case(nvp, "nll_step"): "log-det sign"},
            train_nvp),
        "lu: gradient in the unused entries": Bug(
            lu, (('self.grads["lower"] += np.tril(grad_lower, -1)', 'self.grads["lower"] += grad_lower'),
                 ('self.grads["upper"] += np.triu(grad_upper, 1)', 'self.grads["upper"] += grad_upper')),
            {_case(lu, "forward backward: ∂L/∂lower"): "the unused entries got a gradient",
             _case(lu, "inverse backward: ∂L/∂lower"): "the unused entries got a gradient",
             _case(lu, "forward and backward: 7-D"): "the unused entries got a gradient",
             _case(lu, "inverse and backward: 7-D"): "the unused entries got a gradient"}),
        "lu: Pᵀ instead of P in weight()": Bug(
            lu, (("return (lower @ upper)[self.perm]", "return (lower @ upper)[np.argsort(self.perm)]"),),
            {_case(lu, "weight"): "Pᵀ instead of P"}),
        "sylvester: the m×m determinant": Bug(
            syl, (("np.linalg.slogdet(np.eye(d) + W.T @ V)", "np.linalg.slogdet(np.eye(V.shape[0]) + V @ W.T)"),),
            {_case(syl, "det_lemma: m = 20 000"): "MemoryError"}),
        "image_layers: log-det without the H·W factor": Bug(
            "image_layers", (("np.full(x.shape[0], h * w * np.linalg.slogdet(weight)[1])",
                              "np.full(x.shape[0], np.linalg.slogdet(weight)[1])"),),
            {_case("image_layers", "conv1x1_forward: log"): "the H·W factor is missing",
             _case("image_layers", "conv1x1: 5×4×6"): "the H·W factor is missing"}),
        "image_layers: squeeze with the channels block first": Bug(
            "image_layers", (("images.transpose(0, 1, 3, 5, 2, 4)", "images.transpose(0, 3, 5, 1, 2, 4)"),),
            {_case("image_layers", "squeeze: 2×4×4"): "ordered block first",
             _case("image_layers", "squeeze: 3×6×4"): "ordered block first"}),
        "image_layers: ∂L/∂W without the log-det term": Bug(
            "image_layers", (("grad_weight += h * w * np.sum(grad_log_det) * np.linalg.inv(weight).T", "pass"),),
            {_case("image_layers", "conv1x1_backward: ∂L/∂W"): "the log-det's gradient is missing",
             _case("image_layers", "conv1x1_backward: 5×4×6"): "the log-det's gradient is missing"}),
        "change_of_variables: log det A without the absolute value": Bug(
            "change_of_variables",
            (("_, log_abs_det_A = np.linalg.slogdet(A)", "log_abs_det_A = np.log(np.linalg.det(A))"),),
            {_case("change_of_variables", "affine_log_prob: 3-D"): "mind the absolute value",
             _case("change_of_variables", "affine_log_prob: the density"): "integrates to"}),
    }


BUGS = _bugs()


def _buggy_source(bug: Bug) -> str:
    text = (ROOT / ASSIGNMENTS[bug.assignment].solution).read_text()
    for old, new in bug.replacements:
        assert text.count(old) == 1, f"{bug.assignment}: the solution no longer contains {old!r}"
        text = text.replace(old, new)
    return text


# ---- all gradings, started together -------------------------------------------------------------

@dataclass
class Run:
    proc: subprocess.CompletedProcess
    report: dict
    seconds: float


def _grade(tmp: pathlib.Path, assignment: str, filename: str, text: str, *extra: str) -> Run:
    (tmp / filename).write_text(text)
    start = time.monotonic()
    proc = run_cli("grade", filename, "--assignment", assignment, "--json", "results.json", *extra, cwd=tmp)
    seconds = time.monotonic() - start
    return Run(proc, json.loads((tmp / "results.json").read_text()), seconds)


def _self_check(path: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, path.name], cwd=path.parent, capture_output=True, text=True,
                          timeout=180, env={**os.environ, "PYTHONPATH": ""})


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """``{key: Future}`` of every grading run (and of the solutions' own self-checks)."""
    jobs = {}
    for name, assignment in ASSIGNMENTS.items():
        solution = ROOT / assignment.solution
        student = ROOT / assignment.student
        jobs[("solution", name)] = (name, solution.name, solution.read_text(), ())
        jobs[("student", name)] = (name, student.name, student.read_text(), ())
    for label, bug in BUGS.items():
        jobs[("bug", label)] = (bug.assignment, "submission.py", _buggy_source(bug), ("--seed", BUG_SEED))

    def run(key, job):
        return _grade(tmp_path_factory.mktemp(key[0]), *job[:3], *job[3])

    slow = ("realnvp_coupling", "planar_flow")  # the training cases take longest: start them first
    order = sorted(jobs, key=lambda key: (jobs[key][0] not in slow, key[0] == "student"))
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {key: pool.submit(run, key, jobs[key]) for key in order}
        for name, assignment in ASSIGNMENTS.items():
            futures[("self_check", name)] = pool.submit(_self_check, ROOT / assignment.solution)
    return futures


# ---- every assignment ----------------------------------------------------------------------------

def test_the_assignments_are_all_there():
    assert {"change_of_variables", "planar_flow", "realnvp_coupling", "lu_linear"} <= set(NAMES)
    assert len(NAMES) >= 4
    for name, assignment in ASSIGNMENTS.items():
        assert (ROOT / assignment.solution).is_file() and (ROOT / assignment.student).is_file()
        assert len({case.name for case in assignment.cases}) == len(assignment.cases), name
        assert any(case.hidden for case in assignment.cases), f"{name} has no hidden case"
        assert assignment.budget <= SECONDS_PER_ASSIGNMENT


@pytest.mark.parametrize("name", NAMES)
def test_solution_scores_full_marks_within_30_seconds(name, graded):
    run = graded[("solution", name)].result()
    assert run.proc.returncode == 0, run.proc.stderr
    assert_gradescope(run.report)
    failed = [f"{t['name']}: {t['output']}" for t in run.report["tests"] if t["status"] != "passed"]
    assert not failed, "\n".join(failed)
    assert run.report["score"] == ASSIGNMENTS[name].max_score
    # The whole command, interpreter start included, while other gradings share the two cores.
    assert run.seconds < SECONDS_PER_ASSIGNMENT and run.report["execution_time"] < SECONDS_PER_ASSIGNMENT


@pytest.mark.parametrize("name", NAMES)
def test_student_version_scores_zero_without_breaking_the_grader(name, graded):
    run = graded[("student", name)].result()
    assert run.proc.returncode == 0, run.proc.stderr
    assert_gradescope(run.report)
    assert run.report["score"] == 0.0
    assert len(run.report["tests"]) == len(ASSIGNMENTS[name].cases)
    for test in run.report["tests"]:
        assert test["status"] == "failed" and "NotImplementedError" in test["output"], test


@pytest.mark.parametrize("name", NAMES)
def test_committed_student_file_is_exactly_what_assign_writes(name, tmp_path):
    assignment = ASSIGNMENTS[name]
    out = tmp_path / pathlib.Path(assignment.student).name
    assign_file(str(ROOT / assignment.solution), str(out))
    assert out.read_bytes() == (ROOT / assignment.student).read_bytes(), (
        f"regenerate with: python -m nflows_np assign {assignment.solution} -o {assignment.student}")


@pytest.mark.parametrize("name", NAMES)
def test_solution_passes_its_own_self_checks(name, graded):
    proc = graded[("self_check", name)].result()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all self-checks passed" in proc.stdout


@pytest.mark.parametrize("label", sorted(BUGS))
def test_typical_bug_loses_exactly_the_affected_cases(label, graded):
    bug = BUGS[label]
    run = graded[("bug", label)].result()
    assert run.proc.returncode == 0, run.proc.stderr
    assert_gradescope(run.report)
    tests = {test["name"]: test for test in run.report["tests"]}
    assert set(bug.affected) <= set(tests)
    for name, test in tests.items():
        if name in bug.affected:
            assert test["score"] < test["max_score"] and test["status"] == "failed", (name, test["output"])
            assert bug.affected[name] in test["output"], (name, test["output"])
        elif name not in bug.may_fail:
            assert test["status"] == "passed", (name, test["output"])
    assert run.report["score"] < ASSIGNMENTS[bug.assignment].max_score
    if set(tests) - set(bug.affected) - bug.may_fail:  # (a wrong û spoils every case of planar_flow)
        assert run.report["score"] > 0.0


def test_planar_feedback_names_quantity_tolerance_place_and_values(graded):
    tests = {t["name"]: t["output"] for t in graded[("bug", "planar: û divided by ‖w‖")].result().report["tests"]}
    feedback = tests[_case("planar_flow", "u_hat: û at")]
    for words in ("û = u_hat()", "values within tolerance (atol=1e-08, rtol=1e-06)", "max abs error",
                  "at index (", "expected", "received", "diagnosis: û divided by ‖w‖ instead of ‖w‖²", "hint:"):
        assert words in feedback, feedback


def test_training_cases_report_the_grader_s_own_measurement(graded):
    planar = {t["name"]: t["output"] for t in graded[("solution", "planar_flow")].result().report["tests"]}
    assert "KL(p(x|θ)‖π)" in planar[_case("planar_flow", "train_planar")]
    nvp = {t["name"]: t["output"] for t in graded[("solution", "realnvp_coupling")].result().report["tests"]}
    assert "test NLL − entropy of moons" in nvp[_case("realnvp_coupling", "train_realnvp")]


def test_private_inputs_never_reach_the_submission(tmp_path):
    """The held-out data of a training case stays in the grader (inputs named "_...")."""
    from nflows_np.grading.assignments import realnvp_coupling

    case = next(case for case in realnvp_coupling.ASSIGNMENT.cases if case.name.startswith("train_realnvp"))
    spy = ("def train_realnvp(x_train, seed):\n"
           "    import importlib.util\n"
           "    spec = importlib.util.spec_from_file_location('framing', '/case/framing.py')\n"
           "    framing = importlib.util.module_from_spec(spec)\n"
           "    spec.loader.exec_module(framing)\n"
           "    names = sorted(framing.decode(open('/case/inputs.bin', 'rb').read()))\n"
           "    raise RuntimeError('INPUTS ' + ','.join(names))\n")
    base = (ROOT / realnvp_coupling.ASSIGNMENT.solution).read_text()
    run = _grade(tmp_path, "realnvp_coupling", "spy.py", base + "\n\n" + spy, "--seed", "1")
    feedback = next(t["output"] for t in run.report["tests"] if t["name"] == case.name)
    assert "INPUTS seed,x_train" in feedback, feedback


# ---- the sandbox user, with the system interpreter --------------------------------------------------

def _nobody_can_run(python: str) -> bool:
    try:
        probe = subprocess.run([python, "-I", "-c", "import numpy"], user="nobody", extra_groups=[], cwd="/",
                               capture_output=True, timeout=60)
    except (KeyError, OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def _sandbox_missing() -> str:
    if os.geteuid() != 0:
        return "grading as the sandbox user needs root"
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (apt-get install -y bubblewrap)"
    if not _nobody_can_run(SYSTEM_PYTHON):
        return f"user 'nobody' cannot run {SYSTEM_PYTHON} with numpy (apt-get install -y python3-numpy)"
    return ""


needs_sandbox = pytest.mark.skipif(bool(_sandbox_missing()), reason=_sandbox_missing() or "-")


@pytest.mark.skipif(os.geteuid() != 0, reason="--sandbox-user needs root")
def test_sandbox_user_refuses_an_interpreter_it_cannot_run(tmp_path):
    """The grader's own Python (under /root) is not readable by nobody: a clear one-line refusal."""
    if _nobody_can_run(sys.executable):
        pytest.skip("here nobody can run the grader's own Python")
    (tmp_path / "solution.py").write_text((ROOT / ASSIGNMENTS["sylvester_lemma"].solution).read_text())
    proc = run_cli("grade", "solution.py", "--assignment", "sylvester_lemma", "--sandbox-user", "nobody",
                   "--python", sys.executable, "--json", "results.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert "cannot run" in proc.stderr and "--python" in proc.stderr and proc.stderr.count("\n") == 1
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["score"] == 0.0 and "cannot run" in report["output"]


def test_grade_refuses_a_missing_python(tmp_path):
    (tmp_path / "solution.py").write_text((ROOT / ASSIGNMENTS["sylvester_lemma"].solution).read_text())
    proc = run_cli("grade", "solution.py", "--assignment", "sylvester_lemma", "--python", "/nonexistent/python",
                   cwd=tmp_path)
    assert proc.returncode == 2 and "not an executable file" in proc.stderr


@needs_sandbox
def test_gradescope_autograder_zip_grades_as_the_sandbox_user(tmp_path):
    """build.sh writes the zip; its run_autograder grades a submission into results/results.json.

    As Gradescope runs it: as root, the submission as an unprivileged user, and the
    autograder's own tree (the references) out of the submission's reach.
    (setup.sh itself needs apt and the network, so it does not run here.)
    """
    gradescope = HOMEWORK / "gradescope"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    build = subprocess.run(["bash", str(gradescope / "build.sh"), "sylvester_lemma", str(tmp_path / "ag.zip")],
                           capture_output=True, text=True, env=env, timeout=120)
    assert build.returncode == 0, build.stderr
    root = tmp_path / "autograder"
    with zipfile.ZipFile(tmp_path / "ag.zip") as archive:
        names = set(archive.namelist())
        assert {"setup.sh", "run_autograder", "source/ASSIGNMENT", "source/requirements.txt",
                "source/nflows_np/grading/harness.py"} <= names
        archive.extractall(root)
    (root / "submission").mkdir()
    shutil.copy(ROOT / ASSIGNMENTS["sylvester_lemma"].solution, root / "submission" / "sylvester_lemma.py")
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADER_PYTHON": sys.executable,
           "CHILD_PYTHON": SYSTEM_PYTHON}
    proc = subprocess.run(["bash", str(root / "run_autograder")], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((root / "results" / "results.json").read_text())
    assert_gradescope(report)
    assert report["score"] == ASSIGNMENTS["sylvester_lemma"].max_score, report["output"]
    assert "mode: sandbox (bubblewrap); the submission runs as uid" in report["output"]
    # A submission that looks for the references where the autograder keeps them finds nothing.
    spy = ("\nimport os\n_honest = det_lemma\n"
           "def det_lemma(*args):\n"
           f"    for path in ({str(root / 'source')!r}, '/autograder/source'):\n"
           "        if os.path.exists(path):\n"
           "            raise RuntimeError('REFERENCE VISIBLE at ' + path)\n"
           "    return _honest(*args)\n")
    (root / "submission" / "sylvester_lemma.py").write_text(
        (ROOT / ASSIGNMENTS["sylvester_lemma"].solution).read_text() + spy)
    proc = subprocess.run(["bash", str(root / "run_autograder")], capture_output=True, text=True, env=env,
                          timeout=120)
    report = json.loads((root / "results" / "results.json").read_text())
    assert "REFERENCE VISIBLE" not in json.dumps(report)
    assert report["score"] == ASSIGNMENTS["sylvester_lemma"].max_score, report["output"]
    # No submission at all: still a valid report, score 0.
    (root / "submission" / "sylvester_lemma.py").unlink()
    proc = subprocess.run(["bash", str(root / "run_autograder")], capture_output=True, text=True, env=env,
                          timeout=120)
    report = json.loads((root / "results" / "results.json").read_text())
    assert_gradescope(report)
    assert report["score"] == 0.0 and "submission not found" in report["output"]
