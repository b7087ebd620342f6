"""Lower-variance reverse-KL gradient estimators (options of ``train.fit_reverse_kl``).

Both leave the gradient's expectation unchanged:

- antithetic pairs: z and its reflection 2c − z through the base's centre of symmetry
  (p_Z(2c − z) = p_Z(z)), so every row is still a draw of p_Z;
- the path gradient ("sticking the landing", Roeder, Wu & Duvenaud 2017): the reparametrised
  gradient of E_{p(z)}[log p(g(z)|θ) − β log π̃(g(z))] minus the score
  (1/N) Σ ∂/∂θ log p(x_n|θ) at fixed x_n, whose expectation E_{p(x|θ)}[∂/∂θ log p(x|θ)] = 0.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nflows_np.distributions import StandardNormal, Uniform


def subtract_score(model: Any, x: np.ndarray) -> None:
    """grads −= (1/N) Σ ∂/∂θ log p(x_n|θ) at fixed x (the score, whose expectation under p(x|θ) is 0).

    Through ``forward``: log p(x|θ) = log p_Z(f(x)) + log|det ∂f/∂x|, so the backward
    pass of −(1/N) Σ log p(x_n|θ) is seeded with ∂/∂z = −(1/N) ∇ log p_Z(z) and
    ∂/∂log_det = −1/N; ``backward`` adds its ∂/∂θ into ``model.grads``.
    """
    n = x.shape[0]
    z, _ = model.forward(x)
    model.backward(model.base.grad_log_prob(z) * (-1.0 / n), np.full(n, -1.0 / n))


def reflection_centre(base: Any) -> np.ndarray | None:
    """c with p_Z(2c − z) = p_Z(z) (0 for StandardNormal, the box's centre for Uniform), or None."""
    if isinstance(base, StandardNormal):
        return np.zeros(base.dim)
    if isinstance(base, Uniform):
        return np.full(base.dim, 0.5 * (base.low + base.high))
    return None


def antithetic_sample(base: Any, n: int, rng: np.random.Generator, centre: np.ndarray) -> np.ndarray:
    """n base draws in antithetic pairs z, 2c − z (the first n of ⌈n/2⌉ pairs): each row is still ~ p_Z."""
    half = base.sample((n + 1) // 2, rng)
    return np.concatenate([half, 2.0 * centre - half])[:n]
