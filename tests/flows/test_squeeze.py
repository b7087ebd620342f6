"""Squeeze: the space-to-depth layout, by hand."""
import numpy as np
import pytest

from nflows_np.flows.squeeze import Squeeze


def test_squeeze_layout_by_hand():
    """A 1×2×2 image (a b / c d) becomes 4 channels of one pixel: a, b, c, d."""
    z, log_det = Squeeze((1, 2, 2)).forward(np.array([[1.0, 2.0, 3.0, 4.0]]))
    np.testing.assert_array_equal(z, [[1.0, 2.0, 3.0, 4.0]])
    assert log_det[0] == 0.0


def test_squeeze_moves_each_block_to_the_channels():
    """z[4c + 2a + b, i, j] = x[c, 2i + a, 2j + b] for every index of a 2×4×6 image."""
    c, h, w = 2, 4, 6
    x = np.arange(c * h * w, dtype=float)[None]
    z = Squeeze((c, h, w)).forward(x)[0].reshape(4 * c, h // 2, w // 2)
    image = x.reshape(c, h, w)
    for ch in range(c):
        for a in range(2):
            for b in range(2):
                np.testing.assert_array_equal(z[4 * ch + 2 * a + b], image[ch, a::2, b::2])


def test_odd_sizes_are_refused():
    with pytest.raises(ValueError, match="Squeeze: H and W must be even"):
        Squeeze((1, 3, 4))
