# Hostile: elementwise_log_det returns an object that claims to equal anything,
# whose __array__ hands back an object array of itself, and whose __float__ lies.
import numpy as np


class EqualsEverything:
    def __init__(self, n):
        self.n = n

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = None

    def __len__(self):
        return self.n

    def __float__(self):
        return 0.0

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self.n, dtype=object)
        out[:] = [self] * self.n
        return out


def elementwise_log_det(x, a):
    return EqualsEverything(len(x))
