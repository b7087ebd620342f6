"""Emerging convolutions: a triangular Jacobian, log-det H·W·Σ log d, a full k×k receptive field."""
import numpy as np

from nflows_np.flows.emerging import EmergingConv, MaskedConv2d
from nflows_np.gradcheck import jacobian, randomize_params


def _pixel_order(shape):
    """Permutation from (channel, row, column) flattening to (row, column, channel)."""
    c, h, w = shape
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def test_jacobian_is_the_dense_matrix_and_triangular():
    rng = np.random.default_rng(0)
    shape = (2, 3, 4)
    strict_upper, strict_lower = (lambda m: np.triu(m, 1)), (lambda m: np.tril(m, -1))
    for order, triangle in (("lower", strict_upper), ("upper", strict_lower)):
        layer = randomize_params(MaskedConv2d(shape, 3, order, rng), rng)
        jac = jacobian(lambda a, layer=layer: layer.forward(a)[0], rng.standard_normal((1, 24)))[0]
        perm = _pixel_order(shape)
        in_pixel_order = jac[np.ix_(perm, perm)]
        np.testing.assert_allclose(in_pixel_order, layer.matrix(), atol=1e-9)
        off = triangle(in_pixel_order)  # the other strict triangle must vanish
        assert np.max(np.abs(off)) < 1e-9, order
        np.testing.assert_allclose(np.diag(in_pixel_order), np.tile(np.exp(layer.params["log_d"]), 12), atol=1e-9)


def test_emerging_conv_sees_the_whole_3x3_neighbourhood():
    """∂z_centre/∂x is non-zero on all 9 pixels of the neighbourhood (one masked factor sees ≤ 5)."""
    rng = np.random.default_rng(1)
    layer = randomize_params(EmergingConv((1, 5, 5), 3, rng), rng)
    jac = jacobian(lambda a: layer.forward(a)[0], rng.standard_normal((1, 25)))[0]
    reach = np.abs(jac[12]).reshape(5, 5) > 1e-9  # output pixel (2, 2)
    assert reach[1:4, 1:4].all()
    lower_only = randomize_params(MaskedConv2d((1, 5, 5), 3, "lower", rng), rng)
    jac = jacobian(lambda a: lower_only.forward(a)[0], rng.standard_normal((1, 25)))[0]
    assert (np.abs(jac[12]).reshape(5, 5) > 1e-9).sum() == 5
