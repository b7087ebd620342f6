# Hostile: elementwise_log_det leaves a directory tree 1500 levels deep in its
# working directory (a recursive rmtree in the grader would overflow), then answers.
import os

_honest_elementwise_log_det = elementwise_log_det  # noqa: F821 - from the solution above


def elementwise_log_det(x, a):
    start = os.getcwd()
    for _ in range(1500):
        os.mkdir("d")
        os.chdir("d")
    os.chdir(start)
    return _honest_elementwise_log_det(x, a)
