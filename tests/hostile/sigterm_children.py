# Hostile: elementwise_log_det starts children that ignore SIGTERM and sleep
# (a subprocess, one in a new session, and a fork), then answers correctly.
import os
import signal
import subprocess
import sys
import time

_correct_elementwise_log_det = elementwise_log_det  # noqa: F821 - defined by the solution above
_SLEEPER = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"


def _grader_json_dir():
    grader = os.getppid()
    with open(f"/proc/{grader}/cmdline", "rb") as handle:
        args = handle.read().split(b"\0")
    path = args[args.index(b"--json") + 1].decode()
    return os.path.dirname(os.path.join(os.readlink(f"/proc/{grader}/cwd"), path))


def elementwise_log_det(x, a):
    pids = [subprocess.Popen([sys.executable, "-c", _SLEEPER]).pid,
            subprocess.Popen([sys.executable, "-c", _SLEEPER], start_new_session=True).pid]
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(60)
        os._exit(0)
    pids.append(child)
    os.makedirs(_grader_json_dir(), exist_ok=True)
    with open(os.path.join(_grader_json_dir(), "hostile_pids.txt"), "a") as handle:
        handle.write("".join(f"{pid}\n" for pid in pids))
    return _correct_elementwise_log_det(x, a)
