"""Helpers of the grading tests: run the real command line, inspect what a grading left behind."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOSTILE = ROOT / "tests" / "hostile"
SYSTEM_PYTHON = "/usr/bin/python3"
# A grader process with geteuid() patched: how a student (not root) runs `grade`.
AS_STUDENT = ("import os, sys; os.geteuid = lambda: 1000; from nflows_np.cli import main; "
              "sys.exit(main(sys.argv[1:]))")


def run_cli(*args: str, cwd: pathlib.Path, timeout: float = 180, as_student: bool = False,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m nflows_np ARGS`` in ``cwd``, its temporary files under ``cwd/tmp``."""
    (cwd / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(cwd / "tmp"), "PYTHONPATH": str(ROOT), **(env or {})}
    launcher = ["-c", AS_STUDENT] if as_student else ["-m", "nflows_np"]
    return subprocess.run([sys.executable, *launcher, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_gradescope(report: dict) -> None:
    """``report`` has the shape of Gradescope's results.json."""
    assert set(report) >= {"score", "execution_time", "output", "tests"}
    assert isinstance(report["score"], float) and isinstance(report["output"], str)
    for test in report["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in ("visible", "after_due_date")
        assert 0.0 <= test["score"] <= test["max_score"]


def processes_with(*needles: str) -> list[str]:
    """Live (not zombie) processes whose command line contains one of ``needles``."""
    found = []
    needles = tuple(needle.encode() for needle in needles if needle)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = pathlib.Path(f"/proc/{entry}/cmdline").read_bytes()
            state = pathlib.Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(needle in cmdline for needle in needles):
            found.append(f"{entry}: {cmdline[:120]!r}")
    return found


def files_named(token: str, directories=("/tmp", "/dev/shm", "/var/tmp")) -> list[str]:
    """Files whose name contains ``token`` directly in ``directories``."""
    return [os.path.join(d, name) for d in directories if os.path.isdir(d)
            for name in os.listdir(d) if token in name]


def load(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())
