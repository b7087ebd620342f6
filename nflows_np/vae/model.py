"""The VAE on binary data: ELBO, KL annealing, free bits and the IWAE bound, with hand-written gradients.

Generative model p(x, z | θ) = p(x | z, θ) p(z), p(z) = N(0, I); encoder
q(z | x, φ) = N(μ_φ(x), diag exp(v_φ(x))). The reparametrisation trick writes a draw
of q as z = μ + exp(v/2) ⊙ ε with ε ~ N(0, I) independent of (φ, θ), so a Monte Carlo
objective at a fixed ε is a differentiable function of every parameter. Every
method takes ε explicitly (``eps``) so that the gradients can be checked by finite
differences at the same draw; :func:`draw_eps` draws it.

Objectives (per data point, L latent dimensions, KL_j the closed-form Gaussian KL):

- ELBO with KL annealing and free bits (the slides' objectives)::

      L(q, θ, β, λ) = E_q log p(x | z, θ) − β Σ_j max(λ, KL_j),
      KL_j = KL(q(z_j | x) ‖ N(0, 1)) = ½ (μ_j² + e^{v_j} − 1 − v_j);

  β = 1, λ = 0 is the ELBO. The free-bits max is taken per latent dimension on the
  minibatch average of KL_j (Kingma et al. 2016), λ in nats.
- IWAE (Burda et al. 2016)::

      L_K(q, θ) = E log (1/K) Σ_k w_k,   w_k = p(x, z_k | θ) / q(z_k | x),   z_k ~ q(z | x),

  computed as logsumexp(log w) − log K; its gradient weights each draw's gradient
  by the normalised weight w̃_k = softmax_k(log w), computed in log space.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.special import logsumexp, softmax

from nflows_np.base import Module, RngLike, as_generator, check_int
from nflows_np.vae.networks import bernoulli_grad_logits, bernoulli_log_likelihood
from nflows_np.validation import check_real

__all__ = ["VAE", "Terms", "draw_eps", "iwae_from_log_weights", "kl_per_dim"]


class Terms(NamedTuple):
    """One evaluation of the (annealed / free-bits) ELBO on a minibatch; every value a minibatch mean.

    ``objective`` is the trained quantity L(q, θ, β, λ) (``loss = −objective``);
    ``elbo`` = ``reconstruction`` − ``kl`` is the plain ELBO at the same draw (β = 1, λ = 0);
    ``kl_per_dim`` (L,) are the KL_j averaged over the minibatch.
    """

    objective: float
    elbo: float
    reconstruction: float
    kl: float
    kl_per_dim: np.ndarray


def kl_per_dim(mean: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """KL(N(μ, e^v) ‖ N(0, 1)) = ½ (μ² + e^v − 1 − v), elementwise."""
    return 0.5 * (mean * mean + np.exp(log_var) - 1.0 - log_var)


def draw_eps(n: int, latent_dim: int, k: int | None = None, rng: RngLike = None) -> np.ndarray:
    """Standard normal noise ε of shape (n, L), or (n, K, L) for the IWAE bound."""
    shape = (n, latent_dim) if k is None else (n, k, latent_dim)
    return as_generator(rng).standard_normal(shape)


def iwae_from_log_weights(log_w: np.ndarray, k: int) -> np.ndarray:
    """L_K per row from M log-weights per row: the mean over the M // K disjoint groups of K of
    log (1/K) Σ_k w_k (logsumexp − log K, stable). Each group is an unbiased estimate of L_K, so
    L_1, L_5, … all come from one draw, and their differences have far less Monte Carlo noise than
    independent estimates would have.
    """
    log_w = np.asarray(log_w, dtype=np.float64)
    k = check_int(k, "iwae_from_log_weights: k")
    if log_w.ndim != 2 or log_w.shape[1] < k:
        raise ValueError(f"iwae_from_log_weights: log_w must be (N, M) with M ≥ k = {k}, got {log_w.shape}")
    groups = log_w.shape[1] // k
    grouped = log_w[:, :groups * k].reshape(log_w.shape[0], groups, k)
    return np.mean(logsumexp(grouped, axis=2), axis=1) - np.log(k)


class VAE(Module):
    """A VAE: an encoder (``forward(x) -> (μ, v)``, ``backward(gμ, gv)``) and a decoder
    (``forward(z, x) -> logits``, ``backward(g_logits) -> g_z``) of matching dimensions.

    Parameters are the encoder's under ``"encoder."`` and the decoder's under ``"decoder."``.
    ``spec`` (a JSON-able dict) says how :func:`nflows_np.vae.build` rebuilds the model.
    """

    def __init__(self, encoder: Any, decoder: Any, spec: dict | None = None):
        super().__init__()
        if (encoder.data_dim, encoder.latent_dim) != (decoder.data_dim, decoder.latent_dim):
            raise ValueError(f"VAE: encoder (D={encoder.data_dim}, L={encoder.latent_dim}) and decoder "
                             f"(D={decoder.data_dim}, L={decoder.latent_dim}) do not match")
        self.encoder, self.decoder = encoder, decoder
        self.data_dim, self.latent_dim = encoder.data_dim, encoder.latent_dim
        self.spec = dict(spec or {})
        self.expose(encoder, "encoder")
        self.expose(decoder, "decoder")

    # -- validation -------------------------------------------------------------------
    def _x(self, x: Any, who: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.data_dim or x.shape[0] == 0:
            raise ValueError(f"VAE.{who}: x must have shape (N, {self.data_dim}) with N ≥ 1, got {x.shape}")
        if not np.all((x == 0.0) | (x == 1.0)):
            raise ValueError(f"VAE.{who}: x must be binary (0 or 1); binarise the images first")
        return x

    def _eps(self, eps: Any, shape: tuple[int, ...], who: str) -> np.ndarray:
        eps = np.asarray(eps, dtype=np.float64)
        if eps.shape != shape or not np.all(np.isfinite(eps)):
            raise ValueError(f"VAE.{who}: eps must be a finite array of shape {shape}, got {eps.shape}")
        return eps

    def _eps_k(self, eps: Any, n: int, who: str) -> np.ndarray:
        """ε of shape (N, K, L) with K ≥ 1."""
        eps = np.asarray(eps, dtype=np.float64)
        if eps.ndim != 3 or eps.shape[1] == 0:
            raise ValueError(f"VAE.{who}: eps must have shape (N, K, {self.latent_dim}) with K ≥ 1, got {eps.shape}")
        return self._eps(eps, (n, eps.shape[1], self.latent_dim), who)

    @staticmethod
    def _weights(beta: Any, free_bits: Any, who: str) -> tuple[float, float]:
        return (check_real(beta, f"VAE.{who}: beta", minimum=0.0),
                check_real(free_bits, f"VAE.{who}: free_bits", minimum=0.0))

    # -- ELBO, KL annealing, free bits ---------------------------------------------------
    def objective_step(self, x: Any, eps: Any, beta: float = 1.0, free_bits: float = 0.0,
                       grad: bool = True) -> Terms:
        """L(q, θ, β, λ) on the minibatch at noise ``eps`` (N, L); with ``grad``, adds ∂(−L)/∂(φ, θ).

        Loss (minimised) = −(1/N) Σ_n log p(x_n | z_n) + β Σ_j max(λ, KL̄_j), z_n = μ_n + e^{v_n/2} ε_n.
        Cost: one encoder and one decoder pass, forward and backward.
        """
        beta, free_bits = self._weights(beta, free_bits, "objective_step")
        x = self._x(x, "objective_step")
        n = x.shape[0]
        eps = self._eps(eps, (n, self.latent_dim), "objective_step")
        mean, log_var = self.encoder.forward(x)
        std = np.exp(0.5 * log_var)
        z = mean + std * eps
        logits = self.decoder.forward(z, x)
        recon = float(np.mean(bernoulli_log_likelihood(x, logits)))
        kl_dims = kl_per_dim(mean, log_var).mean(axis=0)
        terms = Terms(recon - beta * float(np.sum(np.maximum(free_bits, kl_dims))),
                      recon - float(kl_dims.sum()), recon, float(kl_dims.sum()), kl_dims)
        if grad:
            # ∂loss/∂ℓ = −(x − σ(ℓ))/N, back through the decoder to ∂loss/∂z.
            grad_z = self.decoder.backward(bernoulli_grad_logits(x, logits) * (-1.0 / n))
            # max(λ, KL̄_j) passes the gradient of KL̄_j only where KL̄_j > λ (free bits: below λ it is flat).
            weight = beta * (kl_dims > free_bits) / n
            # z = μ + e^{v/2} ε ⇒ ∂z/∂μ = 1, ∂z/∂v = ½ e^{v/2} ε;  ∂KL/∂μ = μ, ∂KL/∂v = ½ (e^v − 1).
            grad_mean = grad_z + weight * mean
            grad_log_var = grad_z * (0.5 * std * eps) + weight * 0.5 * (np.exp(log_var) - 1.0)
            self.encoder.backward(grad_mean, grad_log_var)
        return terms

    # -- IWAE -------------------------------------------------------------------------------
    def _log_weights(self, x: np.ndarray, eps: np.ndarray) -> tuple[np.ndarray, tuple]:
        """log w_nk = log p(x_n | z_nk) + log N(z_nk | 0, I) − log q(z_nk | x_n), and what the gradient needs.

        With z = μ + s ε:  log q(z | x) = −½ Σ_j (ε_j² + v_j + log 2π), so the log 2π terms cancel.
        """
        n, k, _ = eps.shape
        mean, log_var = self.encoder.forward(x)
        std = np.exp(0.5 * log_var)
        z = (mean[:, None, :] + std[:, None, :] * eps).reshape(n * k, self.latent_dim)
        x_rep = np.repeat(x, k, axis=0)
        logits = self.decoder.forward(z, x_rep)
        log_w = (bernoulli_log_likelihood(x_rep, logits).reshape(n, k)
                 - 0.5 * np.sum(z * z, axis=1).reshape(n, k)
                 + 0.5 * np.sum(eps * eps, axis=2) + 0.5 * np.sum(log_var, axis=1)[:, None])
        return log_w, (x_rep, z, logits, std)

    def iwae_step(self, x: Any, eps: Any, grad: bool = True) -> float:
        """L_K on the minibatch (mean over n) at noise ``eps`` (N, K, L); with ``grad``, adds ∂(−L_K)/∂(φ, θ).

        Gradient: ∂L_K/∂log w_nk = w̃_nk / N (softmax over k, in log space: no exp of a raw log-weight).
        Cost: one encoder pass and one decoder pass on N·K rows.
        """
        x = self._x(x, "iwae_step")
        eps = self._eps_k(eps, x.shape[0], "iwae_step")
        n, k = eps.shape[:2]
        log_w, (x_rep, z, logits, std) = self._log_weights(x, eps)
        value = float(np.mean(logsumexp(log_w, axis=1)) - np.log(k))
        if grad:
            coef = (-softmax(log_w, axis=1) / n).reshape(n * k, 1)          # ∂loss/∂log w
            # log w = log p(x|z) − ½‖z‖² + ½‖ε‖² + ½ Σ v:  ∂/∂ℓ = x − σ(ℓ),  ∂/∂z (prior) = −z,  ∂/∂v (direct) = ½.
            grad_z = self.decoder.backward(coef * bernoulli_grad_logits(x_rep, logits)) - coef * z
            grad_z = grad_z.reshape(n, k, self.latent_dim)
            grad_mean = grad_z.sum(axis=1)
            grad_log_var = np.sum(grad_z * eps, axis=1) * (0.5 * std) + 0.5 * coef.reshape(n, k).sum(axis=1)[:, None]
            self.encoder.backward(grad_mean, grad_log_var)
        return value

    def log_weights(self, x: Any, eps: Any) -> np.ndarray:
        """log w_nk = log p(x_n, z_nk | θ) − log q(z_nk | x_n) (N, K) at noise ``eps`` (N, K, L)."""
        x = self._x(x, "log_weights")
        return self._log_weights(x, self._eps_k(eps, x.shape[0], "log_weights"))[0]

    def iwae_bounds(self, x: Any, k: int, n_rep: int = 1, rng: RngLike = None, max_rows: int = 20_000) -> np.ndarray:
        """Draws of log (1/K) Σ_k w_k, shape (n_rep, N): each row is an unbiased estimate of L_K per point.

        K = 1 gives the single-draw ELBO log w. For large K this estimates log p(x | θ)
        (L_K → log p(x | θ) as K → ∞ when w is bounded). Rows of N·K are processed in
        chunks of at most ``max_rows`` decoder rows. Cost: O(n_rep · N · K) network rows.
        """
        x = self._x(x, "iwae_bounds")
        k = check_int(k, "VAE.iwae_bounds: k")
        n_rep = check_int(n_rep, "VAE.iwae_bounds: n_rep")
        rng = as_generator(rng)
        chunk = max(1, check_int(max_rows, "VAE.iwae_bounds: max_rows") // k)
        out = np.empty((n_rep, x.shape[0]))
        for r in range(n_rep):
            for start in range(0, x.shape[0], chunk):
                part = x[start:start + chunk]
                log_w = self._log_weights(part, draw_eps(part.shape[0], self.latent_dim, k, rng))[0]
                out[r, start:start + chunk] = logsumexp(log_w, axis=1) - np.log(k)
        return out

    def elbo(self, x: Any, rng: RngLike = None) -> Terms:
        """The ELBO (β = 1, λ = 0) with the closed-form KL, at one fresh draw per point; no gradient."""
        x = self._x(x, "elbo")
        return self.objective_step(x, draw_eps(x.shape[0], self.latent_dim, rng=rng), grad=False)

    # -- diagnostics --------------------------------------------------------------------------
    def active_units(self, x: Any, threshold: float = 1e-2) -> tuple[int, np.ndarray]:
        """Burda et al.'s active units: #{j : Cov_x(E_{q(z|x)} z_j) > threshold}, and those variances.

        For the Gaussian encoder E_q z_j = μ_j(x), so the statistic is the variance of μ_j over the data.
        """
        x = self._x(x, "active_units")
        mean, _ = self.encoder.forward(x)
        variances = mean.var(axis=0)
        return int(np.sum(variances > threshold)), variances

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        """x ~ p(x | θ): z ~ N(0, I), then x ~ p(x | z, θ)."""
        rng = as_generator(rng)
        z = rng.standard_normal((check_int(n, "VAE.sample: n"), self.latent_dim))
        return self.decoder.sample(z, rng)

    def __repr__(self) -> str:
        return f"VAE(encoder={self.encoder.net!r}, decoder={self.decoder.net!r}, params={self.num_params()})"

