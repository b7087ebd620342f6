"""Exercises of notebooks 04 (Jacobian structure), 05 (residual flows), 06 (coupling, linear) and 07 (summary).

Each reference is computed with the library; each diagnosis recomputes the
answer with one known mistake, so the check can name it.
"""
from __future__ import annotations

import numpy as np

from nflows_np import flows, models
from nflows_np.composition import FlowModel
from nflows_np.exercises.core import Diagnosis, Exercise, value_exercise
from nflows_np.gradcheck import randomize_params
from nflows_np.numerics import LOG_SCALE_BOUND, logcosh, softplus

# -- 04 · Jacobian structure -------------------------------------------------------------


def _sinh_arcsinh(rng):
    return {"x": rng.normal(0.0, 2.0, (9, 3)), "a": rng.normal(0.0, 0.7, 3), "log_b": rng.normal(0.0, 0.5, 3)}


def _sinh_arcsinh_reference(i):
    layer = flows.SinhArcsinh(3)
    layer.params["a"][...], layer.params["log_b"][...] = i["a"], i["log_b"]
    return {"log_det": layer.forward(i["x"])[1]}


def _v(i):
    return np.exp(i["log_b"]) * np.arcsinh(i["x"]) - i["a"]


def _lower_triangular(rng):
    lower = np.tril(rng.standard_normal((6, 6)))
    lower[np.diag_indices(6)] = rng.choice([-1.0, 1.0], 6) * rng.uniform(0.3, 3.0, 6)
    return {"jacobian": lower}


JACOBIANS = (
    value_exercise(
        "04.1", "log|det| of a permutation", "log|det P| for a permutation matrix P", 0.0,
        {1.0: "|det P| = 1, so its log is 0", -1.0: "det P = ±1 (the permutation's sign); log|det P| = 0"}),
    Exercise(
        "04.2", "log-det of an elementwise map", _sinh_arcsinh, _sinh_arcsinh_reference,
        {"log_det": "Σ_i log f_i′(x_i), one value per sample"},
        (Diagnosis("log_det", lambda i: (i["log_b"] + logcosh(_v(i))).sum(axis=1),
                   "the chain-rule factor d asinh(x)/dx = 1/√(1 + x²) is missing: −½ log(1 + x²)"),
         Diagnosis("log_det", lambda i: (logcosh(_v(i)) - 0.5 * np.log1p(i["x"] ** 2)).sum(axis=1),
                   "the factor b of v = b·asinh(x) − a is missing: + log b")),
        batch_key="x"),
    Exercise(
        "04.3", "log|det| of a triangular Jacobian", _lower_triangular,
        lambda i: {"log_det": np.linalg.slogdet(i["jacobian"])[1]},
        {"log_det": "log|det J| for lower-triangular J"},
        (Diagnosis("log_det", lambda i: np.prod(np.abs(np.diag(i["jacobian"]))),
                   "this is |det J| = Π|J_ii|; the log-det is Σ log|J_ii|"),
         Diagnosis("log_det", lambda i: np.sum(np.diag(i["jacobian"])),
                   "this is the trace Σ J_ii; the log-det is Σ log|J_ii|"))),
)

# -- 05 · residual flows -----------------------------------------------------------------


def _lemma(rng):
    return {"V": rng.standard_normal((40, 3)), "W": 0.3 * rng.standard_normal((40, 3))}


def _planar(rng):
    u, w = rng.standard_normal(3), rng.standard_normal(3)
    return {"z": rng.standard_normal((12, 3)), "u": u, "w": w, "b": 0.7}


def _planar_reference(i):
    layer = flows.Planar(3, invertible=False)
    layer.params["u"][...], layer.params["w"][...], layer.params["b"][...] = i["u"], i["w"], i["b"]
    x, log_det = layer.inverse(i["z"])
    return {"x": x, "log_det": log_det}


def _planar_gate(i):
    return np.tanh(i["z"] @ i["w"] + i["b"])


def _u_hat_inputs(rng):
    w = rng.standard_normal(4)
    return {"u": -1.5 * w / (w @ w) + 0.3 * rng.standard_normal(4), "w": w}


def _u_hat_reference(i):
    layer = flows.Planar(4, invertible=True)
    layer.params["u"][...], layer.params["w"][...] = i["u"], i["w"]
    return {"u_hat": layer.u_hat}


def _u_hat_with(i, m, norm_power=2):
    s = i["w"] @ i["u"]
    return i["u"] + (m(s) - s) * i["w"] / np.linalg.norm(i["w"]) ** norm_power


RESIDUAL = (
    Exercise(
        "05.1", "the matrix determinant lemma", _lemma,
        lambda i: {"log_det": np.linalg.slogdet(np.eye(40) + i["V"] @ i["W"].T)[1]},
        {"log_det": "log|det(I_m + V Wᵀ)|, computed from a d×d matrix"},
        (Diagnosis("log_det", lambda i: np.linalg.slogdet(i["W"].T @ i["V"])[1],
                   "the identity is missing: det(I_m + V Wᵀ) = det(I_d + Wᵀ V)"),)),
    Exercise(
        "05.2", "a planar layer from scratch", _planar, _planar_reference,
        {"x": "x = g(z) = z + u tanh(wᵀz + b)", "log_det": "log|det ∂g/∂z| = log|1 + h′(wᵀz + b) wᵀu|"},
        (Diagnosis("log_det", lambda i: np.log(np.abs(1 + _planar_gate(i) * (i["w"] @ i["u"]))),
                   "h = tanh where h′ = 1 − tanh² belongs"),
         Diagnosis("log_det", lambda i: np.log(np.abs((1 - _planar_gate(i) ** 2) * (i["w"] @ i["u"]))),
                   "the 1 (the identity of I + h′ u wᵀ) is missing"),
         Diagnosis("x", lambda i: i["z"] + np.outer(i["z"] @ i["w"] + i["b"], i["u"]),
                   "the nonlinearity h = tanh is missing: x = z + u h(wᵀz + b)")),
        batch_key="z"),
    Exercise(
        "05.3", "the reparametrisation û", _u_hat_inputs, _u_hat_reference,
        {"u_hat": "û = u + (m(wᵀu) − wᵀu) w / ‖w‖²,  m(s) = −1 + softplus(s)"},
        (Diagnosis("u_hat", lambda i: _u_hat_with(i, lambda s: -1 + softplus(s), norm_power=1),
                   "divided by ‖w‖ where ‖w‖² belongs: then wᵀû ≠ m(wᵀu)"),
         Diagnosis("u_hat", lambda i: _u_hat_with(i, softplus),
                   "m(s) = softplus(s) without the −1: then wᵀû > 0, more than needed (≥ −1 suffices)"))),
)

# -- 06 · coupling and linear flows --------------------------------------------------------

MASK = np.array([1, 0, 1, 0, 0])


def _coupling_inverse(rng):
    return {"z": rng.standard_normal((7, 5)), "mask": MASK.copy(),
            "s": rng.normal(0.0, 0.8, (7, 3)), "t": rng.standard_normal((7, 3))}


def _coupling_inverse_with(i, x_b):
    x = i["z"].copy()
    x[:, i["mask"] == 0] = x_b(i["z"][:, i["mask"] == 0], i["s"], i["t"])
    return x


def _coupling_layer(rng):
    layer = randomize_params(flows.AffineCoupling(MASK, hidden=(8,), rng=9), rng=10, scale=1.2)
    return {"x": rng.standard_normal((7, 5)), "layer": layer}


def _raw_scale_and_shift(i):
    out = i["layer"].net.forward(i["x"][:, MASK == 1])
    return out[:, :3], out[:, 3:]


def _unclamped(i):
    raw, t = _raw_scale_and_shift(i)
    z = i["x"].copy()
    z[:, MASK == 0] = i["x"][:, MASK == 0] * np.exp(raw) + t
    return z


def _lu(rng):
    layer = randomize_params(flows.LULinear(5, rng=11), rng=12, scale=0.8)
    P, L, U = layer.factors()
    return {"P": P, "L": L, "U": U}


COUPLING = (
    Exercise(
        "06.1", "the coupling inverse", _coupling_inverse,
        lambda i: {"x": _coupling_inverse_with(i, lambda z_b, s, t: (z_b - t) * np.exp(-s)),
                   "log_det": -i["s"].sum(axis=1)},
        {"x": "x_B = (z_B − t) ⊙ exp(−s), x_A = z_A", "log_det": "log|det ∂g/∂z| = −Σ s"},
        (Diagnosis("x", lambda i: _coupling_inverse_with(i, lambda z_b, s, t: (z_b - t) * np.exp(s)),
                   "exp(+s): the inverse divides by the scale, x_B = (z_B − t) ⊙ exp(−s)"),
         Diagnosis("x", lambda i: _coupling_inverse_with(i, lambda z_b, s, t: z_b * np.exp(-s) - t),
                   "t subtracted after the division: undo the steps in reverse order, first − t, then ⊙ exp(−s)")),
        batch_key="z"),
    Exercise(
        "06.2", "an affine coupling layer from scratch", _coupling_layer,
        lambda i: dict(zip(("z", "log_det"), i["layer"].forward(i["x"]))),
        {"z": "z = f(x): z_A = x_A, z_B = x_B ⊙ exp(s) + t", "log_det": "log|det ∂f/∂x| = Σ s"},
        (Diagnosis("z", _unclamped,
                   f"the raw ŝ used as the log-scale: the library clamps it, s = {LOG_SCALE_BOUND:g} tanh(ŝ/"
                   f"{LOG_SCALE_BOUND:g})"),
         Diagnosis("log_det", lambda i: _raw_scale_and_shift(i)[0].sum(axis=1),
                   "Σ ŝ: the log-det sums the clamped s, not the raw network output")),
        batch_key="x"),
    Exercise(
        "06.3", "log|det W| from the LU factors", _lu,
        lambda i: {"log_det": np.linalg.slogdet(i["P"] @ i["L"] @ i["U"])[1]},
        {"log_det": "log|det W| for W = P L U (L unit lower-triangular)"},
        (Diagnosis("log_det", lambda i: np.sum(np.diag(i["U"])),
                   "Σ U_ii: the log-det is Σ log|U_ii|"),
         Diagnosis("log_det", lambda i: np.prod(np.abs(np.diag(i["U"]))),
                   "this is |det W| = Π|U_ii|; the log-det is Σ log|U_ii|"))),
)

# -- 07 · summary ------------------------------------------------------------------------


def _linear(rng):
    return {"x": rng.standard_normal((10, 3)), "W": rng.standard_normal((3, 3))}


def _linear_log_prob(i, sign=1.0):
    z = i["x"] @ i["W"].T
    return -0.5 * np.sum(z ** 2, axis=1) - 1.5 * np.log(2 * np.pi) + sign * np.linalg.slogdet(i["W"])[1]


def _linear_reference(i):
    layer = flows.Linear(3)
    layer.params["weight"][...] = i["W"]
    return {"log_px": FlowModel([layer]).log_prob(i["x"])}


def _duality(rng):
    model = randomize_params(models.realnvp(2, num_layers=2, hidden=(8,), rng=13), rng=14, scale=0.4)
    x = rng.standard_normal((100, 2)) * [1.5, 0.7]
    log_pi = -0.5 * np.sum((x / [1.5, 0.7]) ** 2, axis=1) - np.log(2 * np.pi * 1.5 * 0.7)
    return {"model": model, "x": x, "log_pi": log_pi}


def _latent_kl(i, sign=-1.0):
    z, log_det_f = i["model"].forward(i["x"])
    return np.mean(i["log_pi"] + sign * log_det_f - i["model"].base.log_prob(z))


SUMMARY = (
    Exercise(
        "07.1", "likelihood through a linear flow", _linear,
        _linear_reference,
        {"log_px": "log p(x) = log N(Wx; 0, I) + log|det W|"},
        (Diagnosis("log_px", lambda i: _linear_log_prob(i, sign=-1.0),
                   "−log|det W|: for z = f(x) = Wx the log-det of f is added"),
         Diagnosis("log_px", lambda i: _linear_log_prob(i, sign=0.0),
                   "the log-det term is missing")),
        batch_key="x"),
    value_exercise(
        "07.2", "the cost exponents", "p in O(m^p) for log|det| of (dense W, LU-parametrised W, planar)",
        [3, 1, 1],
        {(3, 3, 3): "with LU the determinant is the product of U's diagonal, and the lemma reduces the "
                    "planar determinant to a scalar",
         (3, 1, 3): "the lemma turns the planar m×m determinant into 1 + h′ wᵀu: O(m)",
         (3, 3, 1): "W = P L U has det W = ± Π U_ii: O(m)"}),
    Exercise(
        "07.3", "the KL duality, in z-space", _duality,
        lambda i: {"kl": np.mean(i["log_pi"] - i["model"].log_prob(i["x"]))},
        {"kl": "KL(p_Z^π ‖ p(z)) from x ~ π: mean of log π(x) − log|det ∂f/∂x| − log p(f(x))"},
        (Diagnosis("kl", lambda i: _latent_kl(i, sign=+1.0),
                   "+log|det ∂f/∂x|: the density of z = f(x) is π(x) / |det ∂f/∂x|"),)),
)
