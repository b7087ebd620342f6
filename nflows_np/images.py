"""From discrete images to a continuous density and back: dequantisation, the logit transform, bits per dimension.

A flow has a density; pixels are integers k ∈ {0, …, L − 1}^D (L grey levels).
The pre-processing, and what each step adds to the log-likelihood:

1. **Uniform dequantisation**  v = k + u,  u ~ U[0, 1)^D: a density p_v on
   [0, L)^D defines the discrete model P(k) = ∫_{[0,1)^D} p_v(k + u) du, and by
   Jensen  log P(k) ≥ E_u log p_v(k + u)  (Theis et al. 2016): training on
   dequantised data maximises a lower bound on the discrete log-likelihood.
2. **Rescaling**  y = v / L ∈ [0, 1)^D:  log p_v(v) = log p_y(y) − D log L.
3. **Logit**  p = α + (1 − 2α) y ∈ [α, 1 − α),  x = logit p = log p − log(1 − p)
   (α keeps x finite at y = 0; RealNVP's α = 0.05):

       log|det ∂x/∂y| = Σ_i [log(1 − 2α) − log p_i − log(1 − p_i)].

The flow models x. Putting the three together, the **bits per dimension** of
the discrete data (an upper bound, the Jensen gap of step 1 aside it is exact):

    bits/dim = −[log p_X(x) + log|det ∂x/∂y| − D log L] / (D log 2).

Check by hand: with α = 0 and p_X the standard logistic density in every
dimension, p_y is uniform on [0, 1)^D, and bits/dim = log₂ L for every image
(``tests/test_images.py``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from nflows_np.composition import FlowModel
from nflows_np.train import epoch_sampler
from nflows_np.validation import RngLike, as_generator, check_int, check_real

__all__ = ["LogitTransform", "bits_per_dim", "image_grid", "random_shift"]


def bits_per_dim(log_density: Any, log_det: Any, dim: int, levels: int) -> np.ndarray:
    """Bits per dimension of the discrete images:  −[log p_X(x) + log|det ∂x/∂y| − D log L] / (D log 2).

    Parameters
    ----------
    log_density : (N,) array
        log p_X(x) of the pre-processed images, in nats.
    log_det : (N,) array or float
        log|det ∂x/∂y| of the pre-processing (0 when the model works on y itself).
    dim, levels : int
        D (pixels × channels) and L (grey levels).
    """
    dim, levels = check_int(dim, "bits_per_dim: dim"), check_int(levels, "bits_per_dim: levels", minimum=2)
    log_density = np.asarray(log_density, dtype=np.float64)
    return -(log_density + np.asarray(log_det, dtype=np.float64) - dim * math.log(levels)) / (dim * math.log(2.0))


class LogitTransform:
    """Dequantise integer pixels and map them to logit space, with the log-det of the map.

    Forward (images → model space):  y = (k + u)/L,  p = α + (1 − 2α) y,  x = log p − log(1 − p).
    Log-det:  log|det ∂x/∂y| = Σ_i [log(1 − 2α) − log p_i − log(1 − p_i)].
    Back (model space → images):  y = (σ(x) − α)/(1 − 2α), grey level = y·L.
    Cost: O(N·D).

    Parameters
    ----------
    levels : int
        L, the number of grey levels (17 for the 8×8 digits).
    alpha : float in [0, 0.5)
        α of the squeeze p = α + (1 − 2α) y; default 0.05 (RealNVP).
    """

    def __init__(self, levels: int, alpha: float = 0.05):
        self.levels = check_int(levels, "LogitTransform: levels", minimum=2)
        self.alpha = check_real(alpha, "LogitTransform: alpha", minimum=0.0)
        if self.alpha >= 0.5:
            raise ValueError(f"LogitTransform: alpha must be in [0, 0.5), got {alpha!r}")

    def _check_images(self, images: Any) -> np.ndarray:
        array = np.asarray(images)
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"LogitTransform: images must be an (N, D) integer array, got {array.dtype} {array.shape}")
        if array.size and (array.min() < 0 or array.max() >= self.levels):
            raise ValueError(f"LogitTransform: pixel values must be in 0..{self.levels - 1}, "
                             f"got {array.min()}..{array.max()}")
        return array

    def dequantize(self, images: Any, rng: RngLike = None) -> np.ndarray:
        """y = (k + u)/L with u ~ U[0, 1)^D: (N, D) floats in [0, 1)."""
        images = self._check_images(images)
        return (images + as_generator(rng).random(images.shape)) / self.levels

    def to_logit(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x = logit(α + (1 − 2α) y) and log|det ∂x/∂y| per image, shapes (N, D) and (N,)."""
        p = self.alpha + (1.0 - 2.0 * self.alpha) * np.asarray(y, dtype=np.float64)
        log_p, log_q = np.log(p), np.log1p(-p)
        x = log_p - log_q
        # dx/dy = (1 − 2α) · d logit(p)/dp = (1 − 2α) / (p (1 − p))
        log_det = np.sum(math.log(1.0 - 2.0 * self.alpha) - log_p - log_q, axis=1)
        return x, log_det

    def forward(self, images: Any, rng: RngLike = None) -> tuple[np.ndarray, np.ndarray]:
        """Dequantise and take the logit: (x, log|det ∂x/∂y|)."""
        return self.to_logit(self.dequantize(images, rng))

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """y = (σ(x) − α)/(1 − 2α), the image in [0, 1] (clipped there for display only)."""
        with np.errstate(over="ignore"):
            sigma = 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))
        return np.clip((sigma - self.alpha) / (1.0 - 2.0 * self.alpha), 0.0, 1.0)

    def bits_per_dim(self, model: FlowModel, images: Any, rng: RngLike = None, batch_size: int = 1000) -> float:
        """Mean bits/dim of ``images`` under ``model`` (``model.log_prob`` on logit space), one dequantisation draw."""
        images = self._check_images(images)
        rng = as_generator(rng)
        values = []
        for start in range(0, images.shape[0], batch_size):
            x, log_det = self.forward(images[start:start + batch_size], rng)
            values.append(bits_per_dim(model.log_prob(x), log_det, images.shape[1], self.levels))
        return float(np.mean(np.concatenate(values)))

    def sampler(self, images: Any, shift: int = 0,
                shape: tuple[int, int] | None = None) -> Callable[[int, np.random.Generator], np.ndarray]:
        """``sample(n, rng)``: n images drawn epoch by epoch, freshly dequantised, in logit space (for ``fit_mle``).

        ``shift`` > 0 (with ``shape`` = (H, W) of single-channel images): augmentation, each image moved
        by a random (dy, dx) ∈ {−shift, …, shift}² with zeros shifted in (see :func:`random_shift`).
        """
        images = self._check_images(images)
        shift = check_int(shift, "sampler: shift", minimum=0)
        if shift and (shape is None or shape[0] * shape[1] != images.shape[1]):
            raise ValueError(f"sampler: shift needs shape = (H, W) with H·W = D = {images.shape[1]}, got {shape!r}")
        draw = epoch_sampler(images)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            batch = draw(n, rng)
            if shift:
                batch = random_shift(batch, shape, shift, rng)
            return self.forward(batch, rng)[0]

        return sample

    def __repr__(self) -> str:
        return f"LogitTransform(levels={self.levels}, alpha={self.alpha})"


def random_shift(images: np.ndarray, shape: tuple[int, int], shift: int, rng: RngLike = None) -> np.ndarray:
    """Each (H·W,) image moved by its own random (dy, dx) ∈ {−shift, …, shift}², zeros filling the gap."""
    rng = as_generator(rng)
    h, w = shape
    n = images.shape[0]
    padded = np.pad(images.reshape(n, h, w), ((0, 0), (shift, shift), (shift, shift)))
    dy, dx = rng.integers(0, 2 * shift + 1, size=(2, n))
    rows = dy[:, None] + np.arange(h)  # (N, H): padded row read by output row i
    cols = dx[:, None] + np.arange(w)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]].reshape(n, h * w)


def image_grid(images: Any, shape: tuple[int, int], columns: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Tile (N, H·W) single-channel images into one (rows·(H + pad) − pad, columns·(W + pad) − pad) array."""
    images = np.asarray(images, dtype=np.float64)
    h, w = shape
    columns = check_int(columns, "image_grid: columns")
    rows = -(-images.shape[0] // columns)
    grid = np.full((rows * (h + pad) - pad, columns * (w + pad) - pad), fill)
    for index, image in enumerate(images):
        r, c = divmod(index, columns)
        grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = image.reshape(h, w)
    return grid
