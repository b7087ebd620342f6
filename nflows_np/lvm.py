"""A latent-variable model whose log-likelihood is exact: the recap of VAE / IWAE, checkable by numbers.

The linear Gaussian LVM (probabilistic PCA in one dimension)::

    p(z) = N(z | 0, 1),    p(x | z, θ) = N(x | a z + c, σ²),    θ = (a, c, σ),

has everything the VAE slides approximate in closed form:

- marginal   p(x | θ) = ∫ p(x | z, θ) p(z) dz = N(x | c, a² + σ²);
- posterior  p(z | x, θ) = N(z | a (x − c) / (a² + σ²),  σ² / (a² + σ²));
- for a Gaussian encoder q(z | x) = N(m, s²), the expected reconstruction term
  E_q log p(x | z, θ) = −½ log 2πσ² − ((x − c − a m)² + a² s²) / (2σ²)
  and KL(q ‖ p(z)) = ½ (m² + s² − 1) − log s.

So the ELBO, its gap KL(q ‖ p(z | x, θ)) = log p(x | θ) − ELBO, the IWAE bounds
L_K and the KL-annealing and free-bits objectives can all be compared with the
exact log p(x | θ).

- :class:`Normal` — a univariate Gaussian N(m, s²) with trainable ``mean`` and
  ``log_std`` (``params`` / ``grads`` as a flow has them, so the optimisers of
  :mod:`nflows_np.optim` train it). It is the encoder q(z | x), one per data
  point (arrays broadcast), and the posterior.
- :class:`LinearGaussianLVM` — the model, its exact quantities, the Monte
  Carlo estimators :meth:`~LinearGaussianLVM.elbo` and
  :meth:`~LinearGaussianLVM.iwae_bound`, and the closed-form objectives
  :meth:`~LinearGaussianLVM.objective` (KL annealing and free bits) with their
  gradient :meth:`~LinearGaussianLVM.loss_step`.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from nflows_np.base import Module, RngLike, as_generator, check_int
from nflows_np.numerics import LOG_2PI, logsumexp

__all__ = ["Estimate", "LinearGaussianLVM", "Normal"]


def _finite_array(value: Any, who: str, what: str) -> np.ndarray:
    """``value`` as a float64 array, refusing non-numeric or non-finite values with a ValueError."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{who}: {what} must be a real number or array, got {value!r} ({err})") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{who}: {what} must be finite, got {value!r}")
    return array


def _sum_to_shape(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back to the shape of the parameter it belongs to."""
    grad = np.asarray(grad)
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


class Estimate(NamedTuple):
    """A Monte Carlo estimate: the mean of ``draws`` over its first axis and its standard error.

    ``stderr = std(draws, ddof=1) / √n_draws``, elementwise when the estimate is an array.
    """

    value: np.ndarray | float
    stderr: np.ndarray | float
    draws: np.ndarray


class Normal(Module):
    """A univariate Gaussian N(z | m, s²), parametrised by m = ``mean`` and log s = ``log_std``.

    Used as the encoder q(z | x) (one per data point: ``mean`` and ``log_std``
    may be arrays, broadcast against x) and as the exact posterior. Like a
    flow, it has ``params = {"mean", "log_std"}`` and ``grads`` (same keys and
    shapes, the same array objects for its life), so ``nf.optim.Adam(q)``
    trains it from the gradients :meth:`LinearGaussianLVM.loss_step` adds.

    log q(z) = −½ log 2π − log s − (z − m)² / (2s²).
    KL(q ‖ N(μ, τ²)) = log(τ/s) + (s² + (m − μ)²) / (2τ²) − ½;
    KL(q ‖ N(0, 1)) = ½ (m² + s² − 1) − log s.
    Cost: O(size) per call.

    Parameters
    ----------
    mean : float or array
        m.
    std : float or array, optional
        s > 0 (default 1). Give ``log_std`` instead to set log s directly.
    log_std : float or array, optional
    """

    def __init__(self, mean: Any = 0.0, std: Any = None, log_std: Any = None):
        if std is not None and log_std is not None:
            raise ValueError("Normal: give std or log_std, not both")
        mean = _finite_array(mean, "Normal", "mean")
        if log_std is None:
            std = _finite_array(1.0 if std is None else std, "Normal", "std")
            if np.any(std <= 0.0):
                raise ValueError(f"Normal: std must be positive, got {std}")
            log_std = np.log(std)
        log_std = _finite_array(log_std, "Normal", "log_std")
        mean, log_std = np.broadcast_arrays(mean, log_std)
        super().__init__()
        self.add_param("mean", mean)
        self.add_param("log_std", log_std)

    @property
    def mean(self) -> np.ndarray:
        """m (a copy)."""
        return self.params["mean"].copy()

    @property
    def std(self) -> np.ndarray:
        """s = exp(log_std)."""
        return np.exp(self.params["log_std"])

    def log_prob(self, z: Any) -> np.ndarray:
        """log N(z | m, s²), broadcast over z and the parameters."""
        z = _finite_array(z, "Normal.log_prob", "z")
        log_std = self.params["log_std"]
        return -0.5 * LOG_2PI - log_std - 0.5 * ((z - self.params["mean"]) * np.exp(-log_std)) ** 2

    def sample(self, n: int | tuple[int, ...], rng: RngLike = None) -> np.ndarray:
        """Draws z = m + s ε, ε ~ N(0, 1), of shape (*n, *param_shape) (n an int or a tuple)."""
        leading = tuple(n) if isinstance(n, tuple) else (n,)
        leading = tuple(check_int(size, "Normal.sample: n", minimum=0) for size in leading)
        eps = as_generator(rng).standard_normal(leading + self.params["mean"].shape)
        return self.params["mean"] + self.std * eps

    def kl(self, other: Normal | None = None) -> np.ndarray:
        """KL(self ‖ other) in closed form; ``other`` defaults to the prior N(0, 1)."""
        m, log_s = self.params["mean"], self.params["log_std"]
        if other is None:
            return 0.5 * (m ** 2 + np.exp(2.0 * log_s) - 1.0) - log_s
        mu, log_tau = other.params["mean"], other.params["log_std"]
        return log_tau - log_s + 0.5 * (np.exp(2.0 * log_s) + (m - mu) ** 2) * np.exp(-2.0 * log_tau) - 0.5

    def __repr__(self) -> str:
        return f"Normal(mean={np.round(self.params['mean'], 6).tolist()}, std={np.round(self.std, 6).tolist()})"


class LinearGaussianLVM:
    """The linear Gaussian latent-variable model  z ~ N(0, 1),  x | z ~ N(a z + c, σ²).

    Every method takes x as a float or an array (one data point per entry) and
    returns values of the broadcast shape of x and the encoder's parameters.

    Exact (closed form):
        log p(x|θ) = log N(x | c, a² + σ²)                    (:meth:`log_marginal`)
        p(z|x, θ)  = N(a (x − c) / (a² + σ²), σ² / (a² + σ²))  (:meth:`posterior`)
        ELBO       = E_q log p(x|z, θ) − KL(q ‖ p(z))          (:meth:`objective` with β = 1)
                   = log p(x|θ) − KL(q ‖ p(z|x, θ)).

    Monte Carlo (z ~ q, log-weights log w = log p(x, z|θ) − log q(z)):
        :meth:`elbo`        mean of log w;
        :meth:`iwae_bound`  L_K = E log (1/K) Σ_k w_k, averaged over independent groups of K.

    Parameters
    ----------
    a : float
        Decoder weight; a = 0 is a decoder that ignores z.
    c : float
        Decoder offset.
    sigma : float
        Decoder noise σ > 0.
    """

    def __init__(self, a: float = 1.0, c: float = 0.0, sigma: float = 1.0):
        self.a = float(_finite_array(a, "LinearGaussianLVM", "a"))
        self.c = float(_finite_array(c, "LinearGaussianLVM", "c"))
        self.sigma = float(_finite_array(sigma, "LinearGaussianLVM", "sigma"))
        if self.sigma <= 0.0:
            raise ValueError(f"LinearGaussianLVM: sigma must be positive, got {sigma!r}")

    @property
    def marginal_variance(self) -> float:
        """a² + σ², the variance of x under p(x|θ)."""
        return self.a ** 2 + self.sigma ** 2

    def _x(self, x: Any, who: str) -> np.ndarray:
        return _finite_array(x, f"LinearGaussianLVM.{who}", "x")

    # -- the generative model --------------------------------------------------------
    def log_prior(self, z: Any) -> np.ndarray:
        """log p(z) = log N(z | 0, 1)."""
        z = _finite_array(z, "LinearGaussianLVM.log_prior", "z")
        return -0.5 * LOG_2PI - 0.5 * z ** 2

    def log_likelihood(self, x: Any, z: Any) -> np.ndarray:
        """The decoder log p(x | z, θ) = log N(x | a z + c, σ²), broadcast over x and z."""
        x = self._x(x, "log_likelihood")
        z = _finite_array(z, "LinearGaussianLVM.log_likelihood", "z")
        return -0.5 * LOG_2PI - np.log(self.sigma) - 0.5 * ((x - self.a * z - self.c) / self.sigma) ** 2

    def log_joint(self, x: Any, z: Any) -> np.ndarray:
        """log p(x, z | θ) = log p(z) + log p(x | z, θ)."""
        return self.log_prior(z) + self.log_likelihood(x, z)

    def sample(self, n: int, rng: RngLike = None) -> tuple[np.ndarray, np.ndarray]:
        """n draws from the joint: z ~ p(z), x = a z + c + σ ε. Returns (x, z), each of shape (n,)."""
        n = check_int(n, "LinearGaussianLVM.sample: n")
        rng = as_generator(rng)
        z = rng.standard_normal(n)
        return self.a * z + self.c + self.sigma * rng.standard_normal(n), z

    # -- exact quantities --------------------------------------------------------------
    def log_marginal(self, x: Any) -> np.ndarray:
        """log p(x|θ) = log ∫ p(x|z, θ) p(z) dz = log N(x | c, a² + σ²), exactly."""
        x = self._x(x, "log_marginal")
        variance = self.marginal_variance
        return -0.5 * (LOG_2PI + np.log(variance)) - 0.5 * (x - self.c) ** 2 / variance

    def posterior(self, x: Any) -> Normal:
        """The exact posterior p(z | x, θ) = N(a (x − c) / (a² + σ²), σ² / (a² + σ²))."""
        x = self._x(x, "posterior")
        variance = self.marginal_variance
        return Normal(self.a * (x - self.c) / variance, np.full_like(x, self.sigma / np.sqrt(variance)))

    def expected_log_likelihood(self, x: Any, q: Normal) -> np.ndarray:
        """The reconstruction term E_q log p(x | z, θ), in closed form.

        E_q log p(x | z, θ) = −½ log 2πσ² − ((x − c − a m)² + a² s²) / (2σ²)  for q = N(m, s²).
        """
        x = self._x(x, "expected_log_likelihood")
        residual, spread = x - self.c - self.a * q.params["mean"], self.a * q.std
        return -0.5 * LOG_2PI - np.log(self.sigma) - 0.5 * (residual ** 2 + spread ** 2) / self.sigma ** 2

    def objective(self, x: Any, q: Normal, beta: Any = 1.0, free_bits: Any = 0.0) -> np.ndarray:
        """L(q, θ, β, λ) = E_q log p(x | z, θ) − β · max(λ, KL(q ‖ p(z))), in closed form.

        - β = 1, λ = 0: the ELBO L(q, θ) (KL ≥ 0, so max(0, KL) = KL);
        - λ = 0: the KL-annealed objective E_q log p(x|z) − β KL (slide "KL annealing");
        - β = 1: the free-bits objective E_q log p(x|z) − max(λ, KL) (slide "Free bits").

        β and λ may be arrays that broadcast with x and q (e.g. one encoder per β).
        """
        beta, free_bits = self._check_weights(beta, free_bits, "objective")
        return self.expected_log_likelihood(x, q) - beta * np.maximum(free_bits, q.kl())

    def loss_step(self, x: Any, q: Normal, beta: Any = 1.0, free_bits: Any = 0.0) -> float:
        """Loss −Σ_n L(q_n, θ, β, λ) over the entries of x; adds its gradient into ``q.grads``.

        With ℓ = log s (the gradient of the closed form, exact, no sampling):

            ∂E_q log p/∂m = a (x − c − a m) / σ²,    ∂E_q log p/∂ℓ = −a² s² / σ²,
            ∂KL/∂m = m,                             ∂KL/∂ℓ = s² − 1,

        and the KL term contributes only where KL > λ (below λ, max(λ, KL) = λ is
        flat: that is what frees the bits). Cost: O(size).
        """
        beta, free_bits = self._check_weights(beta, free_bits, "loss_step")
        x = self._x(x, "loss_step")
        m, s = q.params["mean"], q.std
        kl = q.kl()
        active = beta * (kl > free_bits)
        grad_mean = self.a * (x - self.c - self.a * m) / self.sigma ** 2 - active * m
        grad_log_std = -(self.a * s / self.sigma) ** 2 - active * (s ** 2 - 1.0)
        q.grads["mean"] -= _sum_to_shape(grad_mean, q.params["mean"].shape)
        q.grads["log_std"] -= _sum_to_shape(grad_log_std, q.params["log_std"].shape)
        return float(-np.sum(self.objective(x, q, beta, free_bits)))

    @staticmethod
    def _check_weights(beta: Any, free_bits: Any, who: str) -> tuple[np.ndarray, np.ndarray]:
        """β and λ as arrays (a float, or one value per data point / encoder: they broadcast), both ≥ 0."""
        beta = _finite_array(beta, f"LinearGaussianLVM.{who}", "beta")
        free_bits = _finite_array(free_bits, f"LinearGaussianLVM.{who}", "free_bits")
        if np.any(beta < 0.0) or np.any(free_bits < 0.0):
            raise ValueError(f"LinearGaussianLVM.{who}: beta and free_bits must be >= 0, got {beta}, {free_bits}")
        return beta, free_bits

    # -- Monte Carlo estimators ------------------------------------------------------------
    def log_weights(self, x: Any, q: Normal, n: int | tuple[int, ...], rng: RngLike = None) -> np.ndarray:
        """log w = log p(x, z | θ) − log q(z) for z ~ q: shape (*n, *broadcast shape of x and q)."""
        x = self._x(x, "log_weights")
        z = q.sample(n, rng)
        return self.log_joint(x, z) - q.log_prob(z)

    def elbo(self, x: Any, q: Normal, n: int, rng: RngLike = None) -> Estimate:
        """Monte Carlo ELBO: the mean of n log-weights log p(x, z|θ) − log q(z), z ~ q, and its standard error."""
        n = check_int(n, "LinearGaussianLVM.elbo: n")
        log_w = self.log_weights(x, q, n, rng)
        return _estimate(log_w)

    def iwae_bound(self, x: Any, q: Normal, k: int, n_rep: int, rng: RngLike = None) -> Estimate:
        """Monte Carlo IWAE bound L_K(q, θ) = E_{z_1..z_K ~ q} log (1/K) Σ_k p(x, z_k|θ) / q(z_k).

        ``n_rep`` independent groups of K draws each give one value of
        log (1/K) Σ_k w_k (a log-mean-exp, computed stably); the estimate is
        their mean and the standard error their std / √n_rep. K = 1 is the
        ELBO. Cost: O(n_rep · K) per data point.
        """
        k = check_int(k, "LinearGaussianLVM.iwae_bound: k")
        n_rep = check_int(n_rep, "LinearGaussianLVM.iwae_bound: n_rep")
        log_w = self.log_weights(x, q, (n_rep, k), rng)
        return _estimate(logsumexp(log_w, axis=1) - np.log(k))

    def __repr__(self) -> str:
        return f"LinearGaussianLVM(a={self.a}, c={self.c}, sigma={self.sigma})"


def _estimate(draws: np.ndarray) -> Estimate:
    """Mean over the first axis and its standard error."""
    count = draws.shape[0]
    stderr = draws.std(axis=0, ddof=1) / np.sqrt(count) if count > 1 else np.full(draws.shape[1:], np.inf)
    value = draws.mean(axis=0)
    if np.ndim(value) == 0:
        return Estimate(float(value), float(stderr), draws)
    return Estimate(value, stderr, draws)
