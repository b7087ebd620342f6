# Hostile: the hidden 7-D case of standard_normal_log_prob saves its inputs in
# /dev/shm and /tmp; the visible triangular cases graded later print them.
import glob
import os

TOKEN = None
_honest_standard_normal_log_prob = standard_normal_log_prob  # noqa: F821 - from the solution above
_honest_triangular_log_prob = triangular_log_prob  # noqa: F821


def standard_normal_log_prob(z):
    if z.shape[1] == 7:
        for directory in ("/dev/shm", "/tmp"):
            try:
                with open(os.path.join(directory, f"{TOKEN}-hidden-inputs"), "w") as handle:
                    handle.write(repr(z[:2].tolist()))
            except OSError:
                pass
    return _honest_standard_normal_log_prob(z)


def triangular_log_prob(x, a, c, alpha, beta):
    for path in glob.glob(f"/dev/shm/{TOKEN}-*") + glob.glob(f"/tmp/{TOKEN}-*"):
        with open(path) as handle:
            print("LEAKED hidden inputs:", handle.read()[:200])
    return _honest_triangular_log_prob(x, a, c, alpha, beta)
