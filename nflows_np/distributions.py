"""Base densities p_Z."""
from __future__ import annotations

from typing import Any

import numpy as np

from nflows_np.base import RngLike, as_generator, check_array, check_int
from nflows_np.numerics import LOG_2PI


class StandardNormal:
    """The standard normal base density  p(z) = N(z | 0, I_D).

    log p(z) = −½‖z‖² − (D/2) log 2π,   ∇_z log p(z) = −z.
    Cost: O(N·D).
    """

    def __init__(self, dim: int):
        self.dim = check_int(dim, "StandardNormal: dim")

    def log_prob(self, z: Any) -> np.ndarray:
        """log N(z | 0, I), shape (N,)."""
        z = check_array(z, self.dim, "StandardNormal", "z")
        return -0.5 * np.einsum("nd,nd->n", z, z) - 0.5 * self.dim * LOG_2PI

    def grad_log_prob(self, z: Any) -> np.ndarray:
        """∇_z log N(z | 0, I) = −z, shape (N, D)."""
        return -check_array(z, self.dim, "StandardNormal", "z")

    def sample(self, n: int, rng: RngLike = None, temperature: float = 1.0) -> np.ndarray:
        """n draws of z ~ N(0, T² I) (T = ``temperature``; T = 1 is the base itself)."""
        n = check_int(n, "StandardNormal.sample: n", minimum=0)
        if not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"StandardNormal.sample: temperature must be positive, got {temperature!r}")
        return temperature * as_generator(rng).standard_normal((n, self.dim))

    def __repr__(self) -> str:
        return f"StandardNormal(dim={self.dim})"


class Uniform:
    """The uniform base density on the box [low, high]^D.

    log p(z) = −D log(high − low) inside the box, −∞ outside;
    ∇_z log p(z) = 0 inside (undefined outside: returned as 0 there too).
    Rezende & Mohamed (2015, Figure 1) push it through planar flows. Cost: O(N·D).
    """

    def __init__(self, dim: int, low: float = -1.0, high: float = 1.0):
        dim = check_int(dim, "Uniform: dim")
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"Uniform: need finite low < high, got low={low!r}, high={high!r}")
        self.dim, self.low, self.high = int(dim), float(low), float(high)

    def log_prob(self, z: Any) -> np.ndarray:
        """−D log(high − low) inside the box, −∞ outside, shape (N,)."""
        z = check_array(z, self.dim, "Uniform", "z")
        inside = np.all((z >= self.low) & (z <= self.high), axis=1)
        return np.where(inside, -self.dim * np.log(self.high - self.low), -np.inf)

    def grad_log_prob(self, z: Any) -> np.ndarray:
        """0 everywhere (the density is flat on its support), shape (N, D)."""
        return np.zeros_like(check_array(z, self.dim, "Uniform", "z"))

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        """n draws, shape (n, D)."""
        n = check_int(n, "Uniform.sample: n", minimum=0)
        return as_generator(rng).uniform(self.low, self.high, (n, self.dim))

    def __repr__(self) -> str:
        return f"Uniform(dim={self.dim}, low={self.low}, high={self.high})"
