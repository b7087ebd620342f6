"""Variational autoencoders on binarised digits, with hand-written gradients (the lecture's recap).

- :mod:`~nflows_np.vae.networks` — the Gaussian encoder and the Bernoulli decoders
  (factorised, and autoregressive over the pixels with MADE masks).
- :mod:`~nflows_np.vae.model` — :class:`VAE`: the ELBO with KL annealing and free bits,
  the IWAE bound L_K, their reparametrised gradients, active units.
- :mod:`~nflows_np.vae.training` — :func:`make_vae`, :func:`fit_vae` (the library's
  training loop), :func:`save_vae` / :func:`load_vae`, :func:`evaluate`.
"""
from nflows_np.vae.model import VAE, Terms, draw_eps, iwae_from_log_weights, kl_per_dim
from nflows_np.vae.networks import (
                                    AutoregressiveDecoder,
                                    FactorisedDecoder,
                                    GaussianEncoder,
                                    autoregressive_masks,
                                    bernoulli_log_likelihood,
                                    binarize,
)
from nflows_np.vae.training import DECODERS, beta_ramp, build, evaluate, fit_vae, load_vae, make_vae, save_vae

__all__ = [
    "DECODERS", "VAE", "AutoregressiveDecoder", "FactorisedDecoder", "GaussianEncoder", "Terms",
    "autoregressive_masks", "bernoulli_log_likelihood", "beta_ramp", "binarize", "build", "draw_eps",
    "evaluate", "fit_vae", "iwae_from_log_weights", "kl_per_dim", "load_vae", "make_vae", "save_vae",
]
