"""Exercises of notebooks 00 (recap), 01 (change of variables), 02 (fitting, composing) and 03 (KL).

Each reference is computed with the library; each diagnosis recomputes the
answer with one known mistake, so the check can name it.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm

from nflows_np import lvm, models, targets
from nflows_np.exercises.core import Diagnosis, Exercise, value_exercise
from nflows_np.gradcheck import randomize_params

# -- 00 · recap: VAE, IWAE, free bits --------------------------------------------------


def _gaussian_encoder(rng):
    return {"mean": rng.normal(0.0, 1.5, 12), "log_std": rng.normal(-0.5, 0.8, 12)}


def _log_weights(rng):
    return {"log_w": rng.normal(-3.0, 1.5, (6, 10))}


def _free_bits(rng):
    return {"expected_loglik": rng.normal(-2.0, 0.5, 10), "kl": np.linspace(0.0, 1.0, 10), "lam": 0.45}


RECAP = (
    Exercise(
        "00.1", "KL to the prior, closed form", _gaussian_encoder,
        lambda i: {"kl": lvm.Normal(i["mean"], log_std=i["log_std"]).kl()},
        {"kl": "KL(N(m, s²) ‖ N(0, 1))"},
        (Diagnosis("kl", lambda i: i["mean"] ** 2 + np.exp(2 * i["log_std"]) - 1 - 2 * i["log_std"],
                   "twice the KL: the ½ in front of (m² + s² − 1) is missing (and log s is not halved)"),
         Diagnosis("kl", lambda i: 0.5 * (i["mean"] ** 2 + np.exp(i["log_std"]) - 1 - i["log_std"]),
                   "log_std was used as a log-variance: s² = exp(2 · log_std)"),
         Diagnosis("kl", lambda i: 0.5 * (i["mean"] ** 2 + np.exp(2 * i["log_std"])) - i["log_std"],
                   "the −1 is missing: KL(p ‖ p) must be 0 (check m = 0, s = 1)"))),
    Exercise(
        "00.2", "IWAE bound from K log-weights", _log_weights,
        lambda i: {"bound": logsumexp(i["log_w"], axis=1) - np.log(i["log_w"].shape[1])},
        {"bound": "log (1/K) Σ_k w_k, one value per row"},
        (Diagnosis("bound", lambda i: logsumexp(i["log_w"], axis=1),
                   "the −log K is missing: the bound averages the K weights, (1/K) Σ_k w_k"),
         Diagnosis("bound", lambda i: i["log_w"].mean(axis=1),
                   "this is the mean of the log-weights, the ELBO: the IWAE bound is the log of the mean")),
        batch_key="log_w"),
    Exercise(
        "00.3", "the free-bits objective", _free_bits,
        lambda i: {"objective": i["expected_loglik"] - np.maximum(i["lam"], i["kl"])},
        {"objective": "E_q log p(x|z) − max(λ, KL)"},
        (Diagnosis("objective", lambda i: i["expected_loglik"] - np.minimum(i["lam"], i["kl"]),
                   "min instead of max: below λ the KL term must be the constant λ, so it exerts no pull"),
         Diagnosis("objective", lambda i: i["expected_loglik"] - i["kl"],
                   "λ is ignored: this is the plain ELBO"),
         Diagnosis("objective", lambda i: i["expected_loglik"] - np.maximum(0.0, i["kl"] - i["lam"]),
                   "a hinge max(0, KL − λ): it has the right gradient but not the objective's value"))),
)

# -- 01 · change of variables -------------------------------------------------------------


def _affine_1d(rng):
    return {"x": rng.normal(0.5, 2.0, 15), "a": -1.7, "b": 0.4}


def _clockwise_polygon(rng):
    angles = np.sort(rng.uniform(0, 2 * np.pi, 7))[::-1]  # decreasing angle: clockwise
    return {"points": np.c_[np.cos(angles), 0.6 * np.sin(angles)] * rng.uniform(0.5, 2.0, (7, 1))}


def _shoelace(points, signed=False):
    x, y = points[:, 0], points[:, 1]
    area = 0.5 * (x @ np.roll(y, -1) - y @ np.roll(x, -1))
    return area if signed else abs(area)


def _jacobians(rng):
    return {"jacobian": rng.standard_normal((8, 2, 2))}


CHANGE_OF_VARIABLES = (
    Exercise(
        "01.1", "1-D change of variables", _affine_1d,
        lambda i: {"log_px": norm(loc=i["b"], scale=abs(i["a"])).logpdf(i["x"])},
        {"log_px": "log p_X(x) for x = a z + b, z ~ N(0, 1)"},
        (Diagnosis("log_px", lambda i: norm.logpdf((i["x"] - i["b"]) / i["a"]) + np.log(abs(i["a"])),
                   "+log|a| where −log|a| belongs: p_X(x) = p_Z(f(x)) |f′(x)| with f′ = 1/a"),
         Diagnosis("log_px", lambda i: norm.logpdf((i["x"] - i["b"]) / i["a"]),
                   "the log-det term is missing: p_Z(f(x)) alone does not integrate to 1"))),
    Exercise(
        "01.2", "log-det of the inverse map", _jacobians,
        lambda i: {"log_det_g": -np.linalg.slogdet(i["jacobian"])[1]},
        {"log_det_g": "log|det ∂g/∂z| at z = f(x), from J = ∂f/∂x"},
        (Diagnosis("log_det_g", lambda i: np.linalg.slogdet(i["jacobian"])[1],
                   "this is log|det J_f|: by the inverse function theorem J_g = J_f⁻¹, so the sign flips"),
         Diagnosis("log_det_g", lambda i: -np.log(np.abs(np.trace(i["jacobian"], axis1=1, axis2=2))),
                   "the trace is not the determinant (they agree only for 1×1 matrices)")),
        batch_key="jacobian"),
    Exercise(
        "01.3", "area of a polygon (shoelace formula)", _clockwise_polygon,
        lambda i: {"area": _shoelace(i["points"])},
        {"area": "area of the polygon"},
        (Diagnosis("area", lambda i: _shoelace(i["points"], signed=True),
                   "a signed area: negative for clockwise vertices; an area is its absolute value"),
         Diagnosis("area", lambda i: 2 * _shoelace(i["points"]),
                   "twice the area: the shoelace sum counts each triangle twice, multiply by ½"))),
)

# -- 02 · fitting and composing flows --------------------------------------------------


def _composed_model(rng):
    model = randomize_params(models.realnvp(2, num_layers=4, hidden=(8, 8), rng=3), rng=4, scale=0.4)
    return {"model": model, "x": rng.standard_normal((10, 2))}


def _layer_log_dets(model, x):
    log_dets = []
    for layer in model.layers:
        x, log_det = layer.forward(x)
        log_dets.append(log_det)
    return x, log_dets


def _composition_with(i, combine):
    z, log_dets = _layer_log_dets(i["model"], i["x"])
    return combine(i["model"].base.log_prob(z), log_dets)


def _sampled_model(rng):
    model = randomize_params(models.realnvp(2, num_layers=4, hidden=(8, 8), rng=5), rng=6, scale=0.4)
    return {"model": model, "z": rng.standard_normal((10, 2))}


def _wrong_order(i):
    x = i["z"]
    for layer in i["model"].layers:
        x = layer.inverse(x)[0]
    return x


FITTING = (
    Exercise(
        "02.1", "log-likelihood of a composition", _composed_model,
        lambda i: {"log_px": i["model"].log_prob(i["x"])},
        {"log_px": "log p(x) = log p(z) + Σ_k log|det ∂f_k/∂x_{k−1}|"},
        (Diagnosis("log_px", lambda i: _composition_with(i, lambda base, lds: base - sum(lds)),
                   "the log-dets are subtracted: in the normalizing direction f they are added"),
         Diagnosis("log_px", lambda i: sum(_layer_log_dets(i["model"], i["x"])[1]),
                   "the base density log p(z) is missing"),
         Diagnosis("log_px", lambda i: _composition_with(i, lambda base, lds: base + lds[-1]),
                   "only the last layer's log-det: every layer contributes one term")),
        batch_key="x"),
    Exercise(
        "02.2", "sampling: the inverses in the right order", _sampled_model,
        lambda i: {"x": i["model"].inverse(i["z"])[0]},
        {"x": "x = g_1 ∘ … ∘ g_K (z)"},
        (Diagnosis("x", _wrong_order,
                   "g_1 applied first: x = g_1(g_2(…g_K(z))) applies g_K first, i.e. the layers in reverse"),),
        batch_key="z"),
    value_exercise(
        "02.3", "the cost of a dense determinant", "p in O(m^p), log|det J| of a dense m×m Jacobian", 3,
        {2: "m² is the cost of a matrix–vector product; the determinant needs a factorisation",
         1: "O(m) is the cost for a triangular or diagonal Jacobian, not a dense one"}),
)

# -- 03 · forward vs reverse KL ----------------------------------------------------------


def _kl_terms(rng):
    log_pi = rng.normal(-2.5, 0.7, 200)
    return {"log_pi": log_pi, "log_p": log_pi - rng.gamma(2.0, 0.2, 200)}


def _maf_and_target(rng):
    model = randomize_params(models.maf(2, 2, hidden=(8, 8), rng=7), rng=8, scale=0.3)
    return {"model": model, "target": targets.get("mog2"), "z": rng.standard_normal((64, 2))}


def _reverse_kl_terms(i, sign=-1.0, base=True):
    x, log_det_g = i["model"].inverse(i["z"])
    log_p = (i["model"].base.log_prob(i["z"]) if base else 0.0) + sign * log_det_g
    return np.mean(log_p - i["target"].log_prob(x))


def _pushed_data(i, sign=1.0):
    x, log_det_g = i["model"].inverse(i["z"])
    return i["target"].log_prob(x) + sign * log_det_g


KL = (
    Exercise(
        "03.1", "forward KL from samples of π", _kl_terms,
        lambda i: {"kl": np.mean(i["log_pi"] - i["log_p"])},
        {"kl": "KL(π ‖ p) ≈ (1/N) Σ_n [log π(x_n) − log p(x_n)]"},
        (Diagnosis("kl", lambda i: -np.mean(i["log_p"]),
                   "−mean log p(x) is the NLL = KL(π ‖ p) + H(π): the target's own term, + mean log π(x), is missing"),),
        batch_key="log_pi"),
    Exercise(
        "03.2", "reverse KL by sampling the base", _maf_and_target,
        lambda i: {"kl": _reverse_kl_terms(i)},
        {"kl": "KL(p ‖ π) ≈ mean over z ~ p(z) of log p(g(z)) − log π(g(z))"},
        (Diagnosis("kl", lambda i: _reverse_kl_terms(i, sign=+1.0),
                   "+log|det ∂g/∂z| where −log|det ∂g/∂z| belongs: log p(x) = log p(z) − log|det ∂g/∂z|"),
         Diagnosis("kl", lambda i: _reverse_kl_terms(i, base=False),
                   "log p(z) is missing from log p(x)"))),
    Exercise(
        "03.3", "the target pushed to latent space", _maf_and_target,
        lambda i: {"log_density": _pushed_data(i)},
        {"log_density": "log p_Z^π(z) = log π(g(z)) + log|det ∂g/∂z|"},
        (Diagnosis("log_density", lambda i: _pushed_data(i, sign=-1.0),
                   "−log|det ∂g/∂z|: z = f(x) with x ~ π has density π(g(z)) |det ∂g/∂z|"),
         Diagnosis("log_density", lambda i: i["target"].log_prob(i["model"].inverse(i["z"])[0]),
                   "the log-det term is missing")),
        batch_key="z"),
)
