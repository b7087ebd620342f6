"""Assignment ``lu_linear``: the LU-parametrised linear flow W = P L (U + diag s) (numpy only).

The student writes, in the template ``lectures/homework/lu_linear.py``:

* ``solve_lower_unit(L, B)``, ``solve_upper(U, B)`` -- triangular solves by substitution;
* ``LULinear(dim)`` with params "lower", "upper" (full D×D arrays, strict
  triangles used), "log_s" and attributes ``perm``, ``sign`` that the grader
  sets: ``weight()``, ``forward``, ``inverse`` (by the two solves), ``backward``;
* ``fit_gaussian(x_train, seed)`` -- MLE of one layer on 3-D Gaussian data.

References: ``nf.LULinear`` at the same parameters (its ``perm``,
``inverse_perm`` and ``sign`` set too), ``scipy.linalg.solve_triangular``, and
for the fitted layer the exact KL(π‖p) between the data's Gaussian (known
to the grader only) and the Gaussian N(0, (WᵀW)⁻¹) that the library's
``LULinear`` at the returned parameters defines.  The grader fills the unused entries of "lower" and "upper" with
random numbers: a layer that reads them is caught.  Known mistakes are
recomputed by :func:`_lu`, a small independent implementation.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

import nflows_np as nf
from nflows_np.grading.assignments._flows import (
    DRIVER_PRELUDE,
    ROUND_TRIP_LABELS,
    Diagnosis,
    compare_named,
    layer_driver,
    params_of,
    pass_inputs,
    run_pass,
    set_params,
    threshold_score,
)
from nflows_np.grading.cases import Arrays, Assignment, Case, Outcome, function_driver

FIT_DIM = 3
TRAIN_POINTS = 4000
NLL_FULL = 0.02     # nats above the entropy of the data's Gaussian (the solution: ≈ 0.001)
NLL_PARTIAL = 0.10
_TIMEOUT = 10.0
_TRAIN_TIMEOUT = 20.0


# ---- inputs -----------------------------------------------------------------------------

def _lu_params(rng: np.random.Generator, dim: int) -> dict[str, np.ndarray]:
    # Every entry random, the unused ones included; off-diagonal scale 0.5 keeps W well conditioned.
    return {"lower": 0.5 * rng.standard_normal((dim, dim)), "upper": 0.5 * rng.standard_normal((dim, dim)),
            "log_s": rng.uniform(-0.5, 0.5, dim)}


def _lu_inputs(dim: int = 4, n: int = 30, grads: bool = False):
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        # A P with P² ≠ I (for D ≥ 3): then P, Pᵀ and the identity all give different W.
        perm = rng.permutation(dim)
        while dim > 2 and np.array_equal(perm[perm], np.arange(dim)):
            perm = rng.permutation(dim)
        sign = rng.choice([-1.0, 1.0], dim)
        sign[rng.integers(dim)] = -1.0
        return pass_inputs(_lu_params(rng, dim), 1.5 * rng.standard_normal((n, dim)), rng if grads else None,
                           perm=perm.astype(np.int64), sign=sign)
    return make


_CONFIGURE = """    layer.perm = inputs["perm"].astype(int).copy()
    layer.sign = inputs["sign"].copy()
"""


# ---- references: the library ------------------------------------------------------------------

def _library(inputs: Arrays) -> nf.LULinear:
    layer = nf.LULinear(inputs["perm"].size)
    layer.perm = inputs["perm"].astype(int)
    layer.inverse_perm = np.argsort(layer.perm)
    layer.sign = inputs["sign"].astype(float)
    return set_params(layer, params_of(inputs))


def _ref(direction: str, *names: str):
    def reference(inputs: Arrays) -> dict[str, np.ndarray]:
        layer = _library(inputs)
        result = {"value": layer.weight()} if direction == "weight" else run_pass(layer, inputs, direction)
        return {name: result[name] for name in names}
    return reference


def _ref_round_trip(inputs: Arrays) -> dict[str, np.ndarray]:
    x = _ref("inverse", "out")(inputs)["out"]
    return {"out": inputs["in"], "log_det": np.zeros(inputs["in"].shape[0]), "x": x}


# ---- known mistakes, recomputed by an independent implementation ----------------------------

def _lu(inputs: Arrays, direction: str, *, perm: str = "P", strict: str = "strict", sign: bool = True,
        mask_grads: bool = True, log_det_term: bool = True, s_chain: bool = True) -> dict[str, np.ndarray]:
    """The LU layer with one mistake switched on (defaults: the right layer).

    perm: "P" (right), "none" (P forgotten), "PT" (Pᵀ used); strict: "strict" (right), "full" (the whole
    arrays), "diagonal" (tril/triu including the diagonal); sign: use ``sign``; mask_grads: zero gradient
    outside the strict triangles; log_det_term: ∂L/∂log_det used; s_chain: ∂s/∂log_s = s applied.
    """
    params = params_of(inputs)
    dim = params["log_s"].size
    p = {"P": inputs["perm"].astype(int), "none": np.arange(dim), "PT": np.argsort(inputs["perm"].astype(int))}[perm]
    s = (inputs["sign"] if sign else 1.0) * np.exp(params["log_s"])
    if strict == "strict":
        lower, upper = np.tril(params["lower"], -1) + np.eye(dim), np.triu(params["upper"], 1)
    elif strict == "full":
        lower, upper = params["lower"] + np.eye(dim), params["upper"]
    else:
        lower, upper = np.tril(params["lower"]) + np.eye(dim), np.triu(params["upper"])
    upper = upper + np.diag(s)
    weight = (lower @ upper)[p]
    result = {"value": weight}
    if direction == "weight":
        return result
    point = inputs["in"]
    total = float(np.sum(inputs.get("grad_log_det", 0.0))) if log_det_term else 0.0
    if direction == "forward":
        a = point @ upper.T
        result["out"], result["log_det"] = point @ weight.T, np.full(point.shape[0], params["log_s"].sum())
        if "grad_out" in inputs:
            grad_b = inputs["grad_out"][:, np.argsort(p)]
            grad_lower, grad_a = grad_b.T @ a, grad_b @ lower
            grad_upper, result["grad_in"] = grad_a.T @ point, grad_a @ upper
    else:
        x = np.linalg.solve(weight, point.T).T
        result["out"], result["log_det"] = x, np.full(point.shape[0], -params["log_s"].sum())
        total = -total
        if "grad_out" in inputs:
            a = x @ upper.T
            grad_a = np.linalg.solve(upper.T, inputs["grad_out"].T).T
            grad_upper = -grad_a.T @ x
            grad_c = np.linalg.solve(lower.T, grad_a.T).T
            grad_lower, result["grad_in"] = -grad_c.T @ a, grad_c[:, p]
    if "grad_out" in inputs:
        result["grad.lower"] = np.tril(grad_lower, -1) if mask_grads else grad_lower
        result["grad.upper"] = np.triu(grad_upper, 1) if mask_grads else grad_upper
        result["grad.log_s"] = (s if s_chain else 1.0) * np.diag(grad_upper) + total
    return result


_WEIGHT_MISTAKES = (
    (dict(perm="none"), "the permutation P is missing: W = P L (U + diag s), (P M)_ij = M_{perm[i], j}"),
    (dict(perm="PT"), "Pᵀ instead of P: (P b)_i = b[perm[i]], so P M = M[perm]"),
    (dict(strict="full"), "the whole arrays were used: only the strictly lower part of 'lower' and the "
                          "strictly upper part of 'upper' are parameters (np.tril(·, -1), np.triu(·, 1))"),
    (dict(strict="diagonal"), "the diagonals of 'lower' and 'upper' are not used: L has ones on its diagonal, "
                              "U′ has s (np.tril(·, -1), np.triu(·, 1))"),
    (dict(sign=False), "the fixed signs are missing: s = sign ⊙ exp(log_s)"),
)
_GRAD_MISTAKES = (
    (dict(mask_grads=False), "the unused entries got a gradient: only the strict triangles are parameters, "
                             "the other entries of grads['lower'] / grads['upper'] stay 0"),
    (dict(log_det_term=False), "the log-det term is missing: log_det = ±Σ log_s, so ∂L/∂log_s has ±Σ_n ∂L/∂log_det"),
    (dict(s_chain=False), "∂s/∂log_s = s is missing: the diagonal of U′ is s = sign ⊙ exp(log_s)"),
)


def _diagnoses(direction: str, outputs, mistakes) -> list[Diagnosis]:
    return [Diagnosis(output, lambda inputs, o=output, kw=kwargs: _lu(inputs, direction, **kw)[o], hint)
            for kwargs, hint in mistakes for output in outputs]


# ---- triangular solves --------------------------------------------------------------------------

def _solve_inputs(kind: str, dim: int = 6, n: int = 25):
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        matrix = rng.standard_normal((dim, dim))
        if kind == "lower":
            matrix = np.tril(matrix, -1) + np.eye(dim)
        else:
            matrix = np.triu(matrix, 1) + np.diag(rng.choice([-1.0, 1.0], dim) * rng.uniform(1.0, 2.0, dim))
        return {"M": matrix, "B": rng.standard_normal((n, dim))}
    return make


def _ref_solve(kind: str):
    def reference(inputs: Arrays) -> dict[str, np.ndarray]:
        lower = kind == "lower"
        y = scipy.linalg.solve_triangular(inputs["M"], inputs["B"].T, lower=lower, unit_diagonal=lower).T
        return {"Y": y}
    return reference


def _solve_diagnoses() -> list[Diagnosis]:
    return [
        Diagnosis("Y", lambda inputs: inputs["B"] @ inputs["M"].T, "this is M b (a product), not M⁻¹ b (a solve)"),
        Diagnosis("Y", lambda inputs: np.linalg.solve(inputs["M"].T, inputs["B"].T).T,
                  "this solves Mᵀ y = b: row b of B is one right-hand side, Y[n] = M⁻¹ B[n]"),
    ]


# ---- fit_gaussian -----------------------------------------------------------------------------------

_FIT_DRIVER = DRIVER_PRELUDE + '''
def drive(namespace, inputs):
    layer = _student_function(namespace, "fit_gaussian")(inputs["x_train"].copy(), int(inputs["seed"]))
    _dicts(layer)
    out = {key: layer.params[key] for key in ("lower", "upper", "log_s")}
    out["perm"], out["sign"] = layer.perm, layer.sign
    return out
'''


def _fit_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    factor = np.tril(rng.standard_normal((FIT_DIM, FIT_DIM)), -1) + np.diag(rng.uniform(0.3, 1.5, FIT_DIM))
    q, _ = np.linalg.qr(rng.standard_normal((FIT_DIM, FIT_DIM)))
    factor = q @ factor  # x = A ε: a Gaussian with covariance A Aᵀ, axes not aligned
    return {"x_train": rng.standard_normal((TRAIN_POINTS, FIT_DIM)) @ factor.T,
            "seed": np.array(rng.integers(2**31)), "_factor": factor}


def _fit_shapes(inputs: Arrays) -> dict[str, np.ndarray]:
    return {"lower": np.zeros((FIT_DIM, FIT_DIM)), "upper": np.zeros((FIT_DIM, FIT_DIM)),
            "log_s": np.zeros(FIT_DIM), "perm": np.zeros(FIT_DIM), "sign": np.zeros(FIT_DIM)}


def fitted_excess_nll(inputs: Arrays, received: Arrays) -> float:
    """KL(π‖p) = E_π[−log p(x)] − H(π) of the returned layer, exactly (no sampling noise).

    The layer (the library's, at the returned parameters) models N(0, (WᵀW)⁻¹); the
    data π = N(0, Σ), Σ = A Aᵀ.  With M = WᵀW:  KL = ½ [tr(M Σ) − D − log det(M Σ)].
    """
    perm = received["perm"]
    if not np.array_equal(np.sort(perm), np.arange(FIT_DIM)):
        raise ValueError(f"perm = {perm.tolist()} is not a permutation of 0 … {FIT_DIM - 1}")
    if not np.all(np.abs(received["sign"]) == 1.0):
        raise ValueError(f"sign = {received['sign'].tolist()} must hold ±1 only")
    layer = _library({"perm": perm, "sign": received["sign"],
                      **{f"p.{key}": received[key] for key in ("lower", "upper", "log_s")}})
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weight = layer.weight()
        product = weight.T @ weight @ inputs["_factor"] @ inputs["_factor"].T
        return 0.5 * (np.trace(product) - FIT_DIM - np.linalg.slogdet(product)[1])


def _score_fit(inputs: Arrays, expected: Arrays, received: Arrays) -> Outcome:
    if not all(np.all(np.isfinite(value)) for value in received.values()):
        return Outcome(0.0, "the fitted parameters contain NaN or inf: training diverged")
    try:
        excess = fitted_excess_nll(inputs, received)
    except (ValueError, ArithmeticError) as exc:
        return Outcome(0.0, f"the fitted layer could not be evaluated: {exc}")
    return threshold_score(excess, NLL_FULL, NLL_PARTIAL,
                           "expected NLL − entropy of the data's Gaussian, i.e. KL(π‖p) (computed "
                           "exactly by the grader)", " nats")


# ---- the cases ---------------------------------------------------------------------------------------

_HINT_WEIGHT = "W = P L (U + diag s): L = I + np.tril(lower, -1), U′ = np.triu(upper, 1) + diag(sign ⊙ exp(log_s))"
_HINT_VALUES = ("z = W x row by row (z = x @ W.T), log|det ∂z/∂x| = Σ_i log_s_i for every sample; "
                "inverse: x = U′⁻¹ L⁻¹ Pᵀ z, log-det −Σ_i log_s_i")
_HINT_BACKWARD = ("y = M v (rows): ∂L/∂M = Σ_n ∂L/∂y vᵀ, ∂L/∂v = Mᵀ ∂L/∂y; y = M⁻¹ v: ∂L/∂v = M⁻ᵀ ∂L/∂y, "
                  "∂L/∂M = −Σ_n ∂L/∂v yᵀ; keep only the strict triangles; ∂L/∂log_s = s ⊙ diag(∂L/∂U′) ± Σ_n "
                  "∂L/∂log_det. Check with nf.gradcheck.check_flow(layer, x)")
_GRAD_LABELS = {"grad.lower": "∂L/∂lower (grads['lower'])", "grad.upper": "∂L/∂upper (grads['upper'])",
                "grad.log_s": "∂L/∂log_s (grads['log_s'])"}


def _case(name: str, weight: float, mode: str, labels: dict[str, str], hint: str, mistakes=(),
          hidden: bool = False, dim: int = 4, reference=None) -> Case:
    want = tuple(labels)
    grads = any(key.startswith("grad") for key in want)
    direction = "weight" if mode == "weight" else mode
    return Case(name, weight, _lu_inputs(dim=dim, grads=grads), reference or _ref(direction, *want),
                layer_driver("LULinear", "cls(int(inputs['in'].shape[1]))", mode, want, _CONFIGURE),
                compare_named(labels, diagnoses=_diagnoses(direction, want, mistakes)),
                hidden=hidden, timeout=_TIMEOUT, hint=hint)


def _solve_case(name: str, weight: float, kind: str, function: str, hint: str, hidden: bool = False,
                dim: int = 6) -> Case:
    return Case(name, weight, _solve_inputs(kind, dim), _ref_solve(kind),
                function_driver(function, ("M", "B"), ("Y",)),
                compare_named({"Y": f"Y = {function}(M, B)"}, diagnoses=_solve_diagnoses(), batch_key="B"),
                hidden=hidden, timeout=_TIMEOUT, hint=hint)


ASSIGNMENT = Assignment(
    name="lu_linear",
    title="the LU linear flow: W, log-det, inverse by triangular solves, backward, MLE",
    solution="lectures/homework/solutions/lu_linear.py",
    student="lectures/homework/lu_linear.py",
    budget=30.0,
    cases=(
        _case("weight: W = P L (U + diag s)", 3, "weight", {"value": "W = weight()"}, _HINT_WEIGHT,
              _WEIGHT_MISTAKES),
        _solve_case("solve_lower_unit: forward substitution", 2, "lower", "solve_lower_unit",
                    "y_i = b_i − Σ_{j<i} L_ij y_j for i = 1 … D (the diagonal of L is 1), all rows of B at once"),
        _solve_case("solve_upper: back substitution", 2, "upper", "solve_upper",
                    "y_i = (b_i − Σ_{j>i} U_ij y_j) / U_ii for i = D … 1, all rows of B at once"),
        _case("forward: z = W x", 2, "forward", {"out": "z = f(x)"}, _HINT_VALUES, _WEIGHT_MISTAKES),
        _case("forward: log|det ∂z/∂x|", 2, "forward", {"log_det": "log|det ∂z/∂x|"}, _HINT_VALUES),
        _case("inverse: x = W⁻¹ z", 3, "inverse", {"out": "x = g(z)"}, _HINT_VALUES, _WEIGHT_MISTAKES),
        _case("inverse: log|det ∂x/∂z|", 1, "inverse", {"log_det": "log|det ∂x/∂z|"}, _HINT_VALUES),
        _case("round trip: forward(inverse(z)) = z, log-dets opposite", 1, "round_trip", ROUND_TRIP_LABELS,
              "inverse must undo forward: x = U′⁻¹ L⁻¹ Pᵀ z", reference=_ref_round_trip),
        _case("forward backward: ∂L/∂x", 2, "forward", {"grad_in": "∂L/∂x (returned by backward)"}, _HINT_BACKWARD,
              _GRAD_MISTAKES),
        _case("forward backward: ∂L/∂lower, ∂L/∂upper, ∂L/∂log_s", 3, "forward", _GRAD_LABELS, _HINT_BACKWARD,
              _GRAD_MISTAKES),
        _case("inverse backward: ∂L/∂z", 2, "inverse", {"grad_in": "∂L/∂z (returned by backward)"}, _HINT_BACKWARD,
              _GRAD_MISTAKES),
        _case("inverse backward: ∂L/∂lower, ∂L/∂upper, ∂L/∂log_s", 3, "inverse", _GRAD_LABELS, _HINT_BACKWARD,
              _GRAD_MISTAKES),
        _solve_case("solve_upper: 40-D", 1, "upper", "solve_upper",
                    "y_i = (b_i − Σ_{j>i} U_ij y_j) / U_ii for i = D … 1", hidden=True, dim=40),
        _case("forward and backward: 7-D, every output", 2, "forward",
              {"out": "z = f(x)", "log_det": "log|det ∂z/∂x|", "grad_in": "∂L/∂x", **_GRAD_LABELS},
              _HINT_VALUES + "; " + _HINT_BACKWARD, _WEIGHT_MISTAKES + _GRAD_MISTAKES, hidden=True, dim=7),
        _case("inverse and backward: 7-D, every output", 2, "inverse",
              {"out": "x = g(z)", "log_det": "log|det ∂x/∂z|", "grad_in": "∂L/∂z", **_GRAD_LABELS},
              _HINT_VALUES + "; " + _HINT_BACKWARD, _WEIGHT_MISTAKES + _GRAD_MISTAKES, hidden=True, dim=7),
        Case("fit_gaussian: test NLL of one layer fitted to 3-D Gaussian data", 4, _fit_inputs, _fit_shapes,
             _FIT_DRIVER, _score_fit, timeout=_TRAIN_TIMEOUT,
             hint="minimise the mean NLL with Adam (lr ≈ 0.05, a few hundred full-batch steps): "
                  "∂NLL/∂z = z/N, ∂NLL/∂log_det = −1/N"),
    ),
)
