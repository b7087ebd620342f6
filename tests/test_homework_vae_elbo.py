"""The vae_elbo assignment's typical bugs: each loses exactly the cases it affects, with a diagnosis naming it.

(The solution's full marks, the student file's zero and its being what ``assign`` writes are
checked for every assignment, this one included, by tests/test_homework.py.)
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from nflows_np.grading import assignments

ROOT = pathlib.Path(__file__).resolve().parent.parent
ASSIGNMENT = assignments.load("vae_elbo")
SOLUTION = (ROOT / ASSIGNMENT.solution).read_text()


def _cases(prefix: str) -> list[str]:
    names = [case.name for case in ASSIGNMENT.cases if case.name.startswith(prefix)]
    assert names, prefix
    return names


# bug: (replacements in the solution, {case-name prefix: words its feedback must contain})
BUGS = {
    "KL sign in the ELBO": (
        (("return log_lik - gaussian_kl(mean, log_var)", "return log_lik + gaussian_kl(mean, log_var)"),),
        {"elbo: one draw": "the KL term has the wrong sign"}),
    "KL sign in the gradient": (
        (("g_mean = g_z - mean / n", "g_mean = g_z + mean / n"),
         ("std * eps - 0.5 * (np.exp(log_var) - 1.0) / n", "std * eps + 0.5 * (np.exp(log_var) - 1.0) / n")),
        {"elbo_grads: encoder mean": "the KL term's gradient has the wrong sign",
         "elbo_grads: encoder log-variance": "the KL term's gradient has the wrong sign",
         "elbo_grads: 8-D": "the KL term's gradient has the wrong sign"}),
    "½ missing from ∂z/∂v": (
        (("g_log_var = g_z * 0.5 * std * eps", "g_log_var = g_z * std * eps"),),
        {"elbo_grads: encoder log-variance": "the ½ is missing", "elbo_grads: 8-D": "the ½ is missing"}),
    "log q left out of the weights": (
        (("return log_lik + log_prior - log_q", "return log_lik + log_prior"),),
        {"log_weights": "log q(z|x) is missing"}),
    "log-sum-exp without the max shift": (
        (("return peak[:, 0] + np.log(np.mean(np.exp(log_w - peak), axis=1))",
          "return np.log(np.mean(np.exp(log_w), axis=1))"),),
        {"iwae_bound: log-weights near −742": "subtract the max log-weight",
         "iwae_bound: log-weights near −1000": "", "iwae_bound: log-weights near +1000": ""}),
    "log K forgotten": (
        (("np.log(np.mean(np.exp(log_w - peak), axis=1))", "np.log(np.sum(np.exp(log_w - peak), axis=1))"),),
        {"iwae_bound": "log K is missing"}),
}


def _grade(tmp: pathlib.Path, text: str) -> dict:
    (tmp / "submission.py").write_text(text)
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "nflows_np", "grade", "submission.py", "--assignment", "vae_elbo",
                           "--json", "results.json", "--seed", "12345"], check=False, cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=180)
    assert (tmp / "results.json").exists(), proc.stderr
    return json.loads((tmp / "results.json").read_text())


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    def run(label: str) -> dict:
        text = SOLUTION
        for old, new in BUGS[label][0]:
            assert text.count(old) == 1, f"the solution no longer contains {old!r}"
            text = text.replace(old, new)
        return _grade(tmp_path_factory.mktemp("bug"), text)

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {label: pool.submit(run, label) for label in BUGS}
        return {label: future.result() for label, future in futures.items()}


@pytest.mark.parametrize("label", sorted(BUGS))
def test_typical_bug_loses_exactly_the_affected_cases(label, reports):
    _, affected_prefixes = BUGS[label]
    affected = {name: words for prefix, words in affected_prefixes.items() for name in _cases(prefix)}
    tests = {test["name"]: test for test in reports[label]["tests"]}
    assert set(affected) <= set(tests)
    for name, test in tests.items():
        if name in affected:
            assert test["score"] < test["max_score"], f"{label}: {name} should lose points"
            assert affected[name] in test["output"], (name, test["output"])
        else:
            assert test["score"] == test["max_score"], f"{label}: {name} should pass\n{test['output']}"
