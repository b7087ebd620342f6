"""Scoring that cannot be gamed: trivial answers earn nothing, pasted training results neither.

Unit level: for every case of every assignment, a trivial answer (all zeros,
or an input passed through) earns less than the whole case, and nothing at all
after the grader's rescaling.  End to end: the "free marks" submissions (a
constant density scaled to integrate to 1, an identity map, all zeros,
parameters trained offline and pasted) score what the template scores: 0.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from gradelib import ROOT, load, run_cli
from nflows_np.grading import assignments
from nflows_np.grading.runner import trivial_answers, trivial_fraction

NAMES = assignments.names()
SOLUTIONS = ROOT / "lectures" / "homework" / "solutions"


@pytest.mark.parametrize("name", NAMES)
def test_no_case_is_passed_by_a_trivial_answer(name):
    assignment = assignments.load(name)
    for index, case in enumerate(assignment.cases):
        rng = np.random.default_rng(np.random.SeedSequence([11, index]))
        inputs = {key: np.asarray(value) for key, value in case.make_inputs(rng).items()}
        expected = {key: np.asarray(value, dtype=np.float64) for key, value in case.reference(inputs).items()}
        assert trivial_fraction(case, inputs, expected) < 1.0, f"{name}: {case.name}"
        assert len(trivial_answers(inputs, expected)) >= 1


CONSTANT_DENSITY = '''
import numpy as np

def affine_log_prob(x, A, b):
    # constant on the grader's grid, scaled so that it integrates to 1 there
    return np.full(x.shape[0], -np.log(20.0 * 20.0))

def triangular_log_prob(x, a, c, alpha, beta):
    return np.full(x.shape[0], -np.log(16.0 * 60.0))
'''

LU_IDENTITY_AND_ZEROS = '''
import numpy as np
_Base = LULinear

class LULinear(_Base):
    def weight(self):
        return np.zeros((self.dim, self.dim)) if hasattr(self, "dim") else np.zeros_like(self.params["lower"])
    def forward(self, x):
        self._last = x
        return x.copy(), np.zeros(x.shape[0])
    def inverse(self, z):
        self._last = z
        return z.copy(), np.zeros(z.shape[0])
    def backward(self, grad_out, grad_log_det):
        return np.zeros_like(grad_out)

def solve_lower_unit(M, B):
    return np.zeros_like(B)

def solve_upper(M, B):
    return np.zeros_like(B)

def fit_gaussian(x_train, seed):
    return LULinear(x_train.shape[1], rng=seed)
'''

PASTED_PLANAR = '''
_honest_train_planar = train_planar

def train_planar(seed, num_layers=NUM_LAYERS):
    # "trained offline": the same parameters whatever the grader's seed
    return _honest_train_planar(12345, num_layers)
'''


def _submissions():
    template = (ROOT / "lectures" / "homework" / "change_of_variables.py").read_text()
    return {
        "constant_density": ("change_of_variables", template + CONSTANT_DENSITY),
        "lu_identity_and_zeros": ("lu_linear", (ROOT / "lectures" / "homework" / "lu_linear.py").read_text()
                                  + LU_IDENTITY_AND_ZEROS),
        "pasted_planar": ("planar_flow", (SOLUTIONS / "planar_flow.py").read_text() + PASTED_PLANAR),
    }


@pytest.fixture(scope="module")
def free_marks(tmp_path_factory):
    def run(key, assignment, text):
        tmp = tmp_path_factory.mktemp(key)
        (tmp / f"{assignment}.py").write_text(text)
        proc = run_cli("grade", f"{assignment}.py", "--assignment", assignment, "--json", "r.json",
                       "--seed", "5", cwd=tmp)
        return proc, load(tmp / "r.json")

    with ThreadPoolExecutor(max_workers=3) as pool:
        return {key: pool.submit(run, key, *job) for key, job in _submissions().items()}


@pytest.mark.parametrize("key", ["constant_density", "lu_identity_and_zeros"])
def test_free_marks_submissions_score_what_the_template_scores(key, free_marks):
    proc, report = free_marks[key].result()
    assert proc.returncode == 0, proc.stderr
    assert report["score"] == 0.0, json.dumps(
        [(t["name"], t["score"], t["output"][:300]) for t in report["tests"] if t["score"]], indent=1)


def test_pasted_training_parameters_earn_nothing(free_marks):
    proc, report = free_marks["pasted_planar"].result()
    assert proc.returncode == 0, proc.stderr
    tests = {t["name"]: t for t in report["tests"]}
    training = next(t for name, t in tests.items() if name.startswith("train_planar"))
    assert training["score"] == 0.0 and "same parameters for the seeds" in training["output"]
    assert all(t["status"] == "passed" for name, t in tests.items() if not name.startswith("train_planar"))
