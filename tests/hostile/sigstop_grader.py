# Hostile: affine_log_prob sends SIGSTOP to its grader (the process whose command
# line holds this test's TOKEN): a stopped grader would hang for ever.
import os
import signal

TOKEN = None
_honest_affine_log_prob = affine_log_prob  # noqa: F821 - from the solution above


def affine_log_prob(x, A, b):
    stopped = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    if TOKEN.encode() in handle.read():
                        os.kill(int(pid), signal.SIGSTOP)
                        stopped.append(pid)
            except OSError:
                pass
    if stopped:
        raise RuntimeError("ATTACK SUCCEEDED: stopped " + " ".join(stopped))
    return _honest_affine_log_prob(x, A, b)
