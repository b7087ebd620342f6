"""Linear flows  z = f(x) = W x,  W ∈ R^{D×D}  (slides: "Linear flows").

The Jacobian is W itself, so log|det ∂f/∂x| = log|det W| is the same for every
sample and is computed once per call, never once per sample. Inverting a
general W costs O(D³); a triangular one O(D²), a diagonal one O(D). The slides'
way out is a matrix decomposition with cheap factors:

- :class:`Linear`   — dense W, LU-factored once per call: O(D³ + N·D²).
- :class:`LULinear` — W = P L (U + diag s)  (Glow; Kingma & Dhariwal 2018).
- :class:`QRLinear` — W = Q (R + diag s), Q a product of Householder
  reflections (Hoogeboom, van den Berg & Welling 2019).

Batches are rows: z[n] = W x[n], i.e. ``z = x @ W.T``. Every matrix gradient
below uses ∂L/∂W = Σ_n (∂L/∂z[n]) x[n]ᵀ = grad_zᵀ x for z = W x, and, for
x = W⁻¹ z (so dx = −W⁻¹ dW x), ∂L/∂z = W⁻ᵀ ∂L/∂x and ∂L/∂W = −grad_zᵀ x.
"""
from __future__ import annotations

import abc
from typing import Any

import numpy as np

from nflows_np.base import Flow, RngLike, as_generator, check_array, check_int
from nflows_np.linalg import (
    householder_apply,
    householder_apply_vjp,
    householder_product,
    product_vjp,
    random_orthogonal,
    triangular_solve,
    triangular_solve_vjp,
)
from nflows_np.numerics import EPS


class Linear(Flow):
    """Dense linear flow  z = f(x) = W x  (no bias: compose with ActNorm or ElementwiseAffine for one).

    Inverse:   x = g(z) = W⁻¹ z.
    Log-det:   log|det ∂f/∂x| = log|det W|;   log|det ∂g/∂z| = −log|det W|.

    Each call LU-factors W once, O(D³) (log|det W| = Σ_i log|U_ii| of that
    factorisation, as ``slogdet`` does), then applies W or solves with its
    factors in O(N·D²); ``backward`` adds O(D³) for W⁻ᵀ. A W that is singular
    to working precision (LAPACK's reciprocal condition number estimate below
    machine epsilon) is refused with a ValueError when the layer is used.

    Starts at a random orthogonal W (condition number 1), not the identity.

    Parameters
    ----------
    dim : int
        D.
    rng : None, int or numpy.random.Generator
        For the initial W.

    Attributes
    ----------
    params : {"weight": (D, D)}
    """

    def __init__(self, dim: int, rng: RngLike = None):
        super().__init__(dim)
        self.add_param("weight", random_orthogonal(self.dim, rng))

    def weight(self) -> np.ndarray:
        """W, a copy (D, D)."""
        return self.params["weight"].copy()

    def _factor(self) -> tuple[tuple[np.ndarray, np.ndarray], float, np.ndarray]:
        """LU factors of W, log|det W| and a copy of W, after checking W is invertible. O(D³)."""
        weight = self.params["weight"].copy()
        if not np.all(np.isfinite(weight)):
            raise ValueError(f"{self.name}: weight has non-finite entries")
        from scipy.linalg import lapack

        lu, piv, info = lapack.dgetrf(weight)
        # rcond < eps means a solve with W has no correct digit: treat W as singular.
        rcond = 0.0 if info > 0 else lapack.dgecon(lu, np.abs(weight).sum(axis=0).max(), norm="1")[0]
        if not rcond >= EPS:
            raise ValueError(f"{self.name}: weight matrix is singular to working precision "
                             f"(reciprocal condition number {rcond:.2e} < machine epsilon {EPS:.1e})")
        return (lu, piv), float(np.sum(np.log(np.abs(np.diag(lu))))), weight

    def _inverse_transpose(self, factor: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """W⁻ᵀ from the LU factors of W (solve Wᵀ X = I): O(D³)."""
        from scipy.linalg import lu_solve

        return lu_solve(factor, np.eye(self.dim), trans=1)

    def _forward(self, x):
        factor, log_abs_det, weight = self._factor()
        return x @ weight.T, np.full(x.shape[0], log_abs_det), (x, factor, weight)

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        x, factor, weight = cache
        grad_weight, grad_x = product_vjp(weight, x, grad_z)
        # ∂log|det W|/∂W = W⁻ᵀ (Jacobi's formula)
        self.grads["weight"] += grad_weight + grad_log_det.sum() * self._inverse_transpose(factor)
        return grad_x

    def _inverse(self, z):
        factor, log_abs_det, _ = self._factor()
        from scipy.linalg import lu_solve

        x = lu_solve(factor, z.T).T
        return x, np.full(z.shape[0], -log_abs_det), (x, factor)

    def _inverse_vjp(self, cache, grad_x, grad_log_det):
        x, factor = cache
        # x = W⁻¹ z:  ∂L/∂z = W⁻ᵀ ∂L/∂x;  ∂L/∂W = −Σ_n ∂L/∂z[n] x[n]ᵀ;  ∂(−log|det W|)/∂W = −W⁻ᵀ
        from scipy.linalg import lu_solve

        grad_z = lu_solve(factor, grad_x.T, trans=1).T
        self.grads["weight"] -= grad_z.T @ x + grad_log_det.sum() * self._inverse_transpose(factor)
        return grad_z


class _TriangularLinear(Flow):
    """What LULinear and QRLinear share:  W = A U′,  U′ = U + diag(s),  s = sign ⊙ exp(log_s).

    U is strictly upper triangular, stored as the full D×D parameter "upper" of
    which only the strict upper triangle is used (the other entries are ignored
    and get exactly zero gradient); ``sign`` ∈ {±1}^D is fixed; "log_s" is
    trained. So det U′ = Π s_i ≠ 0 for every parameter value, and since
    |det A| = 1 for the left factor A (P L or Q),

        log|det ∂f/∂x| = log|det W| = Σ_i log_s_i,  O(D), the same for every sample.

    A subclass supplies A through ``_left`` (a ↦ A a), ``_left_solve``
    (z ↦ A⁻¹ z), their vector-Jacobian products, and ``_left_matrix``.
    """

    def _add_triangular_params(self, diagonal: np.ndarray, upper: np.ndarray) -> None:
        """sign = sign(diagonal) (fixed), "upper" = triu(upper, 1), "log_s" = log|diagonal|."""
        self.sign = np.sign(diagonal)
        self.add_param("upper", np.triu(upper, 1))
        self.add_param("log_s", np.log(np.abs(diagonal)))

    def _triangular(self) -> tuple[np.ndarray, np.ndarray]:
        """U′ = triu(U, 1) + diag(s) and s; refuses an s that over- or underflows float64."""
        with np.errstate(over="ignore", under="ignore"):  # checked just below, with a clear message
            s = self.sign * np.exp(self.params["log_s"])
        if not np.all(np.isfinite(s) & (s != 0.0)):
            raise ValueError(f"{self.name}: exp(log_s) is outside the float64 range (log_s = {self.params['log_s']}); "
                             "|log_s| must stay below about 708")
        return np.triu(self.params["upper"], 1) + np.diag(s), s

    def _add_triangular_grad(self, grad_triangular: np.ndarray, s: np.ndarray, grad_sum_log_s: float) -> None:
        # U′ = triu(U, 1) + diag(s):  ∂L/∂U = triu(∂L/∂U′, 1), exactly 0 on the unused entries;
        # s = sign ⊙ exp(log_s):  ∂L/∂log_s = s ⊙ diag(∂L/∂U′) + ∂L/∂(Σ log_s)
        self.grads["upper"] += np.triu(grad_triangular, 1)
        self.grads["log_s"] += s * np.diag(grad_triangular) + grad_sum_log_s

    def weight(self) -> np.ndarray:
        """W = A U′ as a dense (D, D) matrix, formed from the factors. O(D³)."""
        return self._left_matrix() @ self._triangular()[0]

    def weight_inverse(self) -> np.ndarray:
        """W⁻¹ = U′⁻¹ A⁻¹, by the same solves as ``inverse``. O(D³)."""
        return self._inverse(np.eye(self.dim))[0].T

    def _forward(self, x):
        triangular, s = self._triangular()
        a = x @ triangular.T
        z, left_cache = self._left(a)
        return z, np.full(x.shape[0], self.params["log_s"].sum()), (x, triangular, s, left_cache)

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        x, triangular, s, left_cache = cache
        grad_a = self._left_vjp(left_cache, grad_z)
        grad_triangular, grad_x = product_vjp(triangular, x, grad_a)  # a = U′ x
        self._add_triangular_grad(grad_triangular, s, grad_log_det.sum())
        return grad_x

    def _inverse(self, z):
        triangular, s = self._triangular()
        a, left_cache = self._left_solve(z)
        x = triangular_solve(triangular, a, lower=False)
        return x, np.full(z.shape[0], -self.params["log_s"].sum()), (x, triangular, s, left_cache)

    def _inverse_vjp(self, cache, grad_x, grad_log_det):
        x, triangular, s, left_cache = cache
        grad_triangular, grad_a = triangular_solve_vjp(triangular, x, grad_x, lower=False)  # x = U′⁻¹ a
        self._add_triangular_grad(grad_triangular, s, -grad_log_det.sum())  # log_det = −Σ log_s
        return self._left_solve_vjp(left_cache, grad_a)

    # -- the left factor A, supplied by a subclass ---------------------------------
    @abc.abstractmethod
    def _left(self, a: np.ndarray) -> tuple[np.ndarray, Any]:
        """z = A a (rows of a batch) and what ``_left_vjp`` needs."""

    @abc.abstractmethod
    def _left_vjp(self, cache: Any, grad_z: np.ndarray) -> np.ndarray:
        """∂L/∂a from ∂L/∂z for z = A a; adds A's parameter gradients."""

    @abc.abstractmethod
    def _left_solve(self, z: np.ndarray) -> tuple[np.ndarray, Any]:
        """a = A⁻¹ z and what ``_left_solve_vjp`` needs."""

    @abc.abstractmethod
    def _left_solve_vjp(self, cache: Any, grad_a: np.ndarray) -> np.ndarray:
        """∂L/∂z from ∂L/∂a for a = A⁻¹ z; adds A's parameter gradients."""

    @abc.abstractmethod
    def _left_matrix(self) -> np.ndarray:
        """A as a dense D × D matrix (for ``weight()``)."""


class LULinear(_TriangularLinear):
    """Glow's LU-parametrised linear flow  z = f(x) = W x,  W = P L (U + diag s).

    P is a permutation matrix, fixed at construction; L is unit lower
    triangular (strictly lower entries trained, "lower"); U is strictly upper
    triangular ("upper"); s = sign ⊙ exp(log_s) with ``sign`` fixed and "log_s"
    trained, so W is invertible for every parameter value. "lower" and "upper"
    are full D×D arrays of which only the strict triangle is used; the other
    entries get exactly zero gradient.

    Inverse:   x = g(z) = (U + diag s)⁻¹ L⁻¹ Pᵀ z, by two triangular solves.
    Log-det:   log|det ∂f/∂x| = Σ_i log_s_i  (det L = 1, |det P| = 1);
               log|det ∂g/∂z| = −Σ_i log_s_i.
    Cost: O(N·D²) both ways (two triangular products or solves; W is never
    formed for a pass), O(D) for the log-det.

    Initialisation, as in Glow: the LU decomposition (``scipy.linalg.lu``, W =
    P L U with partial pivoting) of a random orthogonal matrix, or of a given
    ``weight``: P, L and the strict upper part of U are taken over, and
    sign = sign(diag U), log_s = log|diag U|.

    Parameters
    ----------
    dim : int
        D.
    rng : None, int or numpy.random.Generator
        For the initial random orthogonal W (ignored when ``weight`` is given).
    weight : (D, D) array, optional
        Start from this invertible matrix instead.

    Attributes
    ----------
    perm : (D,) int array
        P[i, perm[i]] = 1, i.e. (P b)_i = b_{perm[i]}.
    sign : (D,) array of ±1
        Fixed signs of the diagonal s.
    params : {"lower": (D, D), "upper": (D, D), "log_s": (D,)}
    """

    def __init__(self, dim: int, rng: RngLike = None, weight: Any = None):
        super().__init__(dim)
        if weight is None:
            weight = random_orthogonal(self.dim, rng)
        else:
            weight = check_array(weight, self.dim, self.name, "weight")
            if weight.shape[0] != self.dim:
                raise ValueError(f"{self.name}: weight must have shape ({self.dim}, {self.dim}), got {weight.shape}")
        import scipy.linalg

        permutation, lower, upper = scipy.linalg.lu(weight)
        if np.any(np.diag(upper) == 0.0):
            raise ValueError(f"{self.name}: weight is singular (its LU factor U has a zero pivot: {np.diag(upper)})")
        self._add_triangular_params(np.diag(upper), upper)
        self.add_param("lower", np.tril(lower, -1))
        self.perm = permutation.argmax(axis=1)
        self.inverse_perm = np.argsort(self.perm)

    def factors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P, L, U + diag s) as dense matrices, so that W = P L (U + diag s)."""
        return np.eye(self.dim)[self.perm], self._lower(), self._triangular()[0]

    def _lower(self) -> np.ndarray:
        return np.tril(self.params["lower"], -1) + np.eye(self.dim)

    def _left_matrix(self):
        return self._lower()[self.perm]

    def _left(self, a):
        lower = self._lower()
        b = a @ lower.T
        return b[:, self.perm], (a, lower)

    def _left_vjp(self, cache, grad_z):
        a, lower = cache
        grad_b = grad_z[:, self.inverse_perm]  # z = P b:  ∂L/∂b = Pᵀ ∂L/∂z
        grad_lower, grad_a = product_vjp(lower, a, grad_b)  # b = L a
        self.grads["lower"] += np.tril(grad_lower, -1)  # only the strict lower part is a parameter
        return grad_a

    def _left_solve(self, z):
        lower = self._lower()
        a = triangular_solve(lower, z[:, self.inverse_perm], lower=True, unit_diagonal=True)  # a = L⁻¹ Pᵀ z
        return a, (a, lower)

    def _left_solve_vjp(self, cache, grad_a):
        a, lower = cache
        grad_lower, grad_b = triangular_solve_vjp(lower, a, grad_a, lower=True, unit_diagonal=True)  # a = L⁻¹ b
        self.grads["lower"] += np.tril(grad_lower, -1)
        return grad_b[:, self.perm]  # b = Pᵀ z:  ∂L/∂z = P ∂L/∂b


class QRLinear(_TriangularLinear):
    """QR-parametrised linear flow  z = f(x) = W x,  W = Q (R + diag s).

    Q = H_1 H_2 ⋯ H_K is a product of K Householder reflections
    H_k = I − 2 v_k v_kᵀ / ‖v_k‖² (rows of "vectors", trained; K = D by
    default), so Q is orthogonal for every parameter value and det Q = (−1)^K.
    R is strictly upper triangular ("upper", a full D×D array of which only the
    strict upper triangle is used); s = sign ⊙ exp(log_s) with "log_s" trained
    and sign = +1 fixed (the slide's positive diagonal).

    Inverse:   x = g(z) = (R + diag s)⁻¹ Qᵀ z,  Qᵀ = H_K ⋯ H_1, then one triangular solve.
    Log-det:   log|det ∂f/∂x| = Σ_i log_s_i  (|det Q| = 1);  log|det ∂g/∂z| = −Σ_i log_s_i.
    Cost: O(N·D·K) for the reflections (Q is never formed for a pass) plus
    O(N·D²) for the triangular product or solve, both ways; ``backward``
    re-runs the reflections to recover their inputs (O(N·D·K) time, O(N·D)
    memory) rather than keeping K copies of the batch.

    Starts at W = Q for random Gaussian v_k (a random orthogonal matrix,
    condition number 1), R = 0, s = 1.

    Parameters
    ----------
    dim : int
        D.
    rng : None, int or numpy.random.Generator
        For the initial Householder vectors.
    num_reflections : int, optional
        K ≥ 1; defaults to D (every orthogonal matrix of determinant (−1)^D is
        a product of D reflections).

    Attributes
    ----------
    params : {"vectors": (K, D), "upper": (D, D), "log_s": (D,)}
    """

    def __init__(self, dim: int, rng: RngLike = None, num_reflections: int | None = None):
        super().__init__(dim)
        if num_reflections is None:
            num_reflections = self.dim
        num_reflections = check_int(num_reflections, "QRLinear: num_reflections")
        self._add_triangular_params(np.ones(self.dim), np.zeros((self.dim, self.dim)))
        self.add_param("vectors", as_generator(rng).standard_normal((int(num_reflections), self.dim)))

    @property
    def num_reflections(self) -> int:
        return self.params["vectors"].shape[0]

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        """(Q, R + diag s) as dense matrices, so that W = Q (R + diag s)."""
        return self._left_matrix(), self._triangular()[0]

    def _vectors(self) -> np.ndarray:
        """A copy of the v_k (K, D), refused if one of them is zero (it defines no reflection)."""
        vectors = self.params["vectors"].copy()
        norms = np.sqrt(np.einsum("kd,kd->k", vectors, vectors))
        bad = np.flatnonzero(~(norms > 0) | ~np.isfinite(norms))
        if bad.size:
            raise ValueError(f"{self.name}: Householder vector {bad[0]} has norm {norms[bad[0]]}; "
                             "a reflection needs a finite nonzero v_k")
        return vectors

    def _left_matrix(self):
        return householder_product(self._vectors())  # Q = H_1 ⋯ H_K, O(K·D²)

    # The reflections and their VJPs (derived in nflows_np.linalg: ∂L/∂y_in = H ∂L/∂y_out and,
    # with u = v/‖v‖, ∂L/∂v = (I − u uᵀ) ∂L/∂u / ‖v‖) are shared with Sylvester's Householder variant.
    def _left(self, a):
        vectors = self._vectors()
        return householder_apply(vectors, a), (vectors, a)  # Q a: H_K acts first

    def _left_vjp(self, cache, grad_z):
        vectors, a = cache
        grad_vectors, grad_a = householder_apply_vjp(vectors, a, grad_z)
        self.grads["vectors"] += grad_vectors
        return grad_a

    def _left_solve(self, z):
        vectors = self._vectors()
        return householder_apply(vectors, z, transpose=True), (vectors, z)  # Qᵀ z = H_K ⋯ H_1 z

    def _left_solve_vjp(self, cache, grad_a):
        vectors, z = cache
        grad_vectors, grad_z = householder_apply_vjp(vectors, z, grad_a, transpose=True)
        self.grads["vectors"] += grad_vectors
        return grad_z
