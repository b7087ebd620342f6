"""A whole multi-scale Glow: its log-likelihood against slogdet of the full Jacobian, and its normalisation."""
import math

import numpy as np
import pytest

from nflows_np.gradcheck import jacobian, log_abs_det, randomize_params
from nflows_np.models import glow_image
from nflows_np.numerics import LOG_2PI


@pytest.mark.parametrize("shape, levels", [((1, 2, 2), 1), ((1, 4, 4), 2), ((2, 4, 4), 2)])
def test_glow_log_likelihood_equals_change_of_variables_with_full_jacobian(shape, levels):
    """log p(x) = log N(f(x); 0, I) + log|det ∂f/∂x|, the Jacobian of the whole model by central
    differences (h = 1e-5, error ~1e-9) and numpy's slogdet; tolerance 1e-6. ReLU conditioners (Glow's)."""
    rng = np.random.default_rng(0)
    model = randomize_params(glow_image(shape, levels=levels, steps=2, hidden=6, data_init=False, rng=rng), rng, 0.3)
    dim = int(np.prod(shape))
    x = rng.standard_normal((5, dim))
    z, _ = model.forward(x)
    expected = -0.5 * np.sum(z ** 2, axis=1) - 0.5 * dim * LOG_2PI + log_abs_det(jacobian(lambda a: model.forward(a)[0], x))
    np.testing.assert_allclose(model.log_prob(x), expected, atol=1e-6)


def test_glow_density_on_a_2x2_image_integrates_to_one():
    """∫ p(x) dx = E_q[p(x)/q(x)], q = N(0, 3² I) on R⁴, 200 000 draws: within 5 standard errors of 1."""
    rng = np.random.default_rng(1)
    model = randomize_params(glow_image((1, 2, 2), levels=1, steps=2, hidden=6, data_init=False, rng=rng), rng, 0.3)
    sigma, n = 3.0, 200_000
    x = sigma * rng.standard_normal((n, 4))
    log_q = -0.5 * np.sum((x / sigma) ** 2, axis=1) - 2 * LOG_2PI - 4 * math.log(sigma)
    weights = np.exp(model.log_prob(x) - log_q)
    mean, error = weights.mean(), weights.std() / math.sqrt(n)
    assert abs(mean - 1.0) < 5 * error, f"∫ p = {mean:.4f} ± {error:.4f}"
    assert error < 0.02, f"the estimate is too noisy to test anything: standard error {error:.3f}"


def test_factored_half_passes_the_second_level_unchanged():
    """After level 1 of a (1, 4, 4) Glow, channels 2–3 of the squeezed image are z's last 8 coordinates."""
    rng = np.random.default_rng(2)
    model = randomize_params(glow_image((1, 4, 4), levels=2, steps=1, hidden=4, data_init=False, rng=rng), rng, 0.3)
    x = rng.standard_normal((3, 16))
    h = x
    for layer in model.layers[:-1]:  # level 1, without its FactorOut
        h, _ = layer.forward(h)
    z, _ = model.forward(x)
    np.testing.assert_array_equal(z[:, 8:], h[:, 8:])
    assert not np.allclose(z[:, :8], h[:, :8])
