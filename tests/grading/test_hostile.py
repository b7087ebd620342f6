"""The hostile-submission suite: every attack a student out to cheat would try, graded for real.

Each file in tests/hostile/ is appended to the solution of ``change_of_variables``,
so the submission is correct except for the functions the attack redefines.  For
every attack: the cases it sabotages score no more than the template (0) and say
why; every other case passes; the grader exits normally with a results.json it
wrote itself (its grading id inside), peak memory under 400 MiB; no process of
the grading survives; no file is left in /tmp, /dev/shm or /var/tmp; and no
"ATTACK SUCCEEDED" (what an attack raises when it got through) shows anywhere.

All gradings start together from one module fixture, three at a time (a
2-core machine), as root: the bubblewrap sandbox, the submission as a fresh
uid of its own with the system interpreter.  A subset runs again as a student's unisolated
self-check, where the defences that do not depend on isolation must still hold.
"""
from __future__ import annotations

import json
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from gradelib import HOSTILE, ROOT, SYSTEM_PYTHON, assert_gradescope, files_named, load, processes_with, run_cli

from nflows_np.grading import isolation

SOLUTION = ROOT / "lectures" / "homework" / "solutions" / "change_of_variables.py"
STUDENT = ROOT / "lectures" / "homework" / "change_of_variables.py"
TIMEOUT = "3"           # seconds per case for hostile runs (an honest case takes ~0.2 s)
BUDGET = "90"           # for the whole grading: a loaded machine must not turn attacks into "not run"
PROBE_USER = (2**30 + 12345, 2**30 + 12345)  # a uid of no account, as the grader's own default
PEAK_RSS_MIB = 400.0    # the grader's own peak memory, whatever the submission sends
SN, AF, EW, TR = "standard_normal", "affine", "elementwise", "triangular"


def _sandbox_unavailable() -> str:
    if os.geteuid() != 0:
        return "the sandbox tests grade as root"
    bwrap = isolation.find_bwrap()
    if bwrap is None:
        return "bubblewrap is not installed (apt-get install -y bubblewrap)"
    why = isolation.check_bwrap(bwrap, PROBE_USER)
    if why:
        return f"bubblewrap cannot create namespaces here: {why}"
    try:
        isolation.probe_interpreter(SYSTEM_PYTHON, PROBE_USER)
    except OSError as exc:
        return f"{exc} (apt-get install -y python3-numpy)"
    return ""


SKIP = _sandbox_unavailable()
pytestmark = pytest.mark.skipif(bool(SKIP), reason=SKIP)


@dataclass(frozen=True)
class Attack:
    """What the attack must cost: the cases it sabotages (name prefixes) and words of their feedback."""

    lost: frozenset = frozenset()
    words: tuple = ("",)
    self_check: bool = False      # also graded as an unisolated self-check
    wait_after: float = 0.0       # seconds to wait, then check results.json again (late rewriters)
    max_seconds: float = 0.0      # a bound on the grading's execution_time (0: none)


ATTACKS = {
    # the classics: containment of one process
    "infinite_loop": Attack(frozenset({EW}), ("time limit exceeded",)),
    "os_exit": Attack(frozenset({EW}), ("without returning a result",)),
    "memory_hog": Attack(frozenset({EW}), ("MemoryError",)),
    "stdout_flood": Attack(frozenset({EW}), ("stopped reading",)),
    "equality_liar": Attack(frozenset({EW}), ("could not convert",)),
    "numpy_monkeypatch": Attack(frozenset({EW}), ("values within tolerance",)),
    "network_exfiltration": Attack(frozenset({EW}), ("Errno",)),
    "sigterm_children": Attack(frozenset({EW}), ("",)),
    "detached_rewriter": Attack(frozenset({EW}), ("",), wait_after=3.0),
    # the answer key
    "import_reference": Attack(frozenset({EW, TR}), ("refused by the grader",)),
    "answer_key_by_path": Attack(frozenset({EW}), ("no answer key found",)),
    "answer_key_via_proc": Attack(frozenset({TR}), ("nowhere in /proc",)),
    "scipy_import": Attack(frozenset({EW}), ("standard library and numpy only",), self_check=True),
    # the grader itself
    "forge_and_kill": Attack(),
    "sigstop_grader": Attack(),
    "stdlib_poison": Attack(),
    # a grader that waits for the zombie's thread takes as long as the thread lives (120 s)
    "zombie_leader": Attack(frozenset({EW}), ("time limit exceeded",), wait_after=4.0, max_seconds=60.0),
    # the transport and the case directory
    "transport_bombs": Attack(frozenset({SN, AF, EW, TR}), ("malformed", "larger than"), self_check=True),
    "deep_directory": Attack(self_check=True),
    # the host and the other cases
    "leftover_files": Attack(),
    "memory_across_processes": Attack(),
    "shm_leak": Attack(),
    "escapes": Attack(frozenset({EW}), ("red",), self_check=True),
}
PEEKERS = ("peek_alice", "peek_bob")  # two copies of peek_other_gradings.py graded at once
SANDBOX_USER_RUNS = ("forge_and_kill",)  # again with an explicit --sandbox-user (a numeric uid)


def _source(name: str, token: str, port: int) -> str:
    file = "peek_other_gradings" if name in PEEKERS else name
    text = (HOSTILE / f"{file}.py").read_text()
    text = (text.replace("TOKEN = None", f"TOKEN = {token!r}").replace("PORT = None", f"PORT = {port}")
            .replace('SECRET = "secret-of-SELF"', f'SECRET = "secret-of-{name}"'))
    return SOLUTION.read_text() + "\n\n" + text


@dataclass
class Graded:
    tmp: pathlib.Path
    token: str
    proc: subprocess.CompletedProcess
    report: dict
    finished: float


def _grade(tmp: pathlib.Path, token: str, filename: str, text: str, *extra: str,
           as_student: bool = False) -> Graded:
    (tmp / filename).write_text(text)
    # Absolute paths: the test's TOKEN (in the folder's name) shows in the grader's command line,
    # which is how the attacks that hunt for their grader through /proc recognise it.
    proc = run_cli("grade", str(tmp / filename), "--assignment", "change_of_variables",
                   "--json", str(tmp / "out" / "results.json"),
                   "--seed", "3", "--timeout", TIMEOUT, "--budget", BUDGET, *extra, cwd=tmp,
                   as_student=as_student)
    return Graded(tmp, token, proc, load(tmp / "out" / "results.json"), time.monotonic())


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """``{run: Future(Graded)}``; a loopback server records what the network attack sends."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    received: list[bytes] = []

    def listen():
        while server.fileno() >= 0:
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with connection:
                received.append(connection.recv(1 << 16))

    threading.Thread(target=listen, daemon=True).start()
    port = server.getsockname()[1]
    jobs = {}
    for name in (*PEEKERS, *ATTACKS):  # the two peekers first: they must run at the same time
        jobs[("sandbox", name)] = (name, ())
        if name in SANDBOX_USER_RUNS:
            jobs[("sandbox-user", name)] = (name, ("--sandbox-user", "54321", "--python", SYSTEM_PYTHON))
        if name in ATTACKS and ATTACKS[name].self_check:
            jobs[("self-check", name)] = (name, ("--no-sandbox",))

    def run(key):
        name, extra = jobs[key]
        token = f"nflowstest{secrets.token_hex(6)}"
        tmp = tmp_path_factory.mktemp(f"{key[0]}-{name}-{token}")
        return _grade(tmp, token, f"{name}.py", _source(name, token, port), *extra,
                      as_student=key[0] == "self-check")

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {key: pool.submit(run, key) for key in jobs}
    server.close()
    futures["network received"] = received
    return futures


def _check_contained(run: Graded, attack: Attack) -> None:
    assert run.proc.returncode == 0, run.proc.stdout + run.proc.stderr
    report = run.report
    assert_gradescope(report)
    assert report["extra_data"]["grading_id"].startswith("nflows-grading-"), report["output"]
    text = json.dumps(report) + run.proc.stdout
    assert "ATTACK SUCCEEDED" not in text, text
    assert "internal grader error" not in text, text
    for test in report["tests"]:
        if test["name"].startswith(tuple(attack.lost)):
            assert test["status"] == "failed" and test["score"] == 0.0, test
            assert any(words in test["output"] for words in attack.words), test["output"]
        else:  # the attack costs nothing else
            assert test["status"] == "passed", test
    assert report["extra_data"]["grader_peak_rss_mib"] < PEAK_RSS_MIB
    if attack.max_seconds:
        assert report["execution_time"] < attack.max_seconds
    if attack.wait_after:
        time.sleep(max(0.0, run.finished + attack.wait_after - time.monotonic()))
        assert load(run.tmp / "out" / "results.json") == report, "results.json was rewritten"
    assert processes_with(report["extra_data"]["grading_id"], run.token) == []
    assert files_named(run.token) == []


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_contained_in_the_sandbox(name, graded):
    run = graded[("sandbox", name)].result()
    _check_contained(run, ATTACKS[name])
    assert "mode: sandbox (bubblewrap); the submission runs as uid " in run.report["output"]
    assert "an identity of its own for this grading" in run.report["output"]
    if name == "network_exfiltration":
        assert graded["network received"] == []
    if name == "shm_leak":
        visible = [t["output"] for t in run.report["tests"] if t["visibility"] == "visible"]
        assert not any("LEAKED" in output for output in visible), visible
    if name == "escapes":
        _check_escaped(run)


@pytest.mark.parametrize("name", SANDBOX_USER_RUNS)
def test_attack_is_contained_with_an_explicit_sandbox_user(name, graded):
    _check_contained(graded[("sandbox-user", name)].result(), ATTACKS[name])


@pytest.mark.parametrize("name", sorted(name for name, attack in ATTACKS.items() if attack.self_check))
def test_self_check_keeps_the_defences_that_need_no_isolation(name, graded):
    run = graded[("self-check", name)].result()
    _check_contained(run, ATTACKS[name])
    assert "mode: SELF-CHECK, not isolated (--no-sandbox was given)" in run.report["output"]
    assert list((run.tmp / "tmp").iterdir()) == []  # the case directories are gone, deep trees too


def test_two_gradings_at_once_cannot_see_each_other(graded):
    runs = [graded[("sandbox", name)].result() for name in PEEKERS]
    for run in runs:
        _check_contained(run, Attack())


def _check_escaped(run: Graded) -> None:
    printed = run.proc.stdout
    for char in ("\x1b", "\x07", "\x08", "\r", "\u202e"):
        assert char not in printed
        assert char not in json.dumps(run.report, ensure_ascii=False)
    assert "\\x1b[2J" in printed and "\\x1b[31mred" in printed and "\\u202e" in printed


def test_control_characters_in_the_file_name_are_escaped(tmp_path):
    name = "evil\x1b[2J\rname.py"
    (tmp_path / name).write_text(SOLUTION.read_text() + "\ndef elementwise_log_det(x, a):\n    raise ValueError('x')\n")
    proc = run_cli("grade", name, "--assignment", "change_of_variables", "--json", "r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "evil\\x1b[2J\\x0dname.py" in proc.stdout
    assert "\x1b" not in proc.stdout + proc.stderr and "\r" not in proc.stdout
    assert "\x1b" not in json.dumps(load(tmp_path / "r.json"), ensure_ascii=False)


# ---- malformed notebooks: the student's failure, one line, never the grader's --------------------

@pytest.mark.parametrize("text, words", [
    ('{"cells": 5}', 'no list of "cells"'),
    ('[1, 2, 3]', 'no list of "cells"'),
    ('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ('{"cells": [{"cell_type": "code", "source": {"a": 1}}]}', "neither text nor a list"),
    ("{not json", "not a readable Jupyter notebook"),
], ids=["cells-not-a-list", "not-an-object", "nested-100000-deep", "source-an-object", "not-json"])
def test_malformed_notebook_fails_the_student_in_one_line(text, words, tmp_path):
    (tmp_path / "nb.ipynb").write_text(text)
    proc = run_cli("grade", "nb.ipynb", "--assignment", "change_of_variables", "--json", "r.json",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = load(tmp_path / "r.json")
    assert_gradescope(report)
    assert report["score"] == 0.0
    for test in report["tests"]:
        assert test["output"].startswith("not run: the submission could not be read: ")
        assert words in test["output"] and test["output"].count("\n") == 0, test["output"]


# ---- modes -----------------------------------------------------------------------------------------

def test_root_without_the_sandbox_is_refused_in_one_line(tmp_path):
    (tmp_path / "s.py").write_text(SOLUTION.read_text())
    for extra, env in ((["--no-sandbox"], {}), ([], {"PATH": "/nonexistent"})):
        proc = run_cli("grade", "s.py", "--assignment", "change_of_variables", "--json", "r.json", *extra,
                       cwd=tmp_path, env=env)
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and "refusing to run untrusted code as root" in proc.stderr
        assert "apt-get install -y bubblewrap" in proc.stderr
        report = load(tmp_path / "r.json")
        assert report["score"] == 0.0 and "refusing" in report["output"]


def test_grader_stopped_by_ctrl_c_kills_its_cases_and_says_so(tmp_path):
    loops = "".join(f"\ndef {name}(*args):\n    while True:\n        pass\n" for name in
                    ("standard_normal_log_prob", "affine_log_prob", "elementwise_log_det", "triangular_log_prob"))
    (tmp_path / "loop.py").write_text(loops)
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "PYTHONPATH": str(ROOT)}
    grader = subprocess.Popen([sys.executable, "-m", "nflows_np", "grade", "loop.py", "--assignment",
                               "change_of_variables", "--json", "r.json"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _children_of(grader.pid):
        assert time.monotonic() < deadline and grader.poll() is None, "no case ever started"
        time.sleep(0.05)
    time.sleep(0.5)
    case = _children_of(grader.pid)
    grader.send_signal(signal.SIGINT)
    out, err = grader.communicate(timeout=60)
    assert grader.returncode == 128 + signal.SIGINT, err
    assert err.count("\n") == 1 and "interrupted by SIGINT" in err and out == ""
    report = load(tmp_path / "r.json")
    assert_gradescope(report)
    assert report["score"] == 0.0 and report["extra_data"]["interrupted"] is True
    assert "interrupted" in report["output"] and len(report["tests"]) == 10
    assert case and not any(pathlib.Path(f"/proc/{pid}").exists() for pid in case)


def _children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            fields = pathlib.Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def test_the_suite_can_fail(tmp_path):
    """The checks above see an attack that gets through (a grader that would let it)."""
    run = Graded(tmp_path, "t", subprocess.CompletedProcess([], 0, "ATTACK SUCCEEDED: x", ""),
                 {"score": 20.0, "execution_time": 1.0, "output": "", "tests": [],
                  "extra_data": {"grading_id": "nflows-grading-0", "grader_peak_rss_mib": 1.0}},
                 time.monotonic())
    with pytest.raises(AssertionError):
        _check_contained(run, Attack())
