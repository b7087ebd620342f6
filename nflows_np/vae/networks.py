"""The two networks of a VAE on binary images: a Gaussian encoder and Bernoulli decoders.

- :class:`GaussianEncoder` — q(z | x, φ) = N(z | μ_φ(x), diag exp(v_φ(x))), one MLP
  whose output is split into the mean μ and the log-variance v.
- :class:`FactorisedDecoder` — p(x | z, θ) = Π_i Bern(x_i | σ(ℓ_i(z))): the pixels are
  independent given z, so every correlation between pixels has to go through z.
- :class:`AutoregressiveDecoder` — p(x | z, θ) = Π_i Bern(x_i | σ(ℓ_i(x_{<i}, z))), a
  MADE network over the pixels that also sees z (the slides' autoregressive decoder).
  With ``window = w`` pixel i sees only x_{i−2w+1}, …, x_{i−1} (a limited receptive field,
  the PixelVAE way of *weakening* the decoder).

Why Bernoulli on binarised digits: the digits are integers 0…16; thresholding them
gives binary images with an exact discrete likelihood (log p(x) ≤ 0, in nats, the
same scale for every model), the standard setting of the VAE and IWAE papers, and an
autoregressive decoder over 64 binary pixels is one masked network pass.

Every network returns its output from ``forward`` and, from ``backward``, the
gradient with respect to its input, adding the parameter gradients into ``grads``.
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from nflows_np.base import Module, RngLike, as_generator, check_int
from nflows_np.flows.mlp import MLP, check_hidden
from nflows_np.numerics import sigmoid, softplus

__all__ = ["AutoregressiveDecoder", "FactorisedDecoder", "GaussianEncoder", "autoregressive_masks",
           "bernoulli_log_likelihood", "binarize"]


def binarize(images: Any, threshold: int = 8) -> np.ndarray:
    """Binary float64 images x = [pixel ≥ threshold] from the digits' grey levels 0…16."""
    images = np.asarray(images)
    if images.ndim != 2 or not np.issubdtype(images.dtype, np.number):
        raise ValueError(f"binarize: images must be a numeric (N, D) array, got shape {images.shape}")
    return (images >= threshold).astype(np.float64)


def bernoulli_log_likelihood(x: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """log p(x | ℓ) = Σ_i [x_i ℓ_i − softplus(ℓ_i)] per row (the logit form of x log σ(ℓ) + (1−x) log σ(−ℓ)).

    Gradient: ∂/∂ℓ_i = x_i − σ(ℓ_i). Written through softplus: no log(0) when σ(ℓ) rounds to 0 or 1.
    """
    return np.sum(x * logits - softplus(logits), axis=-1)


def bernoulli_grad_logits(x: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """∂ log p(x | ℓ)/∂ℓ = x − σ(ℓ)."""
    return x - sigmoid(logits)


class GaussianEncoder(Module):
    """Amortised Gaussian encoder q(z | x, φ) = N(z | μ, diag exp(v)), with (μ, v) = MLP_φ(x).

    Parameters ``"net.W1", "net.b1", …`` (the MLP's). Cost: one MLP pass, O(N·(D·H + H·2L)).
    """

    def __init__(self, data_dim: int, latent_dim: int, hidden: Sequence[int] = (128,), rng: RngLike = None):
        super().__init__()
        self.data_dim = check_int(data_dim, "GaussianEncoder: data_dim")
        self.latent_dim = check_int(latent_dim, "GaussianEncoder: latent_dim")
        self.net = MLP(self.data_dim, 2 * self.latent_dim, check_hidden(hidden, "GaussianEncoder"),
                       rng=as_generator(rng), zero_last=False, name="GaussianEncoder.net")
        self.expose(self.net, "net")

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean μ and log-variance v of q(z | x), both (N, L)."""
        out = self.net.forward(x)
        return out[:, :self.latent_dim], out[:, self.latent_dim:]

    def backward(self, grad_mean: np.ndarray, grad_log_var: np.ndarray) -> None:
        """Add ∂L/∂φ from ∂L/∂μ and ∂L/∂v of the most recent ``forward`` (the data need no gradient)."""
        self.net.backward(np.hstack([grad_mean, grad_log_var]))


class FactorisedDecoder(Module):
    """p(x | z, θ) = Π_i Bern(x_i | σ(ℓ_i)), ℓ = MLP_θ(z): pixels independent given z.

    Cost: O(N·(L·H + H·D)) per pass.
    """

    def __init__(self, data_dim: int, latent_dim: int, hidden: Sequence[int] = (128,), rng: RngLike = None):
        super().__init__()
        self.data_dim = check_int(data_dim, "FactorisedDecoder: data_dim")
        self.latent_dim = check_int(latent_dim, "FactorisedDecoder: latent_dim")
        self.net = MLP(self.latent_dim, self.data_dim, check_hidden(hidden, "FactorisedDecoder"),
                       rng=as_generator(rng), zero_last=False, name="FactorisedDecoder.net")
        self.expose(self.net, "net")

    def forward(self, z: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Logits ℓ (N, D) of p(x | z); ``x`` is not used (it is for the autoregressive decoder)."""
        return self.net.forward(z)

    def backward(self, grad_logits: np.ndarray) -> np.ndarray:
        """∂L/∂z from ∂L/∂ℓ; adds ∂L/∂θ."""
        return self.net.backward(grad_logits)

    def sample(self, z: np.ndarray, rng: RngLike = None) -> np.ndarray:
        """x ~ p(x | z), one binary image per row of z."""
        rng = as_generator(rng)
        probs = sigmoid(self.net.forward(z))
        return (rng.random(probs.shape) < probs).astype(np.float64)


def autoregressive_masks(data_dim: int, latent_dim: int, hidden: Sequence[int], window: int | None = None
                         ) -> list[np.ndarray]:
    """MADE masks of a network [x, z] → h_1 → … → h_H → ℓ with ℓ_i a function of (x_{<i}, z) only.

    Pixel p has degree p (1 … D), hidden unit j of every layer degree d_j = j mod D (0 … D−1);
    z reaches every unit of the first hidden layer. A unit of degree d sees pixel p iff
    p ≤ d, a unit of degree d' of the layer below iff d' ≤ d; output i sees hidden d iff
    d < i. So ℓ_i depends on pixels p < i only and the product of the conditionals is a
    normalised distribution. With a window w, the first layer also needs d − p < w and the
    output i − d ≤ w, so with one hidden layer ℓ_i sees at most the 2w − 1 pixels
    x_{i−2w+1}, …, x_{i−1} (and z).
    """
    degrees_in = np.arange(1, data_dim + 1)
    layers = [np.arange(width) % data_dim for width in hidden]
    lag_in = layers[0][None, :] - degrees_in[:, None]                # d − p
    see_pixel = lag_in >= 0
    lag_out = degrees_in[None, :] - layers[-1][:, None]              # i − d
    see_hidden = lag_out >= 1
    if window is not None:
        see_pixel &= lag_in < window
        see_hidden &= lag_out <= window
    first = np.vstack([see_pixel, np.ones((latent_dim, len(layers[0])), dtype=bool)])
    between = [later[None, :] >= earlier[:, None] for earlier, later in pairwise(layers)]
    return [mask.astype(np.float64) for mask in [first, *between, see_hidden]]


class AutoregressiveDecoder(Module):
    """p(x | z, θ) = Π_i Bern(x_i | σ(ℓ_i(x_{<i}, z))), ℓ = MADE_θ([x, z]) in one masked pass.

    Training and density evaluation take one pass (teacher forcing: the observed x
    feeds the network); sampling takes D passes, one pixel at a time.
    ``window`` limits each conditional to the previous 2w − 1 pixels (decoder weakening).
    Cost: O(N·(D + L)·H + N·H·D) per pass.
    """

    def __init__(self, data_dim: int, latent_dim: int, hidden: Sequence[int] = (128,), window: int | None = None,
                 rng: RngLike = None):
        super().__init__()
        self.data_dim = check_int(data_dim, "AutoregressiveDecoder: data_dim")
        self.latent_dim = check_int(latent_dim, "AutoregressiveDecoder: latent_dim")
        self.hidden = check_hidden(hidden, "AutoregressiveDecoder")
        self.window = None if window is None else check_int(window, "AutoregressiveDecoder: window")
        masks = autoregressive_masks(self.data_dim, self.latent_dim, self.hidden, self.window)
        self.net = MLP(self.data_dim + self.latent_dim, self.data_dim, self.hidden, rng=as_generator(rng),
                       zero_last=False, masks=masks, name="AutoregressiveDecoder.net")
        self.expose(self.net, "net")

    def forward(self, z: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Logits ℓ (N, D), ℓ_i from x_{<i} and z."""
        return self.net.forward(np.hstack([x, z]))

    def backward(self, grad_logits: np.ndarray) -> np.ndarray:
        """∂L/∂z from ∂L/∂ℓ (the columns of the input gradient that belong to z); adds ∂L/∂θ."""
        return self.net.backward(grad_logits)[:, self.data_dim:]

    def sample(self, z: np.ndarray, rng: RngLike = None) -> np.ndarray:
        """x ~ p(x | z), pixel by pixel (D network passes)."""
        rng = as_generator(rng)
        x = np.zeros((z.shape[0], self.data_dim))
        for i in range(self.data_dim):
            probs = sigmoid(self.forward(z, x)[:, i])
            x[:, i] = rng.random(z.shape[0]) < probs
        return x
