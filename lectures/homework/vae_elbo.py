"""Homework: the ELBO with a reparametrised gradient, and the IWAE bound (Lecture 5, recap).

A small Gaussian VAE on real data ``x`` of shape ``(N, D)``, latent dimension ``L``:

    encoder   q(z | x) = N(z | μ, diag exp(v)),   μ = x A + a,   v = x B + c
    prior     p(z) = N(0, I)
    decoder   p(x | z) = N(x | z W + b, σ² I),    σ = exp(log_sigma)  (fixed)

A draw of q is reparametrised, z = μ + exp(v/2) ⊙ ε with ε ~ N(0, I), so at a fixed ε
every quantity below is a differentiable function of (A, a, B, c, W, b).

    ELBO(x) = log p(x | z) − KL(q(z | x) ‖ p(z))          (one draw of z, closed-form KL)
    KL      = ½ Σ_j (μ_j² + exp(v_j) − 1 − v_j)
    log w   = log p(x | z) + log p(z) − log q(z | x)       (importance weight of one draw)
    L_K(x)  = log (1/K) Σ_k w_k                            (IWAE bound, K draws)

Write the five functions below with numpy only (importing ``nflows_np`` is not allowed
in a graded submission). Keep the names and signatures.

Grade your work with::

    python -m nflows_np grade vae_elbo.py --assignment vae_elbo

The student version ``lectures/homework/vae_elbo.py`` is generated from the solution
with ``python -m nflows_np assign``: edit the solution, not it.
"""
import numpy as np

LOG_2PI = np.log(2.0 * np.pi)


def gaussian_kl(mean, log_var):
    """KL(N(μ, diag exp(v)) ‖ N(0, I)) for every row.

    Parameters
    ----------
    mean, log_var : ndarray, shape (N, L)

    Returns
    -------
    ndarray, shape (N,)
        ``½ Σ_j (μ_j² + exp(v_j) − 1 − v_j)``.
    """
    raise NotImplementedError("exercise: replace this line with your solution")


def elbo(x, eps, A, a, B, c, W, b, log_sigma):
    """The ELBO of every row of ``x`` at the noise ``eps``: log p(x | z) − KL, z = μ + exp(v/2) ε.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    eps : ndarray, shape (N, L)
    A, B : ndarray, shape (D, L);  a, c : ndarray, shape (L,)
    W : ndarray, shape (L, D);  b : ndarray, shape (D,)
    log_sigma : float

    Returns
    -------
    ndarray, shape (N,)
        ``log N(x | z W + b, σ² I) − KL(q(z | x) ‖ p(z))``; the Gaussian's normalising
        constant ``−(D/2) log(2π σ²)`` included.
    """
    raise NotImplementedError("exercise: replace this line with your solution")


def elbo_grads(x, eps, A, a, B, c, W, b, log_sigma):
    """Gradient of the mean ELBO, (1/N) Σ_n ELBO(x_n), at the noise ``eps``.

    Parameters
    ----------
    as for :func:`elbo`.

    Returns
    -------
    tuple of ndarray
        ``(dA, da, dB, dc, dW, db)``, each of the shape of its parameter.
    """
    raise NotImplementedError("exercise: replace this line with your solution")


def log_weights(x, eps, A, a, B, c, W, b, log_sigma):
    """log w_nk = log p(x_n | z_nk) + log p(z_nk) − log q(z_nk | x_n) for K draws per row.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    eps : ndarray, shape (N, K, L)
        z_nk = μ_n + exp(v_n / 2) ε_nk.
    A, a, B, c, W, b, log_sigma : as for :func:`elbo`.

    Returns
    -------
    ndarray, shape (N, K)
    """
    raise NotImplementedError("exercise: replace this line with your solution")


def iwae_bound(log_w):
    """The IWAE bound of every row from its K log-weights: log (1/K) Σ_k exp(log w_k).

    Must stay finite when the log-weights are far from 0 (e.g. all near −1000 or +1000).

    Parameters
    ----------
    log_w : ndarray, shape (N, K)

    Returns
    -------
    ndarray, shape (N,)
    """
    raise NotImplementedError("exercise: replace this line with your solution")


if __name__ == "__main__":
    # Self-checks: finite differences of the mean ELBO, L_1 ≤ L_50 on average, a stable IWAE bound.
    rng = np.random.default_rng(0)
    n, d, latent = 6, 5, 2
    x = rng.normal(size=(n, d))
    params = [0.3 * rng.normal(size=shape) for shape in ((d, latent), (latent,), (d, latent), (latent,),
                                                          (latent, d), (d,))]
    eps = rng.normal(size=(n, latent))
    analytic = elbo_grads(x, eps, *params, 0.1)
    for name, param, grad in zip("A a B c W b".split(), params, analytic):
        numeric = np.zeros_like(param)
        for i in np.ndindex(param.shape):
            old = param[i]
            param[i] = old + 1e-6
            up = elbo(x, eps, *params, 0.1).mean()
            param[i] = old - 1e-6
            down = elbo(x, eps, *params, 0.1).mean()
            param[i] = old
            numeric[i] = (up - down) / 2e-6
        error = np.linalg.norm(grad - numeric) / (np.linalg.norm(grad) + np.linalg.norm(numeric))
        print(f"d{name}: relative error analytic vs finite differences {error:.1e}")
        assert error < 1e-6, f"d{name} does not match finite differences"
    log_w = log_weights(x, rng.normal(size=(n, 4000, latent)), *params, 0.1)
    l_1, l_50 = log_w.mean(), iwae_bound(log_w.reshape(n, 80, 50).reshape(n * 80, 50)).mean()
    print(f"L_1 = {l_1:.4f} < L_50 = {l_50:.4f}")
    assert l_1 < l_50
    stable = iwae_bound(np.array([[-1000.0, -1000.0], [1000.0, 1000.0]]))
    assert np.allclose(stable, [-1000.0, 1000.0]), stable
    print("all self-checks passed")
