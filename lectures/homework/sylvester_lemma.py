"""Homework: the matrix determinant lemma and the Sylvester flow (Lecture 5, "Residual Flows").

The slide's lemma: for V, W ∈ R^{m×d},

    det(I_m + V Wᵀ) = det(I_d + Wᵀ V),

an m×m determinant (O(m³)) traded for a d×d one (O(m d² + d³)).  Residual
flows  x = g(z) = z + V σ(Wᵀz + b)  use it: their Jacobian is
I_D + V diag(σ′) Wᵀ, a rank-M update of the identity, so

    log|det ∂g/∂z| = log|det(I_M + diag(σ′) Wᵀ V)|        (σ′ at a = Wᵀz + b).

The planar flow is M = 1.  The Sylvester flow (van den Berg et al. 2018)
takes V = Q R and W = Q R̃ᵀ with Q ∈ R^{D×M} orthonormal columns (QᵀQ = I_M)
and R, R̃ upper triangular:

    x = z + Q R tanh(R̃ Qᵀ z + b),

and then I_M + diag(h′) R̃ QᵀQ R = I_M + diag(h′) R̃ R is upper triangular, so
its determinant is the product of its diagonal:

    log|det ∂g/∂z| = Σ_i log|1 + h′(a_i) R̃_ii R_ii|,   a = R̃ Qᵀ z + b    -- O(M), no determinant.

Exercises (numpy only; importing ``nflows_np`` is refused by the grader)

1. ``det_lemma(V, W)`` -- sign and log|det(I_m + V Wᵀ)| through the d×d side.
   The grader also calls it with m = 20 000: the m×m matrix would take 3.2 GB,
   more than the grader allows.
2. ``residual_log_det(z, V, W, b)`` -- log|det ∂g/∂z| of x = z + V tanh(Wᵀz + b)
   for every sample, by the lemma.
3. ``sylvester_inverse(z, Q, R, R_tilde, b)`` -- the Sylvester flow's generative
   pass x = g(z) and its log-det, in O(M) per sample for the log-det.

Batches are rows: ``z`` has shape (N, D).  Grade your work with::

    python -m nflows_np grade sylvester_lemma.py --assignment sylvester_lemma

The student version ``lectures/homework/sylvester_lemma.py`` is generated from
the solution with ``python -m nflows_np assign``: edit the solution, not it.
"""
import numpy as np


def det_lemma(V, W):
    """Sign and log|det| of I_m + V Wᵀ (V, W of shape (m, d)), through I_d + Wᵀ V.

    Returns
    -------
    sign : float
        +1.0 or −1.0 (0.0 if singular), as ``np.linalg.slogdet``.
    logabsdet : float
        log|det(I_m + V Wᵀ)|.
    """
    raise NotImplementedError("exercise: replace this line with your solution")


def residual_log_det(z, V, W, b):
    """log|det ∂g/∂z| of g(z) = z + V tanh(Wᵀz + b), for every row of z.

    Parameters
    ----------
    z : ndarray, shape (N, D)
    V, W : ndarray, shape (D, M)
    b : ndarray, shape (M,)

    Returns
    -------
    ndarray, shape (N,)
        log|det(I_M + diag(h′(a_n)) Wᵀ V)| with a_n = Wᵀ z_n + b, h′ = 1 − tanh².
    """
    raise NotImplementedError("exercise: replace this line with your solution")


def sylvester_inverse(z, Q, R, R_tilde, b):
    """The Sylvester flow's generative pass x = z + Q R tanh(R̃ Qᵀ z + b) and log|det ∂g/∂z|.

    Parameters
    ----------
    z : ndarray, shape (N, D)
    Q : ndarray, shape (D, M), orthonormal columns (QᵀQ = I_M)
    R, R_tilde : ndarray, shape (M, M), upper triangular
    b : ndarray, shape (M,)

    Returns
    -------
    x : ndarray, shape (N, D)
    log_det : ndarray, shape (N,)
        Σ_i log|1 + h′(a_i) R̃_ii R_ii| -- no determinant needed.
    """
    raise NotImplementedError("exercise: replace this line with your solution")


if __name__ == "__main__":
    # Self-checks: `python sylvester_lemma.py` once the exercises are written.
    rng = np.random.default_rng(0)
    V, W = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    sign, logabsdet = det_lemma(V, W)
    assert np.allclose(sign * np.exp(logabsdet), np.linalg.det(np.eye(6) + V @ W.T))

    # The log-dets against the slogdet of central-difference Jacobians.
    D, M, h = 4, 3, 1e-6
    z, V, W, b = rng.normal(size=(5, D)), rng.normal(size=(D, M)), rng.normal(size=(D, M)), rng.normal(size=M)

    def jacobian_log_det(g, z):
        columns = [(g(z + h * e) - g(z - h * e)) / (2 * h) for e in np.eye(z.shape[1])]
        return np.linalg.slogdet(np.stack(columns, axis=2))[1]

    residual = lambda z: z + np.tanh(z @ W + b) @ V.T
    assert np.allclose(residual_log_det(z, V, W, b), jacobian_log_det(residual, z), atol=1e-6)
    Q, _ = np.linalg.qr(rng.normal(size=(D, M)))
    R, R_tilde = np.triu(rng.normal(size=(M, M))), np.triu(rng.normal(size=(M, M)))
    x, log_det = sylvester_inverse(z, Q, R, R_tilde, b)
    assert np.allclose(log_det, jacobian_log_det(lambda z: sylvester_inverse(z, Q, R, R_tilde, b)[0], z), atol=1e-6)

    print("all self-checks passed")
