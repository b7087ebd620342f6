"""Sylvester flow (van den Berg, Hasenclever, Tomczak & Welling, 2018), written as x = g(z):

    x = g(z) = z + Q R h(R̃ Qᵀ z + b),   h = tanh,

the planar flow with M hidden units instead of one (slide: V σ(Wᵀz + b) with
V = Q R, Wᵀ = R̃ Qᵀ). Q ∈ R^{D×M} has orthonormal columns, R and R̃ are M×M
upper-triangular, so by the matrix determinant lemma

    det(I_D + Q R H R̃ Qᵀ) = det(I_M + H R̃ R),   H = diag h′(R̃ Qᵀ z + b),

and I_M + H R̃ R is upper-triangular: the determinant is the product of its diagonal.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from nflows_np.base import Flow, RngLike, as_generator, check_int
from nflows_np.flows.residual import solve_tanh_root, tanh_gate
from nflows_np.linalg import householder_product, householder_product_vjp, polar, polar_vjp
from nflows_np.numerics import logcosh
from nflows_np.validation import check_bool

VARIANTS = ("orthogonal", "householder", "triangular")


@dataclass
class _Matrices:
    """The matrices of one pass, built from the parameters."""

    Q: np.ndarray        # (D, M), orthonormal columns
    R: np.ndarray        # (M, M) upper-triangular, R_ii = tanh(r_ii)
    Rt: np.ndarray       # (M, M) upper-triangular, R̃_ii = tanh(r̃_ii)
    A: np.ndarray        # Q R (D, M)
    B: np.ndarray        # R̃ Qᵀ (M, D)
    C: np.ndarray        # R̃ R = B A (M, M) upper-triangular
    e: np.ndarray        # 1 + R_ii R̃_ii (M,), > 0
    q_raw: np.ndarray | None


class OrthonormalFactor(abc.ABC):
    """How a Sylvester layer builds Q ∈ R^{D×M} with orthonormal columns from its raw parameter "q"."""

    variant: str

    def __init__(self, dim: int, m: int):
        self.dim, self.m = dim, m

    def initial_q(self, rng: np.random.Generator) -> np.ndarray | None:
        """The raw parameter "q" at initialisation, or None when Q is fixed."""
        return None

    @abc.abstractmethod
    def matrix(self, q: np.ndarray | None) -> np.ndarray:
        """Q from the raw parameter."""

    def describe(self) -> str:
        """The constructor arguments that distinguish this factor, for ``repr``."""
        return ""


class LearnedFactor(OrthonormalFactor):
    """A factor built from a trainable raw parameter "q", which therefore has a VJP."""

    @abc.abstractmethod
    def initial_q(self, rng: np.random.Generator) -> np.ndarray:
        """The raw parameter "q" at initialisation."""

    @abc.abstractmethod
    def matrix_vjp(self, q: np.ndarray, grad_Q: np.ndarray) -> np.ndarray:
        """∂L/∂q from ∂L/∂Q."""


class PolarFactor(LearnedFactor):
    """"orthogonal": Q = q (qᵀq)^{−1/2}, the orthonormal polar factor of a free D×M matrix q."""

    variant = "orthogonal"

    def initial_q(self, rng):
        return rng.standard_normal((self.dim, self.m))

    def matrix(self, q):
        return polar(q)

    def matrix_vjp(self, q, grad_Q):
        return polar_vjp(q, grad_Q)

    def describe(self):
        return f", m={self.m}"


class HouseholderFactor(LearnedFactor):
    """"householder": Q = H_1 ⋯ H_K, H_k = I − 2 v_k v_kᵀ/‖v_k‖², v_k the K rows of q (M = D)."""

    variant = "householder"

    def __init__(self, dim: int, m: int, num_reflections: int):
        super().__init__(dim, m)
        self.num_reflections = num_reflections

    def initial_q(self, rng):
        return rng.standard_normal((self.num_reflections, self.dim))

    def matrix(self, q):
        return householder_product(q)

    def matrix_vjp(self, q, grad_Q):
        return householder_product_vjp(q, grad_Q)

    def describe(self):
        return f", num_householder={self.num_reflections}"


class PermutationFactor(OrthonormalFactor):
    """"triangular": Q = I, or the reversal permutation (alternate it between layers); no parameter."""

    variant = "triangular"

    def __init__(self, dim: int, m: int, reverse: bool):
        super().__init__(dim, m)
        self.reverse = reverse

    def matrix(self, q):
        identity = np.eye(self.dim)
        return identity[:, ::-1] if self.reverse else identity

    def describe(self):
        return f", reverse={self.reverse}"


class Sylvester(Flow):
    """Sylvester flow  x = g(z) = z + Q R tanh(R̃ Qᵀ z + b).

    Constraint: R_ii = tanh(r_ii), R̃_ii = tanh(r̃_ii) (the paper's choice), so
    R_ii R̃_ii ∈ (−1, 1) and every factor 1 + h′ R_ii R̃_ii > 0: g is invertible.
    Entries of the raw "r", "r_tilde" below the diagonal are unused (their gradient is 0).

    inverse (z → x), closed form, with a = R̃ Qᵀ z + b:
        x = z + Q R tanh(a),
        log|det ∂g/∂z| = Σ_i log(1 + h′(a_i) R̃_ii R_ii), computed as
        Σ_i log(tanh² a_i + h′(a_i) e_i), e_i = 1 + R_ii R̃_ii = cosh(r_ii + r̃_ii)/(cosh r_ii cosh r̃_ii)
        (no cancellation as R_ii R̃_ii → −1).
    forward (x → z), exact to rounding through the M-dimensional system in a = R̃ Qᵀ z + b:
    since z = x − Q R tanh(a) and R̃ QᵀQ R = R̃ R,
        a + R̃ R tanh(a) = y := R̃ Qᵀ x + b,
    an upper-triangular system whose diagonal units a_i + R̃_ii R_ii tanh(a_i) are strictly
    increasing (R̃_ii R_ii > −1). Back-substitution from i = M down to 1 solves one scalar
    equation a_i + (e_i − 1) tanh(a_i) = y_i − Σ_{j>i} (R̃R)_ij tanh(a_j) per unit, by the
    planar flow's safeguarded Newton (Newton with the analytic derivative ψ_i inside a
    bisection bracket; each |residual| ≤ 16ε(1 + |a_i| + |rhs_i|), checked, else
    :class:`NotConvergedError` naming the layer); then z = x − Q R tanh(a). This is Newton's
    method ordered by the triangular Jacobian of the a-system: each scalar equation is
    strictly increasing, so every step converges (damped Newton on the whole D-dimensional
    map can stall at large parameters).
    log|det ∂f/∂x| = −(log-det above at a = R̃ Qᵀ z + b).
    Gradients analytic both ways; through the solve by implicit differentiation with the
    Jacobian J = I + Q R H R̃ Qᵀ: ∂L/∂x = λ = J⁻ᵀ ∂L/∂z, ∂L/∂θ = −λᵀ ∂g/∂θ, and
    J⁻ᵀ v = v − Bᵀ H T⁻ᵀ Aᵀ v (Woodbury, A = QR, B = R̃Qᵀ, T = I + H R̃R upper-triangular
    with diagonal ψ): no D×D solve.

    Variants (Q), each a small factor object (:class:`PolarFactor`,
    :class:`HouseholderFactor`, :class:`PermutationFactor`) with its matrix and its VJP:
        "orthogonal":  Q = polar factor of a free D×M matrix "q", M ≤ D (the limit of the
                       paper's iterative orthogonalisation, computed by SVD; its gradient
                       is derived in :func:`nflows_np.linalg.polar_vjp`).
        "householder": Q = H_1 ⋯ H_K, K = ``num_householder`` reflections (rows of "q", K×D); M = D.
        "triangular":  Q = I, or the reversal permutation with ``reverse=True``
                       (alternate it between layers); M = D, no "q".

    Cost: inverse O(N·D·M); forward O(N·(D·M + M² + k·M)), k ≈ 3–6 scalar iterations per unit;
    building Q: O(D·M²) (orthogonal), O(K·D²) (householder).

    Parameters
    ----------
    dim : int
        D.
    m : int, optional
        M, the number of hidden units; default D. Must be D except for "orthogonal".
    variant : {"orthogonal", "householder", "triangular"}
    rng : None, int or numpy.random.Generator
        Initialisation: entries of r, r_tilde ~ U(−1/√M, 1/√M) on and above the diagonal, b = 0,
        q ~ N(0, 1).
    num_householder : int, optional
        K, for "householder" only; default D.
    reverse : bool
        For "triangular" only: Q is the reversal permutation.

    Attributes
    ----------
    params : "r" (M, M), "r_tilde" (M, M), "b" (M,), and "q" ((D, M) orthogonal, (K, D) householder).
    last_iterations : np.ndarray
        Scalar root-finder iterations per sample of the last ``forward``, summed over the M units.
    """

    def __init__(self, dim: int, m: int | None = None, variant: str = "householder", rng: RngLike = None,
                 num_householder: int | None = None, reverse: bool = False):
        super().__init__(dim)
        if variant not in VARIANTS:
            raise ValueError(f"Sylvester: variant must be one of {VARIANTS}, got {variant!r}")
        m = self.dim if m is None else m
        if check_int(m, f"Sylvester: m (in 1..{self.dim})") > self.dim:
            raise ValueError(f"Sylvester: m must be an integer in 1..{self.dim}, got {m!r}")
        if variant != "orthogonal" and m != self.dim:
            raise ValueError(f"Sylvester: variant {variant!r} needs m = dim = {self.dim}, got m = {m}")
        if num_householder is not None and variant != "householder":
            raise ValueError(f"Sylvester: num_householder is for the 'householder' variant, not {variant!r}")
        num_householder = self.dim if num_householder is None else num_householder
        num_householder = check_int(num_householder, "Sylvester: num_householder")
        check_bool(reverse, "Sylvester: reverse")
        if reverse and variant != "triangular":
            raise ValueError(f"Sylvester: reverse=True is for the 'triangular' variant, not {variant!r}")
        self.variant, self.m, self.reverse = variant, int(m), bool(reverse)
        self.num_householder = num_householder if variant == "householder" else None
        self.factor = {"orthogonal": lambda: PolarFactor(self.dim, self.m),
                       "householder": lambda: HouseholderFactor(self.dim, self.m, num_householder),
                       "triangular": lambda: PermutationFactor(self.dim, self.m, self.reverse)}[variant]()
        rng = as_generator(rng)
        bound = 1.0 / np.sqrt(self.m)
        self.add_param("r", np.triu(rng.uniform(-bound, bound, (self.m, self.m))))
        self.add_param("r_tilde", np.triu(rng.uniform(-bound, bound, (self.m, self.m))))
        self.add_param("b", np.zeros(self.m))
        q = self.factor.initial_q(rng)
        if q is not None:
            self.add_param("q", q)
        self.last_iterations = np.zeros(0, dtype=np.int64)

    # -- the matrices and their VJP ------------------------------------------------
    def _orthonormal(self) -> tuple[np.ndarray, np.ndarray | None]:
        q_raw = self.params["q"].copy() if "q" in self.params else None
        try:
            return self.factor.matrix(q_raw), q_raw
        except ValueError as err:
            raise ValueError(f"Sylvester ({self.variant}): parameter 'q' defines no orthonormal Q: {err}") from None

    def _matrices(self) -> _Matrices:
        Q, q_raw = self._orthonormal()
        rho, rho_t = np.diag(self.params["r"]), np.diag(self.params["r_tilde"])
        R = np.triu(self.params["r"], 1) + np.diag(np.tanh(rho))
        Rt = np.triu(self.params["r_tilde"], 1) + np.diag(np.tanh(rho_t))
        # e = 1 + tanh ρ tanh ρ̃ as a ratio of cosh's: positive and accurate as the product → −1.
        e = np.exp(logcosh(rho + rho_t) - logcosh(rho) - logcosh(rho_t))
        return _Matrices(Q, R, Rt, Q @ R, Rt @ Q.T, Rt @ R, e, q_raw)

    def matrices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(Q, R, R̃) as the map uses them: Q (D, M) with orthonormal columns, R and R̃ (M, M) upper-triangular."""
        mats = self._matrices()
        return mats.Q, mats.R, mats.Rt

    def _matrices_vjp(self, mats: _Matrices, grad_A: np.ndarray, grad_B: np.ndarray, grad_b: np.ndarray,
                      grad_e: np.ndarray) -> None:
        """Add ∂L/∂θ from ∂L/∂A, ∂L/∂B, ∂L/∂b and ∂L/∂e."""
        # A = Q R, B = R̃ Qᵀ:  ∂L/∂R = Qᵀ ∂L/∂A,  ∂L/∂R̃ = ∂L/∂B Q,  ∂L/∂Q = ∂L/∂A Rᵀ + (∂L/∂B)ᵀ R̃
        grad_R, grad_Rt = mats.Q.T @ grad_A, grad_B @ mats.Q
        diagonal = np.diag_indices(self.m)
        tanh_r, tanh_rt = np.diag(mats.R), np.diag(mats.Rt)
        # R_ii = tanh ρ_i: ∂/∂ρ_i = 1 − tanh²ρ_i;  e_i = 1 + tanh ρ_i tanh ρ̃_i: ∂e_i/∂ρ_i = (1 − tanh²ρ_i) tanh ρ̃_i
        self.grads["r"] += np.triu(grad_R, 1)
        self.grads["r"][diagonal] += (np.diag(grad_R) + grad_e * tanh_rt) * (1.0 - tanh_r ** 2)
        self.grads["r_tilde"] += np.triu(grad_Rt, 1)
        self.grads["r_tilde"][diagonal] += (np.diag(grad_Rt) + grad_e * tanh_r) * (1.0 - tanh_rt ** 2)
        self.grads["b"] += grad_b
        if mats.q_raw is not None:
            grad_Q = grad_A @ mats.R.T + grad_B.T @ mats.Rt
            self.grads["q"] += self.factor.matrix_vjp(mats.q_raw, grad_Q)

    def _units(self, mats: _Matrices, z: np.ndarray) -> tuple[np.ndarray, ...]:
        """a = R̃ Qᵀ z + b and (t, h′, ψ, ∂ψ/∂a) of tanh_gate, rows of the batch."""
        return tanh_gate(z @ mats.B.T + self.params["b"], mats.e)

    # -- inverse: z → x, the closed form --------------------------------------------
    def _inverse(self, z):
        mats = self._matrices()
        t, hp, psi, dpsi = self._units(mats, z)
        x = z + t @ mats.A.T
        return x, np.log(psi).sum(axis=1), (mats, z, t, hp, psi, dpsi)

    def _inverse_vjp(self, cache, grad_x, grad_log_det):
        mats, z, t, hp, psi, dpsi = cache
        # x = z + A t(a), log_det = Σ_i log ψ_i(a_i, e_i), a = B z + b:
        # ∂L/∂a = (Aᵀg) ∘ h′ + g_ld ∂ψ/∂a / ψ;  ∂L/∂A = Σ_n g tᵀ;  ∂L/∂B = Σ_n (∂L/∂a) zᵀ;  ∂L/∂e = Σ_n g_ld h′/ψ
        grad_a = (grad_x @ mats.A) * hp + grad_log_det[:, None] * dpsi / psi
        self._matrices_vjp(mats, grad_x.T @ t, grad_a.T @ z, grad_a.sum(axis=0),
                           (grad_log_det[:, None] * hp / psi).sum(axis=0))
        return grad_x + grad_a @ mats.B

    # -- the triangular solve and its adjoint --------------------------------------------
    def _solve_T_transpose(self, mats: _Matrices, hp: np.ndarray, psi: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """T⁻ᵀ rhs per row, T = I + H R̃R (upper-triangular, diagonal ψ): Tᵀ = I + (R̃R)ᵀ H is
        lower-triangular, solved by forward substitution vectorised over the batch, O(N·M²)."""
        out = np.empty_like(rhs)
        for i in range(self.m):
            out[:, i] = (rhs[:, i] - (out[:, :i] * hp[:, :i]) @ mats.C[:i, i]) / psi[:, i]
        return out

    def _solve(self, mats: _Matrices, x: np.ndarray) -> np.ndarray:
        """z with g(z) = x: back-substitution through the triangular system in a (class docstring)."""
        y = x @ mats.B.T + self.params["b"]
        a = np.empty_like(y)
        self.last_iterations = np.zeros(len(x), dtype=np.int64)
        for i in range(self.m - 1, -1, -1):
            # a_i + (e_i − 1) tanh a_i = y_i − Σ_{j>i} (R̃R)_ij tanh a_j, with a_j (j > i) already known
            rhs = y[:, i] - np.tanh(a[:, i + 1:]) @ mats.C[i, i + 1:]
            a[:, i], iterations = solve_tanh_root(rhs, mats.e[i], f"{self.name} ({self.variant})")
            self.last_iterations += iterations
        return x - np.tanh(a) @ mats.A.T

    # -- forward: x → z, by M scalar root-finds ---------------------------------------
    def _forward(self, x):
        mats = self._matrices()
        z = self._solve(mats, x)
        t, hp, psi, dpsi = self._units(mats, z)
        return z, -np.log(psi).sum(axis=1), (mats, z, t, hp, psi, dpsi)

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        mats, z, t, hp, psi, dpsi = cache
        # Explicit, z held fixed: log_det = −Σ_i log ψ_i(a_i, e_i), a = B z + b.
        grad_a = -grad_log_det[:, None] * dpsi / psi
        # Implicit: z solves G(z, x, θ) = z + A t(Bz + b) − x = 0, ∂G/∂z = J, ∂G/∂x = −I, so
        # ∂L/∂x = λ := J⁻ᵀ (∂L/∂z + Bᵀ ∂L/∂a) and ∂L/∂θ += −λᵀ ∂G/∂θ, with
        # J⁻ᵀ v = v − Bᵀ H T⁻ᵀ Aᵀ v (Woodbury, transposed).
        total = grad_z + grad_a @ mats.B
        lam = total - (hp * self._solve_T_transpose(mats, hp, psi, total @ mats.A)) @ mats.B
        # λᵀ ∂G/∂A = λ tᵀ;  λᵀ ∂G/∂a = (Aᵀλ) ∘ h′, which reaches B and b through a = B z + b.
        grad_a = grad_a - (lam @ mats.A) * hp
        self._matrices_vjp(mats, -lam.T @ t, grad_a.T @ z, grad_a.sum(axis=0),
                           -(grad_log_det[:, None] * hp / psi).sum(axis=0))
        return lam

    def __repr__(self) -> str:
        return f"{self.name}(dim={self.dim}, variant={self.variant!r}{self.factor.describe()})"
