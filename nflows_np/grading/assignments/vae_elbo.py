"""Assignment ``vae_elbo``: the ELBO with its reparametrised gradient, and the IWAE bound (numpy only).

A small Gaussian VAE (linear encoder μ = xA + a, v = xB + c; linear Gaussian decoder
N(zW + b, σ²I); prior N(0, I)); the student writes (see
``lectures/homework/solutions/vae_elbo.py``):

* ``gaussian_kl(mean, log_var)`` -- ½ Σ_j (μ² + e^v − 1 − v) per row;
* ``elbo(x, eps, A, a, B, c, W, b, log_sigma)`` -- log p(x | z) − KL at z = μ + e^{v/2} ε;
* ``elbo_grads(...)`` -- the gradient of the mean ELBO w.r.t. (A, a, B, c, W, b);
* ``log_weights(x, eps, ...)`` -- log p(x | z) + log p(z) − log q(z | x) for K draws;
* ``iwae_bound(log_w)`` -- log (1/K) Σ_k w_k, finite for log-weights near ±1000.

Known mistakes are recomputed by the grader and named: the KL term's sign, ½ missing
from ∂z/∂v, log q left out of the weights, log-sum-exp without the max shift, and
log K forgotten.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from nflows_np.grading.assignments._flows import Diagnosis, compare_named
from nflows_np.grading.cases import Arrays, Assignment, Case, function_driver

_LOG_2PI = float(np.log(2.0 * np.pi))
_TIMEOUT = 10.0
_PARAMS = ("A", "a", "B", "c", "W", "b", "log_sigma")


# ---- references (grader side), with switches for the known mistakes ---------------------

def _kl(mean: np.ndarray, log_var: np.ndarray, minus_one: bool = True) -> np.ndarray:
    return 0.5 * np.sum(mean**2 + np.exp(log_var) - float(minus_one) - log_var, axis=1)


def _encode(inputs: Arrays) -> tuple[np.ndarray, np.ndarray]:
    x = inputs["x"]
    return x @ inputs["A"] + inputs["a"], x @ inputs["B"] + inputs["c"]


def _log_lik(x: np.ndarray, mean_x: np.ndarray, log_sigma: float, normalised: bool = True) -> np.ndarray:
    log_lik = -0.5 * np.sum((x - mean_x) ** 2, axis=-1) * np.exp(-2.0 * log_sigma)
    return log_lik - normalised * 0.5 * x.shape[-1] * (_LOG_2PI + 2.0 * log_sigma)


def _elbo(inputs: Arrays, kl_sign: float = -1.0, normalised: bool = True) -> dict[str, np.ndarray]:
    mean, log_var = _encode(inputs)
    z = mean + np.exp(0.5 * log_var) * inputs["eps"]
    log_lik = _log_lik(inputs["x"], z @ inputs["W"] + inputs["b"], float(inputs["log_sigma"]), normalised)
    return {"elbo": log_lik + kl_sign * _kl(mean, log_var)}


def _grads(inputs: Arrays, kl_sign: float = -1.0, half: float = 0.5) -> dict[str, np.ndarray]:
    x, eps, W = inputs["x"], inputs["eps"], inputs["W"]
    n = x.shape[0]
    mean, log_var = _encode(inputs)
    std = np.exp(0.5 * log_var)
    z = mean + std * eps
    g_out = (x - z @ W - inputs["b"]) * np.exp(-2.0 * float(inputs["log_sigma"])) / n
    g_z = g_out @ W.T
    g_mean = g_z + kl_sign * mean / n
    g_log_var = g_z * half * std * eps + kl_sign * 0.5 * (np.exp(log_var) - 1.0) / n
    return {"dA": x.T @ g_mean, "da": g_mean.sum(axis=0), "dB": x.T @ g_log_var, "dc": g_log_var.sum(axis=0),
            "dW": z.T @ g_out, "db": g_out.sum(axis=0)}


def _log_weights(inputs: Arrays, log_q_sign: float = -1.0) -> dict[str, np.ndarray]:
    mean, log_var = _encode(inputs)
    eps = inputs["eps"]
    z = mean[:, None, :] + np.exp(0.5 * log_var)[:, None, :] * eps
    log_lik = _log_lik(inputs["x"][:, None, :], z @ inputs["W"] + inputs["b"], float(inputs["log_sigma"]))
    log_prior = -0.5 * np.sum(z**2 + _LOG_2PI, axis=2)
    log_q = -0.5 * np.sum(eps**2 + log_var[:, None, :] + _LOG_2PI, axis=2)
    return {"log_w": log_lik + log_prior + log_q_sign * log_q}


def _iwae(inputs: Arrays) -> dict[str, np.ndarray]:
    log_w = inputs["log_w"]
    return {"bound": logsumexp(log_w, axis=1) - np.log(log_w.shape[1])}


def _iwae_naive(inputs: Arrays) -> np.ndarray:
    """log mean exp without the max shift. Only where it stays finite (subnormal exp: wrong digits):
    a non-finite candidate would match any received value within its infinite tolerance."""
    with np.errstate(over="ignore", divide="ignore", under="ignore"):
        naive = np.log(np.mean(np.exp(inputs["log_w"]), axis=1))
    if not np.all(np.isfinite(naive)):
        raise ValueError("the naive log-mean-exp is not finite here")
    return naive


# ---- inputs (drawn with the grader's secret seed) ---------------------------------------

def _vae_inputs(n: int = 12, d: int = 5, latent: int = 3, k: int | None = None):
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        shapes = {"A": (d, latent), "a": (latent,), "B": (d, latent), "c": (latent,), "W": (latent, d), "b": (d,)}
        inputs = {key: 0.4 * rng.normal(size=shape) for key, shape in shapes.items()}
        inputs["log_sigma"] = np.array(rng.uniform(-0.5, 0.5))
        inputs["x"] = rng.normal(size=(n, d))
        inputs["eps"] = rng.normal(size=(n, latent) if k is None else (n, k, latent))
        return inputs
    return make


def _kl_inputs(n: int, latent: int):
    return lambda rng: {"mean": rng.normal(size=(n, latent)), "log_var": rng.uniform(-2.0, 1.5, size=(n, latent))}


def _log_w_inputs(offset: float, n: int = 10, k: int = 20, spread: float = 3.0):
    return lambda rng: {"log_w": offset + spread * rng.normal(size=(n, k))}


# ---- the cases --------------------------------------------------------------------------

_HINT_KL = "KL(N(μ, e^v) ‖ N(0, 1)) = ½ (μ² + e^v − 1 − v) per dimension, summed over the L dimensions"
_HINT_ELBO = ("ELBO = log N(x | zW + b, σ²I) − KL with z = μ + e^{v/2} ε; log N includes −(D/2) log(2πσ²) "
              "and the KL enters with a minus sign")
_HINT_GRADS = ("chain rule through z = μ + e^{v/2} ε: ∂z/∂μ = 1, ∂z/∂v = ½ e^{v/2} ε; −KL adds −μ/N to ∂/∂μ and "
               "−½(e^v − 1)/N to ∂/∂v; the gradient is of the MEAN over the N rows")
_HINT_LOG_W = "log w = log p(x|z) + log p(z) − log q(z|x), with log q(z|x) = −½ Σ (ε² + v + log 2π) at z = μ + e^{v/2} ε"
_HINT_IWAE = ("log (1/K) Σ exp(log w_k) = m + log mean exp(log w_k − m) with m = max_k log w_k: without the "
              "shift, exp underflows to 0 (log → −inf) or overflows to inf")

_KL_DIAGNOSES = [Diagnosis("kl", lambda i: _kl(i["mean"], i["log_var"], minus_one=False),
                           "the −1 inside ½ Σ (μ² + e^v − 1 − v) is missing (your KL is not 0 at q = p)")]
_ELBO_DIAGNOSES = [
    Diagnosis("elbo", lambda i: _elbo(i, kl_sign=+1.0)["elbo"],
              "the KL term has the wrong sign: ELBO = E log p(x|z) − KL(q ‖ p), not + KL"),
    Diagnosis("elbo", lambda i: _elbo(i, normalised=False)["elbo"],
              "the Gaussian's normalising constant −(D/2) log(2πσ²) is missing from log p(x|z)"),
]
_GRAD_DIAGNOSES = [
    *(Diagnosis(key, lambda i, k=key: _grads(i, kl_sign=+1.0)[k],
                "the KL term's gradient has the wrong sign: the ELBO subtracts the KL") for key in ("dA", "da", "dB", "dc")),
    *(Diagnosis(key, lambda i, k=key: _grads(i, half=1.0)[k],
                "∂z/∂v is ½ e^{v/2} ε (v is a log-VARIANCE, σ = e^{v/2}): the ½ is missing") for key in ("dB", "dc")),
]
_LOG_W_DIAGNOSES = [
    Diagnosis("log_w", lambda i: _log_weights(i, log_q_sign=0.0)["log_w"],
              "log q(z|x) is missing: the weight is p(x, z) / q(z | x)"),
    Diagnosis("log_w", lambda i: _log_weights(i, log_q_sign=+1.0)["log_w"],
              "log q(z|x) is added: the weight divides by q, so log w = log p(x, z) − log q(z|x)"),
]
_IWAE_DIAGNOSES = [
    Diagnosis("bound", lambda i: logsumexp(i["log_w"], axis=1),
              "log K is missing: L_K = log (1/K) Σ_k w_k = logsumexp(log w) − log K"),
    Diagnosis("bound", _iwae_naive,
              "exp(log w) under- or overflowed: subtract the max log-weight before exp (log-sum-exp trick)"),
]


def _case(name: str, weight: float, function: str, args: tuple[str, ...], outputs: dict[str, str], make_inputs,
          reference, diagnoses, hint: str, hidden: bool = False, batch_key: str = "x",
          returns: tuple[str, ...] | None = None) -> Case:
    """A case comparing ``outputs`` (name -> label) of ``function``, which returns ``returns`` (default: outputs)."""
    return Case(name=name, weight=weight, make_inputs=make_inputs, reference=reference,
                driver=function_driver(function, args, returns or tuple(outputs)),
                score=compare_named(outputs, diagnoses=diagnoses, batch_key=batch_key),
                hidden=hidden, timeout=_TIMEOUT, hint=hint)


_VAE_ARGS = ("x", "eps", *_PARAMS)
_GRADS = ("dA", "da", "dB", "dc", "dW", "db")
_GRAD_LABELS = {"dA": "∂ELBO/∂A", "da": "∂ELBO/∂a", "dB": "∂ELBO/∂B", "dc": "∂ELBO/∂c", "dW": "∂ELBO/∂W",
                "db": "∂ELBO/∂b"}

ASSIGNMENT = Assignment(
    name="vae_elbo",
    title="the VAE's ELBO with its reparametrised gradient, and the IWAE bound",
    solution="lectures/homework/solutions/vae_elbo.py",
    student="lectures/homework/vae_elbo.py",
    budget=25.0,
    cases=(
        _case("gaussian_kl: 3-D latent", 2, "gaussian_kl", ("mean", "log_var"), {"kl": "KL(q ‖ p(z))"},
              _kl_inputs(20, 3), lambda i: {"kl": _kl(i["mean"], i["log_var"])}, _KL_DIAGNOSES, _HINT_KL,
              batch_key="mean"),
        _case("gaussian_kl: 16-D latent", 1, "gaussian_kl", ("mean", "log_var"), {"kl": "KL(q ‖ p(z))"},
              _kl_inputs(30, 16), lambda i: {"kl": _kl(i["mean"], i["log_var"])}, _KL_DIAGNOSES, _HINT_KL,
              hidden=True, batch_key="mean"),
        _case("elbo: one draw per row", 3, "elbo", _VAE_ARGS, {"elbo": "ELBO(x_n)"}, _vae_inputs(), _elbo,
              _ELBO_DIAGNOSES, _HINT_ELBO),
        _case("elbo_grads: decoder (W, b)", 2, "elbo_grads", _VAE_ARGS,
              {"dW": _GRAD_LABELS["dW"], "db": _GRAD_LABELS["db"]}, _vae_inputs(),
              _grads, _GRAD_DIAGNOSES, _HINT_GRADS, returns=_GRADS),
        _case("elbo_grads: encoder mean (A, a)", 2, "elbo_grads", _VAE_ARGS,
              {"dA": _GRAD_LABELS["dA"], "da": _GRAD_LABELS["da"]}, _vae_inputs(),
              _grads, _GRAD_DIAGNOSES, _HINT_GRADS, returns=_GRADS),
        _case("elbo_grads: encoder log-variance (B, c)", 3, "elbo_grads", _VAE_ARGS,
              {"dB": _GRAD_LABELS["dB"], "dc": _GRAD_LABELS["dc"]}, _vae_inputs(),
              _grads, _GRAD_DIAGNOSES, _HINT_GRADS, returns=_GRADS),
        _case("elbo_grads: 8-D data, 4-D latent, every parameter", 2, "elbo_grads", _VAE_ARGS, _GRAD_LABELS,
              _vae_inputs(n=25, d=8, latent=4), _grads, _GRAD_DIAGNOSES, _HINT_GRADS, hidden=True, returns=_GRADS),
        _case("log_weights: K = 7 draws per row", 3, "log_weights", _VAE_ARGS, {"log_w": "log w_nk"},
              _vae_inputs(k=7), _log_weights, _LOG_W_DIAGNOSES, _HINT_LOG_W),
        _case("iwae_bound: moderate log-weights", 2, "iwae_bound", ("log_w",), {"bound": "L_K"},
              _log_w_inputs(0.0), _iwae, _IWAE_DIAGNOSES, _HINT_IWAE, batch_key="log_w"),
        _case("iwae_bound: log-weights near −742 (exp is subnormal)", 1, "iwae_bound", ("log_w",), {"bound": "L_K"},
              _log_w_inputs(-742.0, spread=0.5), _iwae, _IWAE_DIAGNOSES, _HINT_IWAE, batch_key="log_w"),
        _case("iwae_bound: log-weights near −1000", 2, "iwae_bound", ("log_w",), {"bound": "L_K"},
              _log_w_inputs(-1000.0), _iwae, _IWAE_DIAGNOSES, _HINT_IWAE, batch_key="log_w"),
        _case("iwae_bound: log-weights near +1000", 1, "iwae_bound", ("log_w",), {"bound": "L_K"},
              _log_w_inputs(1000.0), _iwae, _IWAE_DIAGNOSES, _HINT_IWAE, hidden=True, batch_key="log_w"),
    ),
)
