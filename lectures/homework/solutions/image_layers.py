"""Homework: the image layers of Glow — squeeze and the invertible 1×1 convolution (Lecture 5, "Glow").

Images are batches of rows: ``x`` has shape ``(N, C·H·W)``, each row an image of
shape ``(C, H, W)`` flattened in C order (channel, then row, then column), so
``x.reshape(N, C, H, W)`` gives the images back.

* **Squeeze** (space-to-depth) turns every 2×2 block of pixels into four channels:
  ``z[4c + 2a + b, i, j] = x[c, 2i + a, 2j + b]`` for a, b ∈ {0, 1}, shape (4C, H/2, W/2).
  It only moves coordinates: log|det| = 0.
* **Invertible 1×1 convolution**: the same C×C matrix W at every pixel,
  ``z[:, i, j] = W x[:, i, j]``. Its Jacobian is block-diagonal with H·W copies of W:
  ``log|det ∂z/∂x| = H·W·log|det W|``.

Write the four functions below with numpy only (importing ``nflows_np`` is not
allowed in a graded submission). Keep the names and signatures.

Grade your work with::

    python -m nflows_np grade image_layers.py --assignment image_layers

The student version ``lectures/homework/image_layers.py`` is generated from the
solution with ``python -m nflows_np assign``: edit the solution, not it.
"""
import numpy as np


def squeeze(x, shape):
    """Space-to-depth: (N, C·H·W) images of shape ``shape`` = (C, H, W) → (N, 4C·(H/2)·(W/2)).

    ``z[n, 4c + 2a + b, i, j] = x[n, c, 2i + a, 2j + b]``, flattened in C order.
    """
    # BEGIN SOLUTION
    c, h, w = (int(v) for v in shape)
    images = x.reshape(x.shape[0], c, h // 2, 2, w // 2, 2)  # (n, c, i, a, j, b)
    return images.transpose(0, 1, 3, 5, 2, 4).reshape(x.shape[0], -1)  # (n, c, a, b, i, j)
    # END SOLUTION


def unsqueeze(z, shape):
    """Depth-to-space, the inverse of :func:`squeeze`; ``shape`` = (C, H, W) is the shape *before* squeezing."""
    # BEGIN SOLUTION
    c, h, w = (int(v) for v in shape)
    blocks = z.reshape(z.shape[0], c, 2, 2, h // 2, w // 2)  # (n, c, a, b, i, j)
    return blocks.transpose(0, 1, 4, 2, 5, 3).reshape(z.shape[0], -1)  # (n, c, i, a, j, b)
    # END SOLUTION


def conv1x1_forward(x, weight, shape):
    """z[:, :, i, j] = W x[:, :, i, j] at every pixel, and log|det ∂z/∂x| per image.

    Parameters
    ----------
    x : ndarray, shape (N, C·H·W)
    weight : ndarray, shape (C, C), invertible (its determinant may be negative)
    shape : ndarray (C, H, W)

    Returns
    -------
    z : ndarray, shape (N, C·H·W)
    log_det : ndarray, shape (N,)
        ``H·W·log|det W|`` for every image.
    """
    # BEGIN SOLUTION
    c, h, w = (int(v) for v in shape)
    z = np.einsum("oc,nchw->nohw", weight, x.reshape(x.shape[0], c, h, w)).reshape(x.shape[0], -1)
    log_det = np.full(x.shape[0], h * w * np.linalg.slogdet(weight)[1])
    return z, log_det
    # END SOLUTION


def conv1x1_backward(x, weight, shape, grad_z, grad_log_det):
    """Vector-Jacobian product of :func:`conv1x1_forward` at ``x``.

    Given ∂L/∂z (N, C·H·W) and ∂L/∂log_det (N,), return ``(grad_x, grad_weight)``:
    ∂L/∂x (N, C·H·W) and ∂L/∂W (C, C). Remember that log_det depends on W:
    ∂ log|det W| / ∂W = W⁻ᵀ.
    """
    # BEGIN SOLUTION
    c, h, w = (int(v) for v in shape)
    images = x.reshape(x.shape[0], c, h, w)
    grads = grad_z.reshape(x.shape[0], c, h, w)
    # z_o = Σ_c W_oc x_c at every pixel: ∂L/∂x_c = Σ_o W_oc ∂L/∂z_o;  ∂L/∂W_oc = Σ_{n,pixels} ∂L/∂z_o x_c
    grad_x = np.einsum("oc,nohw->nchw", weight, grads).reshape(x.shape[0], -1)
    grad_weight = np.einsum("nohw,nchw->oc", grads, images)
    # log_det = H·W·log|det W| for every image: ∂/∂W = H·W·W⁻ᵀ, times Σ_n ∂L/∂log_det_n
    grad_weight += h * w * np.sum(grad_log_det) * np.linalg.inv(weight).T
    return grad_x, grad_weight
    # END SOLUTION


if __name__ == "__main__":
    # Self-checks: `python image_layers.py` once the functions are written.
    rng = np.random.default_rng(0)
    # A 1×2×2 image (a b / c d) squeezes to the four channels a, b, c, d of one pixel.
    assert np.array_equal(squeeze(np.array([[1.0, 2.0, 3.0, 4.0]]), (1, 2, 2)), [[1.0, 2.0, 3.0, 4.0]])
    x = rng.normal(size=(3, 2 * 4 * 6))
    assert np.array_equal(unsqueeze(squeeze(x, (2, 4, 6)), (2, 4, 6)), x)

    # The log-det against slogdet of the full Jacobian (the map is linear: the Jacobian is the
    # matrix of the map, found by pushing the identity through it).
    shape, weight = (2, 3, 2), rng.normal(size=(2, 2))
    jacobian = conv1x1_forward(np.eye(12), weight, shape)[0].T
    assert np.isclose(conv1x1_forward(x[:, :12], weight, shape)[1][0], np.linalg.slogdet(jacobian)[1])

    # BEGIN HIDDEN TESTS
    # Backward against central differences of L = Σ grad_z ⊙ z + Σ grad_log_det ⊙ log_det.
    x, grad_z, grad_log_det = rng.normal(size=(2, 12)), rng.normal(size=(2, 12)), rng.normal(size=2)

    def loss(x, weight):
        z, log_det = conv1x1_forward(x, weight, shape)
        return np.sum(grad_z * z) + np.sum(grad_log_det * log_det)

    grad_x, grad_weight = conv1x1_backward(x, weight, shape, grad_z, grad_log_det)
    h = 1e-6
    for array, grad in ((x, grad_x), (weight, grad_weight)):
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            old = array[index]
            array[index] = old + h
            plus = loss(x, weight)
            array[index] = old - h
            minus = loss(x, weight)
            array[index] = old
            numeric[index] = (plus - minus) / (2 * h)
        assert np.allclose(grad, numeric, atol=1e-6), np.max(np.abs(grad - numeric))
    # END HIDDEN TESTS
    print("all self-checks passed")
