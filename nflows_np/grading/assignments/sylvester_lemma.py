"""Assignment ``sylvester_lemma``: the matrix determinant lemma and the Sylvester flow (numpy only).

The student writes three functions (template ``lectures/homework/sylvester_lemma.py``):

* ``det_lemma(V, W)`` -- sign and log|det(I_m + V Wᵀ)| through I_d + Wᵀ V;
* ``residual_log_det(z, V, W, b)`` -- log|det ∂g/∂z| of g(z) = z + V tanh(Wᵀz + b);
* ``sylvester_inverse(z, Q, R, R_tilde, b)`` -- x = z + Q R tanh(R̃ Qᵀ z + b) and
  Σ_i log|1 + h′(a_i) R̃_ii R_ii|.

References: ``numpy.linalg.slogdet`` of the full D×D (m×m) matrices, and
``nf.linalg.log_det_lemma`` where m is too large for that.  One case has
m = 20 000: the m×m matrix needs 3.2 GB, above the child's 2 GiB address
space, so only a submission that uses the lemma passes it.
"""
from __future__ import annotations

import numpy as np

import nflows_np as nf
from nflows_np.grading.assignments._flows import Diagnosis, compare_named
from nflows_np.grading.cases import Arrays, Assignment, Case, function_driver

_TIMEOUT = 10.0


# ---- det_lemma ----------------------------------------------------------------------------

def _lemma_inputs(m: int, d: int, negative: bool = False):
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        W = rng.standard_normal((m, d))
        if negative:  # I_d + WᵀV = C with det C < 0: the sign matters (needs m ≥ d)
            C = rng.standard_normal((d, d)) + 2.0 * np.eye(d)
            if np.linalg.det(C) > 0:
                C[0] *= -1.0
            V = W @ np.linalg.solve(W.T @ W, C - np.eye(d))
        else:
            V = rng.standard_normal((m, d)) / np.sqrt(m)
        return {"V": V, "W": W}
    return make


def _ref_lemma(inputs: Arrays) -> dict[str, np.ndarray]:
    V, W = inputs["V"], inputs["W"]
    if V.shape[0] <= 2000:
        sign, logabsdet = np.linalg.slogdet(np.eye(V.shape[0]) + V @ W.T)
    else:
        sign, logabsdet = nf.linalg.log_det_lemma(V, W)
    return {"sign": np.array(sign), "logabsdet": np.array(logabsdet)}


def _lemma_diagnoses() -> list[Diagnosis]:
    def without_identity(inputs: Arrays) -> np.ndarray:
        return np.array(np.linalg.slogdet(inputs["W"].T @ inputs["V"])[1])
    return [Diagnosis("logabsdet", without_identity, "the identity is missing: det(I_d + Wᵀ V)")]


# ---- residual_log_det -----------------------------------------------------------------------

def _residual_inputs(dim: int, m: int, n: int = 30):
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"z": 1.5 * rng.standard_normal((n, dim)), "V": rng.standard_normal((dim, m)),
                "W": rng.standard_normal((dim, m)) / np.sqrt(dim), "b": rng.uniform(-1.0, 1.0, m)}
    return make


def _full_log_det(z: np.ndarray, V: np.ndarray, W: np.ndarray, b: np.ndarray, slope=None) -> np.ndarray:
    """slogdet of the D×D Jacobian I + V diag(h′) Wᵀ, sample by sample (the grader's reference)."""
    t = np.tanh(z @ W + b)
    h_prime = 1.0 - t * t if slope is None else slope(t)
    jacobians = np.eye(z.shape[1]) + np.einsum("dm,nm,em->nde", V, h_prime, W)
    return np.linalg.slogdet(jacobians)[1]


def _ref_residual(inputs: Arrays) -> dict[str, np.ndarray]:
    return {"log_det": _full_log_det(inputs["z"], inputs["V"], inputs["W"], inputs["b"])}


def _diagonal_only(inputs: Arrays) -> np.ndarray:
    h_prime = 1.0 - np.tanh(inputs["z"] @ inputs["W"] + inputs["b"]) ** 2
    products = np.einsum("dm,dm->m", inputs["W"], inputs["V"])
    return np.sum(np.log(np.abs(1.0 + h_prime * products)), axis=1)


def _residual_diagnoses() -> list[Diagnosis]:
    return [
        Diagnosis("log_det", lambda inputs: _full_log_det(inputs["z"], inputs["V"], inputs["W"], inputs["b"],
                                                          slope=lambda t: t),
                  "h′ is the derivative of tanh: 1 − tanh²(a), not tanh(a)"),
        Diagnosis("log_det", _diagonal_only,
                  "this is Σ_i log|1 + h′_i w_iᵀ v_i|, the product of the diagonal of I + diag(h′) WᵀV: only the "
                  "determinant of a triangular matrix is the product of its diagonal; take the M×M determinant"),
    ]


# ---- sylvester_inverse --------------------------------------------------------------------------

def _sylvester_inputs(dim: int = 5, m: int = 3, n: int = 30):
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        Q, _ = np.linalg.qr(rng.standard_normal((dim, m)))
        R = np.triu(rng.standard_normal((m, m)))
        R_tilde = np.triu(rng.standard_normal((m, m)))
        # Some diagonal products below −1: |1 + h′ R̃_ii R_ii| needs its absolute value.
        R[0, 0], R_tilde[0, 0] = 1.5, -1.2
        return {"z": 1.5 * rng.standard_normal((n, dim)), "Q": Q, "R": R, "R_tilde": R_tilde,
                "b": rng.uniform(-1.0, 1.0, m)}
    return make


def _ref_sylvester(*names: str):
    def reference(inputs: Arrays) -> dict[str, np.ndarray]:
        z, Q, R, R_tilde, b = (inputs[key] for key in ("z", "Q", "R", "R_tilde", "b"))
        t = np.tanh(z @ Q @ R_tilde.T + b)
        result = {"x": z + t @ (Q @ R).T, "log_det": _full_log_det(z, Q @ R, Q @ R_tilde.T, b)}
        return {name: result[name] for name in names}
    return reference


def _sylvester_diagnoses() -> list[Diagnosis]:
    def with_diagonal(inputs: Arrays, absolute: bool = True, slope=lambda t: 1.0 - t * t) -> np.ndarray:
        t = np.tanh(inputs["z"] @ inputs["Q"] @ inputs["R_tilde"].T + inputs["b"])
        value = 1.0 + slope(t) * np.diag(inputs["R_tilde"]) * np.diag(inputs["R"])
        with np.errstate(invalid="ignore"):
            return np.sum(np.log(np.abs(value) if absolute else value), axis=1)

    return [
        Diagnosis("log_det", lambda inputs: with_diagonal(inputs, slope=lambda t: t),
                  "h′ is the derivative of tanh: 1 − tanh²(a), not tanh(a)"),
        Diagnosis("log_det", lambda inputs: with_diagonal(inputs, absolute=False),
                  "log|det|: 1 + h′ R̃_ii R_ii can be negative, take its absolute value"),
        Diagnosis("x", lambda inputs: inputs["z"] + np.tanh(inputs["z"] @ inputs["Q"] @ inputs["R_tilde"].T
                                                            + inputs["b"]) @ inputs["Q"].T,
                  "R is missing: x = z + Q R tanh(a)"),
    ]


# ---- the cases ---------------------------------------------------------------------------------

_HINT_LEMMA = ("det(I_m + V Wᵀ) = det(I_d + Wᵀ V): take np.linalg.slogdet of the d×d matrix "
               "np.eye(d) + W.T @ V")
_HINT_RESIDUAL = ("the Jacobian is I_D + V diag(h′) Wᵀ; by the lemma its determinant is det(I_M + diag(h′) Wᵀ V), "
                  "one M×M matrix per sample (np.linalg.slogdet works on stacks (N, M, M))")
_HINT_SYLVESTER = ("x_n = z_n + Q R tanh(a_n), a_n = R̃ Qᵀ z_n + b (rows: z @ Q @ R̃ᵀ + b); I_M + diag(h′) R̃ R is "
                   "upper triangular: log|det| = Σ_i log|1 + h′(a_i) R̃_ii R_ii|")


def _lemma_case(name: str, weight: float, m: int, d: int, hidden: bool = False, negative: bool = False) -> Case:
    return Case(name, weight, _lemma_inputs(m, d, negative), _ref_lemma,
                function_driver("det_lemma", ("V", "W"), ("sign", "logabsdet")),
                compare_named({"sign": "sign", "logabsdet": "log|det(I_m + V Wᵀ)|"}, diagnoses=_lemma_diagnoses(),
                              batch_key=None),
                hidden=hidden, timeout=_TIMEOUT, hint=_HINT_LEMMA)


ASSIGNMENT = Assignment(
    name="sylvester_lemma",
    title="the matrix determinant lemma and the Sylvester flow",
    solution="lectures/homework/solutions/sylvester_lemma.py",
    student="lectures/homework/sylvester_lemma.py",
    budget=30.0,
    cases=(
        _lemma_case("det_lemma: m = 6, d = 2", 2, 6, 2),
        _lemma_case("det_lemma: m = 4, d = 3, det < 0", 1, 4, 3, negative=True),
        _lemma_case("det_lemma: m = 3, d = 5", 1, 3, 5, hidden=True),
        _lemma_case("det_lemma: m = 20 000, d = 3 (the m×m matrix would need 3.2 GB)", 2, 20_000, 3,
                    negative=True),
        Case("residual_log_det: D = 4, M = 2", 3, _residual_inputs(4, 2), _ref_residual,
             function_driver("residual_log_det", ("z", "V", "W", "b"), ("log_det",)),
             compare_named({"log_det": "log|det ∂g/∂z|"}, diagnoses=_residual_diagnoses(), batch_key="z"),
             timeout=_TIMEOUT, hint=_HINT_RESIDUAL),
        Case("residual_log_det: D = 3, M = 5 (M > D)", 1, _residual_inputs(3, 5), _ref_residual,
             function_driver("residual_log_det", ("z", "V", "W", "b"), ("log_det",)),
             compare_named({"log_det": "log|det ∂g/∂z|"}, diagnoses=_residual_diagnoses(), batch_key="z"),
             hidden=True, timeout=_TIMEOUT, hint=_HINT_RESIDUAL),
        Case("sylvester_inverse: x = g(z)", 2, _sylvester_inputs(), _ref_sylvester("x"),
             function_driver("sylvester_inverse", ("z", "Q", "R", "R_tilde", "b"), ("x", "log_det")),
             compare_named({"x": "x = g(z)"}, diagnoses=_sylvester_diagnoses(), batch_key="z"),
             timeout=_TIMEOUT, hint=_HINT_SYLVESTER),
        Case("sylvester_inverse: log|det ∂g/∂z|", 3, _sylvester_inputs(), _ref_sylvester("log_det"),
             function_driver("sylvester_inverse", ("z", "Q", "R", "R_tilde", "b"), ("x", "log_det")),
             compare_named({"log_det": "log|det ∂g/∂z|"}, diagnoses=_sylvester_diagnoses(), batch_key="z"),
             timeout=_TIMEOUT, hint=_HINT_SYLVESTER),
        Case("sylvester_inverse: D = 8, M = 8", 1, _sylvester_inputs(8, 8), _ref_sylvester("x", "log_det"),
             function_driver("sylvester_inverse", ("z", "Q", "R", "R_tilde", "b"), ("x", "log_det")),
             compare_named({"x": "x = g(z)", "log_det": "log|det ∂g/∂z|"}, diagnoses=_sylvester_diagnoses(),
                           batch_key="z"),
             hidden=True, timeout=_TIMEOUT, hint=_HINT_SYLVESTER),
    ),
)
