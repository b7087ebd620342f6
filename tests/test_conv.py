"""nflows_np.conv: the im2col convolution against a direct sum, and its backward against finite differences."""
import numpy as np
import pytest
from scipy.signal import correlate

from nflows_np.conv import conv2d, conv2d_vjp, from_nhwc, to_nhwc
from nflows_np.gradcheck import numerical_gradient, rel_error


@pytest.mark.parametrize("k", [1, 3, 5])
def test_conv2d_matches_scipy_correlate(k):
    """y[n,:,:,o] = Σ_c correlate(x[n,:,:,c], w[:,:,c,o], 'same') + b[o] (scipy.signal, an independent reference)."""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 5, 4, 3)), rng.standard_normal((k, k, 3, 2)), rng.standard_normal(2)
    y, _ = conv2d(x, w, b)
    expected = np.stack([np.stack([sum(correlate(x[n, :, :, c], w[:, :, c, o], mode="same") for c in range(3)) + b[o]
                                   for o in range(2)], axis=-1) for n in range(2)])
    np.testing.assert_allclose(y, expected, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3])
def test_conv2d_backward_matches_finite_differences(k):
    """Relative error ≤ 1e-7 (float64 central differences give ~1e-9 on this linear map)."""
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 4, 3, 3)), rng.standard_normal((k, k, 3, 2)), rng.standard_normal(2)
    grad_y = rng.standard_normal((2, 4, 3, 2))
    loss = lambda: float(np.sum(grad_y * conv2d(x, w, b)[0]))  # noqa: E731
    grad_x, grad_w, grad_b = conv2d_vjp(conv2d(x, w, b)[1], grad_y)
    for name, mine, array in (("x", grad_x, x), ("w", grad_w, w), ("b", grad_b, b)):
        assert rel_error(mine, numerical_gradient(loss, array)) < 1e-7, name


def test_layout_round_trip():
    x = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 60)
    nhwc = to_nhwc(x, (3, 4, 5))
    assert nhwc[1, 2, 3, 1] == x[1, 1 * 20 + 2 * 5 + 3]
    np.testing.assert_array_equal(from_nhwc(nhwc), x)
