# Hostile: elementwise_log_det tries to allocate 10 GiB.
import numpy as np


def elementwise_log_det(x, a):
    hog = np.ones(10 * 2**30 // 8)
    return hog[: len(x)]
