"""Glow's activation normalisation (Kingma & Dhariwal 2018): a per-dimension
affine flow whose parameters are set from the first batch it sees, so that the
batch leaves it with zero mean and unit variance in every dimension.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nflows_np.base import check_array
from nflows_np.flows.elementwise import ElementwiseAffine
from nflows_np.validation import check_bool, check_real


class ActNorm(ElementwiseAffine):
    """Activation normalisation  z = f(x) = x ⊙ exp(s) + t,  with data-dependent initialisation.

    The map is :class:`ElementwiseAffine`'s (s is the log-scale, t the bias;
    the passes and gradients are inherited from it):

    Inverse:   x = g(z) = (z − t) ⊙ exp(−s).
    Log-det:   log|det ∂f/∂x| = Σ_i s_i;   log|det ∂g/∂z| = −Σ_i s_i  (the same for every sample).
    Cost: O(N·D) both ways; the initialisation is O(N·D) once.

    Initialisation. Until ``initialized`` is True, the first ``forward(x)``
    first calls ``initialize(x)``: with μ and σ the batch mean and standard
    deviation (ddof 0) per dimension, it sets, in place,

        s = −log σ̃,   t = −μ ⊙ exp(s) ≈ −μ / σ̃,   σ̃ = max(σ, min_std),

    so that z = (x − μ) / σ̃ has mean 0 and standard deviation 1 in every
    dimension whose σ ≥ ``min_std`` (a constant dimension is only centred,
    and its scale stays bounded by 1/min_std). Later passes do not
    re-initialise; call ``initialize(x)`` to force it again. The
    initialisation is a one-off assignment, not part of the graph that
    ``backward`` differentiates.

    - A first batch of fewer than 2 samples (this includes N = 0) cannot
      estimate a standard deviation: ``forward`` and ``initialize`` raise a
      ValueError and the layer stays uninitialised.
    - ``inverse`` before any initialisation raises a RuntimeError: there is no
      data to initialise from in the z → x direction, and silently using the
      identity would let a later ``forward`` overwrite trained parameters.
      For training through ``inverse`` (reverse KL) construct
      ``ActNorm(dim, data_init=False)``: it starts initialised, at the identity.

    Parameters
    ----------
    dim : int
        D.
    data_init : bool
        True (default): initialise from the first ``forward`` batch.
        False: start at the identity (s = t = 0), already ``initialized``.
    min_std : float
        Floor on the batch standard deviation used for the scale (default 1e-6).

    Attributes
    ----------
    initialized : bool
        Whether the parameters have been set (by data or by ``data_init=False``).
    params : {"s": (D,), "t": (D,)}
    """

    def __init__(self, dim: int, data_init: bool = True, min_std: float = 1e-6):
        super().__init__(dim)
        check_bool(data_init, "ActNorm: data_init")
        self.min_std = check_real(min_std, "ActNorm: min_std", minimum=0.0, inclusive=False)
        self.initialized = not data_init

    def initialize(self, x: Any) -> None:
        """Set s and t in place from the batch ``x`` (N ≥ 2), so that f(x) has mean 0 and std 1 per dimension."""
        x = check_array(x, self.dim, self.name, "x")
        if x.shape[0] < 2:
            raise ValueError(f"{self.name}: data-dependent initialisation needs a first batch of at least 2 samples "
                             f"to estimate a standard deviation, got N = {x.shape[0]}; use a larger first batch, "
                             f"call initialize(x) with one, or construct {self.name}(dim, data_init=False)")
        # A (nearly) constant dimension would get scale 1/σ → ∞: floor σ at min_std.
        std = np.maximum(x.std(axis=0), self.min_std)
        self.params["s"][...] = -np.log(std)
        # t from the rounded scale exp(s) that forward multiplies by, not from 1/σ̃: a constant
        # dimension then maps to exactly 0 instead of to |μ/σ̃|·|log σ̃| ulps.
        self.params["t"][...] = -x.mean(axis=0) * np.exp(self.params["s"])
        self.initialized = True

    def _forward(self, x):
        if not self.initialized:
            self.initialize(x)
        return super()._forward(x)

    def _inverse(self, z):
        if not self.initialized:
            raise RuntimeError(f"{self.name}.inverse: the layer is not initialised yet (data-dependent initialisation "
                               "happens on the first forward(x)); call forward(x) or initialize(x) on a data batch "
                               f"first, or construct {self.name}(dim, data_init=False) to start at the identity")
        return super()._inverse(z)

    def __repr__(self) -> str:
        return f"{self.name}(dim={self.dim}, initialized={self.initialized})"
