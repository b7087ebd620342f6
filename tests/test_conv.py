"""nflows_np.conv: the im2col convolution against a direct sum, and its backward against finite differences."""
import numpy as np
import pytest
from scipy.signal import correlate

from nflows_np.conv import conv2d, conv2d_vjp, from_nhwc, to_nhwc
from nflows_np.gradcheck import numerical_gradient, rel_error

# (C_in, C_out): C_in ≤ C_out takes the im2col path, C_in > C_out the output-side one.
CHANNELS = [(3, 2), (2, 3)]
# "im2col" (input or output side, by the channels), "dense" (the convolution's matrix; "auto" picks it
# when H·W ≤ k²: here for k = 5 on 5×4 and 4×3 images).
METHODS = ["im2col", "dense", "auto"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("c_in, c_out", CHANNELS)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_conv2d_matches_scipy_correlate(k, c_in, c_out, method):
    """y[n,:,:,o] = Σ_c correlate(x[n,:,:,c], w[:,:,c,o], 'same') + b[o] (scipy.signal, an independent reference)."""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 5, 4, c_in)), rng.standard_normal((k, k, c_in, c_out)), rng.standard_normal(c_out)
    y, _ = conv2d(x, w, b, method=method)
    expected = np.stack([np.stack([sum(correlate(x[n, :, :, c], w[:, :, c, o], mode="same") for c in range(c_in)) + b[o]
                                   for o in range(c_out)], axis=-1) for n in range(2)])
    np.testing.assert_allclose(y, expected, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("c_in, c_out", CHANNELS)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_conv2d_backward_matches_finite_differences(k, c_in, c_out, method):
    """Relative error ≤ 1e-7 (float64 central differences give ~1e-9 on this linear map)."""
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 4, 3, c_in)), rng.standard_normal((k, k, c_in, c_out)), rng.standard_normal(c_out)
    grad_y = rng.standard_normal((2, 4, 3, c_out))
    loss = lambda: float(np.sum(grad_y * conv2d(x, w, b)[0]))
    grad_x, grad_w, grad_b = conv2d_vjp(conv2d(x, w, b, method=method)[1], grad_y)
    for name, mine, array in (("x", grad_x, x), ("w", grad_w, w), ("b", grad_b, b)):
        assert rel_error(mine, numerical_gradient(loss, array)) < 1e-7, name


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("c_in, c_out", CHANNELS)
@pytest.mark.parametrize("k, height, width", [(3, 1, 1), (5, 2, 2), (5, 2, 7), (3, 2, 2)])
def test_conv2d_kernel_wider_than_image(k, height, width, c_in, c_out, method):
    """Taps that fall outside a small image (|offset| ≥ H or W) contribute zero, both ways."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, height, width, c_in)), rng.standard_normal((k, k, c_in, c_out))
    y, cache = conv2d(x, w, method=method)
    expected = np.stack([np.stack([sum(correlate(x[n, :, :, c], w[:, :, c, o], mode="same") for c in range(c_in))
                                   for o in range(c_out)], axis=-1) for n in range(2)])
    np.testing.assert_allclose(y, expected, atol=1e-12)
    grad_y = rng.standard_normal(y.shape)
    grad_x, grad_w, _ = conv2d_vjp(cache, grad_y)
    loss = lambda: float(np.sum(grad_y * conv2d(x, w)[0]))
    assert rel_error(grad_x, numerical_gradient(loss, x)) < 1e-7
    assert rel_error(grad_w, numerical_gradient(loss, w)) < 1e-7


def test_conv2d_method_is_checked():
    with pytest.raises(ValueError, match="method"):
        conv2d(np.zeros((1, 2, 2, 1)), np.zeros((3, 3, 1, 1)), method="fft")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("c_in, c_out", CHANNELS + [(2, 2)])
def test_buffers_give_the_same_results_and_are_reused(c_in, c_out, method):
    """With a kept ``buffers`` dict: the same y and gradients as without, the large arrays kept (same objects)
    from call to call, and re-made when the shapes change."""
    rng = np.random.default_rng(3)
    buffers: dict = {}
    kept: dict = {}
    for batch in (3, 3, 5):
        x, w = rng.standard_normal((batch, 4, 3, c_in)), rng.standard_normal((3, 3, c_in, c_out))
        b, grad_y = rng.standard_normal(c_out), rng.standard_normal((batch, 4, 3, c_out))
        y, cache = conv2d(x, w, b, method=method)
        y_kept, cache_kept = conv2d(x, w, b, buffers, method)
        np.testing.assert_array_equal(y_kept, y)
        for mine, reference in zip(conv2d_vjp(cache_kept, grad_y, buffers=buffers), conv2d_vjp(cache, grad_y)):
            np.testing.assert_array_equal(mine, reference)
        assert buffers and all(value.shape[0] in (batch, batch * 4 * 3) for value in buffers.values())
        if kept.get("batch") == batch:  # same shapes as in the last call: the same arrays
            assert all(buffers[key] is value for key, value in kept["arrays"].items())
        kept = {"batch": batch, "arrays": dict(buffers)}


def test_layout_round_trip():
    x = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 60)
    nhwc = to_nhwc(x, (3, 4, 5))
    assert nhwc[1, 2, 3, 1] == x[1, 1 * 20 + 2 * 5 + 3]
    np.testing.assert_array_equal(from_nhwc(nhwc), x)
