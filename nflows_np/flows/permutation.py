"""Fixed permutations:  z = P x.

A permutation matrix has det ±1, so log|det ∂z/∂x| = 0; it has no parameters.
Coupling layers use them to let every coordinate be transformed in turn.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nflows_np.base import Flow, check_int


class Permutation(Flow):
    """z_i = x_{perm[i]};  inverse x_{perm[i]} = z_i;  log|det| = 0.  Cost: O(N·D)."""

    def __init__(self, perm: Sequence[int]):
        perm = np.asarray(perm)
        if perm.ndim != 1 or perm.size == 0 or not np.issubdtype(perm.dtype, np.integer):
            raise ValueError(f"Permutation: perm must be a 1-D sequence of integers, got {perm!r}")
        if not np.array_equal(np.sort(perm), np.arange(perm.size)):
            raise ValueError(f"Permutation: perm must contain each of 0..{perm.size - 1} exactly once, got {perm.tolist()}")
        super().__init__(perm.size)
        self.perm = perm.astype(np.intp)
        self.inverse_perm = np.argsort(self.perm)

    def _forward(self, x):
        return x[:, self.perm], np.zeros(x.shape[0]), None

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        return grad_z[:, self.inverse_perm]

    def _inverse(self, z):
        return z[:, self.inverse_perm], np.zeros(z.shape[0]), None

    def _inverse_vjp(self, cache, grad_x, grad_log_det):
        return grad_x[:, self.perm]

    def __repr__(self) -> str:
        return f"{self.name}(perm={self.perm.tolist()})"


class Reverse(Permutation):
    """Reverses the order of the coordinates: z = (x_D, …, x_1)."""

    def __init__(self, dim: int):
        super().__init__(np.arange(check_int(dim, "Reverse: dim"))[::-1])
