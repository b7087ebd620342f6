"""Small linear algebra shared by the flows, each map with its hand-written VJP.

- :func:`det_lemma`, :func:`log_det_lemma` — the matrix determinant lemma
  det(I_m + V Wᵀ) = det(I_d + Wᵀ V) for V, W ∈ R^{m×d}, computed on the smaller side.
- :func:`householder_apply`, :func:`householder_apply_vjp` — multiply a batch by
  Q = H_1 ⋯ H_K (or Qᵀ), H_k = I − 2 v_k v_kᵀ / ‖v_k‖², without forming Q.
- :func:`householder_product`, :func:`householder_product_vjp` — Q itself.
- :func:`polar`, :func:`polar_vjp` — the orthonormal polar factor Q = A (AᵀA)^{−1/2}
  of a full-column-rank A ∈ R^{D×M}.
- :func:`product_vjp`, :func:`triangular_solve`, :func:`triangular_solve_vjp` — a batch
  product y = M x and a batch triangular solve, with their VJPs (the linear flows').
- :func:`random_orthogonal` — a Haar-distributed orthogonal matrix.

A VJP here takes the arguments of the map and ∂L/∂(output) and returns ∂L/∂(inputs);
it recomputes what it needs (these maps are cheap next to the flows that use them).
"""
from __future__ import annotations

import numpy as np

from nflows_np.numerics import EPS
from nflows_np.validation import RngLike, as_generator

# -- the matrix determinant lemma -------------------------------------------------

def _lemma_operands(V: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    V = np.asarray(V, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    if V.ndim < 2 or V.shape != W.shape:
        raise ValueError(f"det_lemma: V and W must have the same shape (..., m, d), got {V.shape} and {W.shape}")
    return V, W


def log_det_lemma(V: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sign and log|det| of I_m + V Wᵀ, by the matrix determinant lemma.

    det(I_m + V Wᵀ) = det(I_d + Wᵀ V)  for V, W ∈ R^{m×d} (stacks (..., m, d) allowed),
    so the determinant is taken of whichever of the two matrices is smaller.

    Cost: O(m·d·k + k³) with k = min(m, d), per matrix.

    Returns
    -------
    sign, logabsdet : np.ndarray
        As ``numpy.linalg.slogdet``: det = sign · exp(logabsdet).
    """
    V, W = _lemma_operands(V, W)
    m, d = V.shape[-2:]
    if d <= m:
        small = np.eye(d) + np.swapaxes(W, -1, -2) @ V
    else:
        small = np.eye(m) + V @ np.swapaxes(W, -1, -2)
    return np.linalg.slogdet(small)


def det_lemma(V: np.ndarray, W: np.ndarray) -> np.ndarray:
    """det(I_m + V Wᵀ) = det(I_d + Wᵀ V) for V, W ∈ R^{m×d}; see :func:`log_det_lemma`."""
    sign, logabsdet = log_det_lemma(V, W)
    return sign * np.exp(logabsdet)


# -- Householder reflections -----------------------------------------------------

def _unit_rows(V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """v_k / ‖v_k‖ and ‖v_k‖ for the rows of V (K, D); a zero row defines no reflection."""
    V = np.asarray(V, dtype=np.float64)
    if V.ndim != 2 or V.shape[0] == 0:
        raise ValueError(f"householder: V must have shape (K, D) with K ≥ 1, got {V.shape}")
    norms = np.linalg.norm(V, axis=1)
    if not np.all(norms > 0) or not np.all(np.isfinite(norms)):
        bad = int(np.flatnonzero(~(norms > 0) | ~np.isfinite(norms))[0])
        raise ValueError(f"householder: vector {bad} has norm {norms[bad]}, which defines no reflection")
    return V / norms[:, None], norms


def _order(num: int, transpose: bool) -> range:
    # Q x = H_1(H_2(⋯ H_K x)) applies H_K first; Qᵀ x = H_K(⋯ H_1 x) applies H_1 first.
    return range(num) if transpose else range(num - 1, -1, -1)


def householder_apply(V: np.ndarray, X: np.ndarray, transpose: bool = False) -> np.ndarray:
    """Rows x of X mapped to Q x (``transpose=False``: returns X Qᵀ) or to Qᵀ x (returns X Q).

    Q = H_1 H_2 ⋯ H_K,  H_k = I − 2 v_k v_kᵀ / ‖v_k‖²,  v_k the rows of V (K, D).
    Each reflection is  x ↦ x − 2 (x·v̂) v̂ : cost O(N·D·K), Q never formed.
    """
    unit, _ = _unit_rows(V)
    Y = np.array(X, dtype=np.float64)
    for k in _order(len(unit), transpose):
        Y -= 2.0 * np.outer(Y @ unit[k], unit[k])
    return Y


def householder_apply_vjp(V: np.ndarray, X: np.ndarray, grad_Y: np.ndarray,
                          transpose: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(∂L/∂V, ∂L/∂X) of :func:`householder_apply` from ∂L/∂Y.  Cost O(N·D·K)."""
    unit, norms = _unit_rows(V)
    order = list(_order(len(unit), transpose))
    inputs = []
    Y = np.array(X, dtype=np.float64)
    for k in order:
        inputs.append(Y)
        Y = Y - 2.0 * np.outer(Y @ unit[k], unit[k])
    grad = np.array(grad_Y, dtype=np.float64)
    grad_V = np.zeros_like(unit)
    for k, Y_in in zip(reversed(order), reversed(inputs)):
        u = unit[k]
        proj_in, proj_grad = Y_in @ u, grad @ u
        # y = y_in − 2 (y_in·u) u:  ∂L/∂u = −2 Σ_n [(y_in·u) g + (g·u) y_in];  ∂L/∂y_in = H g (H symmetric)
        grad_u = -2.0 * (proj_in @ grad + proj_grad @ Y_in)
        # u = v/‖v‖:  ∂u/∂v = (I − u uᵀ)/‖v‖
        grad_V[k] = (grad_u - (grad_u @ u) * u) / norms[k]
        grad = grad - 2.0 * np.outer(proj_grad, u)
    return grad_V, grad


def householder_product(V: np.ndarray) -> np.ndarray:
    """Q = H_1 ⋯ H_K (D, D), orthogonal, from the rows v_k of V (K, D).  Cost O(K·D²).

    The rows of the identity mapped by x ↦ Qᵀ x are the rows of I·Q = Q.
    """
    V = np.asarray(V, dtype=np.float64)
    return householder_apply(V, np.eye(V.shape[-1]), transpose=True)


def householder_product_vjp(V: np.ndarray, grad_Q: np.ndarray) -> np.ndarray:
    """∂L/∂V of :func:`householder_product` from ∂L/∂Q.  Cost O(K·D²)."""
    V = np.asarray(V, dtype=np.float64)
    return householder_apply_vjp(V, np.eye(V.shape[-1]), grad_Q, transpose=True)[0]


# -- the polar factor --------------------------------------------------------------

def _svd_full_rank(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or A.shape[1] > A.shape[0] or A.shape[1] == 0:
        raise ValueError(f"polar: A must have shape (D, M) with 1 ≤ M ≤ D, got {A.shape}")
    U, sigma, Vt = np.linalg.svd(A, full_matrices=False)
    # Q = A (AᵀA)^{−1/2} jumps where A loses rank: refuse a numerically rank-deficient A.
    if not sigma[-1] > max(A.shape) * EPS * sigma[0]:
        raise ValueError(f"polar: A is numerically rank-deficient (singular values {sigma[0]:.3g} … {sigma[-1]:.3g}), "
                         "its orthonormal polar factor is not defined")
    return U, sigma, Vt


def polar(A: np.ndarray) -> np.ndarray:
    """Q = A (AᵀA)^{−1/2} = U Vᵀ for A = U Σ Vᵀ (thin SVD): the D×M matrix with orthonormal
    columns nearest to A (the limit of the iteration Q ← Q (I + ½(I − QᵀQ)) of
    van den Berg et al., 2018).  Cost O(D·M²).
    """
    U, _, Vt = _svd_full_rank(A)
    return U @ Vt


def polar_vjp(A: np.ndarray, grad_Q: np.ndarray) -> np.ndarray:
    """∂L/∂A of :func:`polar` from G = ∂L/∂Q.  Cost O(D·M²).

    Derivation: A = Q S with S = (AᵀA)^{1/2} = V Σ Vᵀ. Differentiating,
    dA = dQ S + Q dS, and Ω = Qᵀ dQ is skew because QᵀQ = I, so
    Qᵀ dA − dAᵀ Q = Ω S + S Ω; in the basis V this reads Ω̃_ij (σ_i + σ_j) = [Vᵀ(Qᵀ dA − dAᵀ Q) V]_ij.
    The part of dQ outside range(Q) is (I − QQᵀ) dA S⁻¹. Hence dQ = Q Ω + (I − QQᵀ) dA S⁻¹ and,
    with B = Uᵀ G V (= Vᵀ Qᵀ G V) and F_ij = 1/(σ_i + σ_j),

        ∂L/∂A = U [F ∘ (B − Bᵀ)] Vᵀ + (I − U Uᵀ) G V Σ⁻¹ Vᵀ.
    """
    U, sigma, Vt = _svd_full_rank(A)
    G = np.asarray(grad_Q, dtype=np.float64)
    B = U.T @ G @ Vt.T
    inside = U @ ((B - B.T) / (sigma[:, None] + sigma[None, :])) @ Vt
    outside = (G - U @ (U.T @ G)) @ (Vt.T / sigma) @ Vt
    return inside + outside


# -- batch products and triangular solves ----------------------------------------

def random_orthogonal(dim: int, rng: RngLike = None) -> np.ndarray:
    """A Haar-distributed random orthogonal D×D matrix (condition number 1).

    QR of a standard Gaussian matrix; multiplying Q's columns by sign(diag R)
    makes the factorisation unique, which is what makes Q Haar-distributed
    (Mezzadri 2007). Cost O(D³).
    """
    q, r = np.linalg.qr(as_generator(rng).standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def product_vjp(matrix: np.ndarray, x: np.ndarray, grad_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(∂L/∂M, ∂L/∂x) for the batch product y = M x (rows: y = x Mᵀ)."""
    # dy = dM x + M dx:  ∂L/∂M = Σ_n ∂L/∂y[n] x[n]ᵀ;  ∂L/∂x = Mᵀ ∂L/∂y
    return grad_y.T @ x, grad_y @ matrix


def triangular_solve(matrix: np.ndarray, rhs: np.ndarray, lower: bool, transpose: bool = False,
                      unit_diagonal: bool = False) -> np.ndarray:
    """M⁻¹ r (or M⁻ᵀ r) for every row r of ``rhs``, by one triangular solve: O(N·D²)."""
    # scipy is imported on use here, as everywhere in the library: ``import nflows_np`` stays fast.
    from scipy.linalg import solve_triangular

    return solve_triangular(matrix, rhs.T, lower=lower, trans="T" if transpose else "N",
                            unit_diagonal=unit_diagonal).T


def triangular_solve_vjp(matrix: np.ndarray, x: np.ndarray, grad_x: np.ndarray, lower: bool,
                          unit_diagonal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(∂L/∂M, ∂L/∂y) for the batch solve x = M⁻¹ y, M triangular."""
    # dx = −M⁻¹ dM x + M⁻¹ dy:  ∂L/∂y = M⁻ᵀ ∂L/∂x;  ∂L/∂M = −Σ_n ∂L/∂y[n] x[n]ᵀ
    grad_y = triangular_solve(matrix, grad_x, lower, transpose=True, unit_diagonal=unit_diagonal)
    return -(grad_y.T @ x), grad_y
