"""Base densities p_Z."""
from __future__ import annotations

from typing import Any

import numpy as np

from nflows_np.base import RngLike, as_generator, check_array

LOG_2PI = float(np.log(2.0 * np.pi))


class StandardNormal:
    """The standard normal base density  p(z) = N(z | 0, I_D).

    log p(z) = −½‖z‖² − (D/2) log 2π,   ∇_z log p(z) = −z.
    Cost: O(N·D).
    """

    def __init__(self, dim: int):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"StandardNormal: dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)

    def log_prob(self, z: Any) -> np.ndarray:
        """log N(z | 0, I), shape (N,)."""
        z = check_array(z, self.dim, "StandardNormal", "z")
        return -0.5 * np.einsum("nd,nd->n", z, z) - 0.5 * self.dim * LOG_2PI

    def grad_log_prob(self, z: Any) -> np.ndarray:
        """∇_z log N(z | 0, I) = −z, shape (N, D)."""
        return -check_array(z, self.dim, "StandardNormal", "z")

    def sample(self, n: int, rng: RngLike = None, temperature: float = 1.0) -> np.ndarray:
        """n draws of z ~ N(0, T² I) (T = ``temperature``; T = 1 is the base itself)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"StandardNormal.sample: n must be a non-negative integer, got {n!r}")
        if not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"StandardNormal.sample: temperature must be positive, got {temperature!r}")
        return temperature * as_generator(rng).standard_normal((int(n), self.dim))

    def __repr__(self) -> str:
        return f"StandardNormal(dim={self.dim})"
