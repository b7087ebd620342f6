# Hostile: elementwise_log_det leaves files (named after this test's TOKEN) in
# /tmp, /dev/shm, /var/tmp, its home and its working directory, then answers honestly.
import os

TOKEN = None
_honest_elementwise_log_det = elementwise_log_det  # noqa: F821 - from the solution above


def elementwise_log_det(x, a):
    for directory in ("/tmp", "/dev/shm", "/var/tmp", os.path.expanduser("~"), "."):
        try:
            with open(os.path.join(directory, f"{TOKEN}-left-behind"), "w") as handle:
                handle.write("left behind")
        except OSError:
            pass
    return _honest_elementwise_log_det(x, a)
