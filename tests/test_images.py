"""nflows_np.images: dequantisation, the logit transform and its log-det, bits/dim checked on hand-computable cases."""
import math

import numpy as np
import pytest

from nflows_np.gradcheck import jacobian, log_abs_det
from nflows_np.images import LogitTransform, bits_per_dim, image_grid


class Logistic:
    """Independent standard logistic densities: log p(x) = Σ_i [−x_i − 2 log(1 + e^{−x_i})]; its CDF is σ."""

    def log_prob(self, x):
        return np.sum(-x - 2.0 * np.logaddexp(0.0, -x), axis=1)


IMAGES = np.random.default_rng(0).integers(0, 17, size=(50, 64))


@pytest.mark.parametrize("alpha", [0.0, 0.05, 0.2])
def test_bits_per_dim_by_hand_logistic(alpha):
    """x = logit(α + (1−2α)y) and p_X logistic ⇒ p = σ(x) is uniform ⇒ p_y = 1 − 2α on [0, 1)^D.

    So every image has bits/dim = log₂ L − log₂(1 − 2α), whatever the dequantisation draw:
    log₂ 17 = 4.087 at α = 0. Tolerance 1e-12 (rounding only).
    """
    transform = LogitTransform(17, alpha)
    x, log_det = transform.forward(IMAGES, rng=1)
    values = bits_per_dim(Logistic().log_prob(x), log_det, 64, 17)
    np.testing.assert_allclose(values, math.log2(17) - math.log2(1 - 2 * alpha), rtol=0, atol=1e-12)
    assert transform.bits_per_dim(Logistic(), IMAGES, rng=2) == pytest.approx(math.log2(17) - math.log2(1 - 2 * alpha),
                                                                              abs=1e-12)


def test_one_pixel_gaussian_by_hand():
    """L = 2, α = 0, y = 0.75: x = log 3, dx/dy = 1/(y(1−y)) = 16/3; under N(0, 1):

    bits = −[−(log 3)²/2 − log(2π)/2 + log(16/3) − log 2] / log 2
         = −[−0.60346 − 0.91894 + 1.67398 − 0.69315] / 0.69315 = 0.78134 (by hand, 5 digits).
    """
    x, log_det = LogitTransform(2, 0.0).to_logit(np.array([[0.75]]))
    assert x[0, 0] == pytest.approx(math.log(3.0), abs=1e-15)
    assert log_det[0] == pytest.approx(math.log(16.0 / 3.0), abs=1e-15)
    log_p = -0.5 * math.log(3.0) ** 2 - 0.5 * math.log(2 * math.pi)
    expected = -(log_p + math.log(16 / 3) - math.log(2)) / math.log(2)
    assert bits_per_dim([log_p], log_det, 1, 2)[0] == pytest.approx(expected, abs=1e-14)
    assert expected == pytest.approx(0.78134, abs=1e-5)


def test_logit_log_det_against_jacobian():
    """log|det ∂x/∂y| against slogdet of a central-difference Jacobian (tolerance 1e-7: h² error)."""
    transform = LogitTransform(17, 0.05)
    y = transform.dequantize(IMAGES[:4, :6], rng=3)
    _, log_det = transform.to_logit(y)
    reference = log_abs_det(jacobian(lambda a: transform.to_logit(a)[0], y))
    np.testing.assert_allclose(log_det, reference, atol=1e-7)


def test_dequantize_stays_in_the_pixel_cell_and_round_trips():
    transform = LogitTransform(17, 0.05)
    y = transform.dequantize(IMAGES, rng=4)
    np.testing.assert_array_equal(np.floor(y * 17).astype(int), IMAGES)
    x, _ = transform.to_logit(y)
    np.testing.assert_allclose(transform.to_unit(x), y, atol=1e-12)


@pytest.mark.parametrize("bad, error", [(np.full((2, 3), 17), ValueError), (np.full((2, 3), -1), ValueError),
                                        (np.zeros((2, 3)), TypeError), (np.zeros(3, int), TypeError)])
def test_bad_images_are_refused(bad, error):
    with pytest.raises(error, match="LogitTransform"):
        LogitTransform(17).dequantize(bad)


def test_bad_alpha_is_refused():
    with pytest.raises(ValueError, match="alpha"):
        LogitTransform(17, 0.5)


def test_image_grid_places_images():
    grid = image_grid(np.arange(3 * 4).reshape(3, 4), (2, 2), columns=2, pad=1, fill=-1)
    assert grid.shape == (5, 5)
    np.testing.assert_array_equal(grid[3:5, 0:2], [[8, 9], [10, 11]])
    assert grid[2, 0] == -1 and grid[3, 3] == -1


def test_random_shift_moves_each_image_with_zeros_shifted_in():
    """Every output is its image moved by some (dy, dx) ∈ {−1, 0, 1}², zeros where nothing moved in."""
    from nflows_np.images import random_shift
    images = np.arange(1, 17).reshape(1, 16).repeat(50, axis=0)
    shifted = random_shift(images, (4, 4), 1, rng=0)
    padded = np.pad(images[0].reshape(4, 4), 1)
    candidates = {(dy, dx): padded[dy:dy + 4, dx:dx + 4].reshape(16) for dy in range(3) for dx in range(3)}
    seen = set()
    for row in shifted:
        matches = [key for key, value in candidates.items() if np.array_equal(row, value)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 9  # 50 draws reach all nine shifts
