# Hostile: elementwise_log_det looks, for up to 2 s, for another student's
# submission (a file holding "secret-of-" with a name not its own) anywhere it can
# read, while the test grades a second copy of this file at the same time.
import os
import time

SECRET = "secret-of-SELF"
_honest_elementwise_log_det = elementwise_log_det  # noqa: F821 - from the solution above
_ROOTS = ("/tmp", "/dev/shm", "/var/tmp", "/case", "/autograder", "/work", "/home", "/root")


def _others():
    for root in _ROOTS:
        for top, dirs, files in os.walk(root):
            if top.count(os.sep) > 10:
                dirs[:] = []
            dirs[:] = [d for d in dirs if d not in (".git", "__pycache__", "site-packages")]
            for name in files:
                path = os.path.join(top, name)
                if not name.endswith((".py", ".json")):
                    continue
                try:
                    with open(path, errors="replace") as handle:
                        text = handle.read(1 << 20)
                except OSError:
                    continue
                at = text.find("secret-of-")
                while at >= 0:
                    found = text[at:at + 20].split('"')[0]
                    if found not in (SECRET, "secret-of-SELF", "secret-of-"):
                        return f"{found} in {path}"
                    at = text.find("secret-of-", at + 1)
    return ""


def elementwise_log_det(x, a):
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        found = _others()
        if found:
            raise RuntimeError("ATTACK SUCCEEDED: read " + found)
        time.sleep(0.2)
    return _honest_elementwise_log_det(x, a)
