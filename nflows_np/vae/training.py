"""Building, training, saving and evaluating a VAE on binarised digits.

Training goes through the library's loop (:func:`nflows_np.train.fit`: Adam or SGD from
:mod:`nflows_np.optim`, a tqdm progress bar, a :class:`~nflows_np.train.History`, and a
stop that keeps the last good parameters on divergence). The objective per step is

- ``k = 1``: the ELBO with KL weight β(t) (KL annealing: β rises from 0 to 1) and free
  bits λ nats per latent dimension, L = E_q log p(x | z) − β Σ_j max(λ, KL_j);
- ``k > 1``: the IWAE bound L_K.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from nflows_np.base import RngLike, as_generator, check_int
from nflows_np.checkpoint import load_params, read_checkpoint, save_params
from nflows_np.train import History, fit
from nflows_np.vae.model import VAE, draw_eps
from nflows_np.vae.networks import AutoregressiveDecoder, FactorisedDecoder, GaussianEncoder
from nflows_np.validation import check_bool, check_real, lookup

__all__ = ["DECODERS", "beta_ramp", "build", "evaluate", "fit_vae", "load_vae", "make_vae", "save_vae"]

DECODERS = ("factorised", "autoregressive")


def make_vae(decoder: str = "autoregressive", *, data_dim: int = 64, latent_dim: int = 8,
             encoder_hidden: tuple[int, ...] = (128,), decoder_hidden: tuple[int, ...] = (128,),
             window: int | None = None, start_at_prior: bool = False, rng: RngLike = None) -> VAE:
    """A VAE with a Gaussian encoder and a Bernoulli decoder.

    ``decoder="factorised"``: p(x | z) = Π_i Bern(x_i | σ(ℓ_i(z))); ``"autoregressive"``:
    ℓ_i(x_{<i}, z) by a MADE network with hidden widths ``decoder_hidden``
    (``window`` limits the connections, see :func:`~nflows_np.vae.autoregressive_masks`).

    With ``start_at_prior`` the encoder's output layer and the decoder's weights on z
    start at zero: q(z | x) = p(z) for every x and the decoder ignores z, so training
    starts from the collapsed state (a stationary point of the expected ELBO) and shows
    whether the objective leaves it.
    """
    decoder = lookup(decoder, DECODERS, "decoder")
    spec = {"decoder": decoder, "data_dim": int(data_dim), "latent_dim": int(latent_dim),
            "encoder_hidden": [int(h) for h in encoder_hidden], "decoder_hidden": [int(h) for h in decoder_hidden],
            "window": None if window is None else int(window),
            "start_at_prior": check_bool(start_at_prior, "make_vae: start_at_prior")}
    return build(spec, rng)


def build(spec: dict, rng: RngLike = None) -> VAE:
    """The VAE described by ``spec`` (as stored in a checkpoint by :func:`save_vae`)."""
    rng = as_generator(rng)
    encoder = GaussianEncoder(spec["data_dim"], spec["latent_dim"], tuple(spec["encoder_hidden"]), rng)
    if spec["decoder"] == "factorised":
        if spec.get("window") is not None:
            raise ValueError("make_vae: window applies to the autoregressive decoder only")
        decoder: Any = FactorisedDecoder(spec["data_dim"], spec["latent_dim"], tuple(spec["decoder_hidden"]), rng)
    else:
        decoder = AutoregressiveDecoder(spec["data_dim"], spec["latent_dim"], tuple(spec["decoder_hidden"]),
                                        spec.get("window"), rng)
    if spec.get("start_at_prior"):
        last = len(encoder.net.sizes) - 1
        encoder.params[f"net.W{last}"][...] = 0.0           # μ = 0, v = 0: q(z | x) = N(0, I)
        decoder.params["net.W1"][-spec["latent_dim"]:] = 0.0  # the rows that z multiplies
    return VAE(encoder, decoder, spec)


def save_vae(model: VAE, path: str | os.PathLike) -> None:
    """Write the parameters and the spec of ``model`` to an ``.npz`` file (no pickle)."""
    save_params(model, path, spec={"vae": model.spec})


def load_vae(path: str | os.PathLike) -> VAE:
    """The VAE saved by :func:`save_vae` at ``path``."""
    _, spec = read_checkpoint(path)
    if not spec or "vae" not in spec:
        raise ValueError(f"load_vae: {path} holds no VAE spec")
    model = build(spec["vae"])
    load_params(model, path)
    return model


def beta_ramp(steps: int) -> Callable[[int], float]:
    """KL annealing schedule β(t) = min(1, t / steps): from 0 to 1 over ``steps`` steps (0: always 1)."""
    steps = check_int(steps, "beta_ramp: steps", minimum=0)
    return lambda t: 1.0 if steps == 0 or t >= steps else t / steps


def evaluate(model: VAE, x: np.ndarray, rng: RngLike = None) -> dict[str, float]:
    """ELBO, reconstruction term, KL and active units of ``model`` on ``x`` (one draw of z per point)."""
    terms = model.elbo(x, rng)
    active, _ = model.active_units(x)
    return {"elbo": terms.elbo, "reconstruction": terms.reconstruction, "kl": terms.kl,
            "active_units": float(active)}


def _epochs(data: np.ndarray) -> Callable[[int, np.random.Generator], np.ndarray]:
    """Minibatches drawn without replacement, epoch after epoch."""
    order: list[int] = []

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        if len(order) < n:
            order.extend(rng.permutation(data.shape[0]).tolist())
        take = order[:n]
        del order[:n]
        return data[take]

    return sample


def fit_vae(model: VAE, data: Any, *, steps: int = 3000, batch_size: int = 100, lr: float = 1e-3, k: int = 1,
            beta: float | Callable[[int], float] = 1.0, free_bits: float = 0.0, eval_data: Any = None,
            eval_every: int = 0, optimizer: Any = "adam", clip_norm: float | None = None, rng: RngLike = None,
            progress: bool | None = None) -> History:
    """Train ``model`` on binary ``data`` (N, D) by the ELBO (k = 1, with β and free bits) or by L_K (k > 1).

    Parameters
    ----------
    beta : float or callable(step) -> float
        The KL weight, e.g. ``beta_ramp(1000)`` for KL annealing (k = 1 only).
    free_bits : float
        λ in nats per latent dimension (k = 1 only).
    eval_data : (M, D) binary array, optional
        Evaluated (see :func:`evaluate`) every ``eval_every`` steps and at the end.
    rng : None, int or Generator
        The only source of randomness (minibatch order and ε).

    Returns
    -------
    History
        ``loss`` per step (−objective); ``eval`` with ``"elbo"``, ``"kl"``, ``"active_units"``.
    """
    data = model._x(data, "fit_vae")
    k = check_int(k, "fit_vae: k")
    batch_size = check_int(batch_size, "fit_vae: batch_size")
    free_bits = check_real(free_bits, "fit_vae: free_bits", minimum=0.0)
    constant_beta = None if callable(beta) else check_real(beta, "fit_vae: beta", minimum=0.0)
    beta_fn = beta if callable(beta) else (lambda t: constant_beta)
    if k > 1 and (callable(beta) or beta != 1.0 or free_bits != 0.0):
        raise ValueError("fit_vae: KL annealing (beta) and free bits apply to the ELBO (k = 1) only")
    rng = as_generator(rng)
    eval_rng = as_generator(int(rng.integers(2**63)))
    sampler = _epochs(data)
    checked_eval = None if eval_data is None else model._x(eval_data, "fit_vae")

    def step(t: int) -> float:
        batch = sampler(batch_size, rng)
        if k == 1:
            eps = draw_eps(batch.shape[0], model.latent_dim, rng=rng)
            return -model.objective_step(batch, eps, beta_fn(t), free_bits).objective
        return -model.iwae_step(batch, draw_eps(batch.shape[0], model.latent_dim, k, rng))

    evaluate_fn = None if checked_eval is None else (lambda: evaluate(model, checked_eval, eval_rng))
    objective = "ELBO" if k == 1 else f"IWAE L_{k}"
    return fit(model, step, evaluate_fn, objective=objective, steps=steps, optimizer=optimizer, lr=lr,
               clip_norm=clip_norm, eval_every=eval_every, progress=progress,
               beta=beta_fn if k == 1 else None)
