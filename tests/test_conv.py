"""nflows_np.conv: the im2col convolution against a direct sum, and its backward against finite differences."""
import numpy as np
import pytest
from scipy.signal import correlate

from nflows_np.conv import conv2d, conv2d_vjp, from_nhwc, to_nhwc
from nflows_np.gradcheck import numerical_gradient, rel_error

# (C_in, C_out): C_in ≤ C_out takes the im2col path, C_in > C_out the output-side one.
CHANNELS = [(3, 2), (2, 3)]


@pytest.mark.parametrize("c_in, c_out", CHANNELS)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_conv2d_matches_scipy_correlate(k, c_in, c_out):
    """y[n,:,:,o] = Σ_c correlate(x[n,:,:,c], w[:,:,c,o], 'same') + b[o] (scipy.signal, an independent reference)."""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 5, 4, c_in)), rng.standard_normal((k, k, c_in, c_out)), rng.standard_normal(c_out)
    y, _ = conv2d(x, w, b)
    expected = np.stack([np.stack([sum(correlate(x[n, :, :, c], w[:, :, c, o], mode="same") for c in range(c_in)) + b[o]
                                   for o in range(c_out)], axis=-1) for n in range(2)])
    np.testing.assert_allclose(y, expected, atol=1e-12)


@pytest.mark.parametrize("c_in, c_out", CHANNELS)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_conv2d_backward_matches_finite_differences(k, c_in, c_out):
    """Relative error ≤ 1e-7 (float64 central differences give ~1e-9 on this linear map)."""
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 4, 3, c_in)), rng.standard_normal((k, k, c_in, c_out)), rng.standard_normal(c_out)
    grad_y = rng.standard_normal((2, 4, 3, c_out))
    loss = lambda: float(np.sum(grad_y * conv2d(x, w, b)[0]))
    grad_x, grad_w, grad_b = conv2d_vjp(conv2d(x, w, b)[1], grad_y)
    for name, mine, array in (("x", grad_x, x), ("w", grad_w, w), ("b", grad_b, b)):
        assert rel_error(mine, numerical_gradient(loss, array)) < 1e-7, name


def test_layout_round_trip():
    x = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 60)
    nhwc = to_nhwc(x, (3, 4, 5))
    assert nhwc[1, 2, 3, 1] == x[1, 1 * 20 + 2 * 5 + 3]
    np.testing.assert_array_equal(from_nhwc(nhwc), x)
