"""Radial flow: finite at its centre, with the slide's log-det (the contract test covers the rest)."""
import numpy as np

from nflows_np.flows.radial import Radial
from nflows_np.gradcheck import randomize_params
from nflows_np.numerics import softplus

EPS = np.finfo(np.float64).eps


# -- radial: the centre ------------------------------------------------------------------

def test_radial_at_its_centre_is_finite_with_the_slide_log_det():
    """z = z₀ (r = 0): x = z₀, log-det = D log(1 + β/α) (h′r = 0 there), and finite gradients both ways."""
    rng = np.random.default_rng(2)
    layer = randomize_params(Radial(3, rng=rng), rng, 1.0)
    z0 = layer.params["z0"].copy()
    z = np.stack([z0, z0 + 1e-300, z0 + rng.standard_normal(3)])
    x, log_det = layer.inverse(z)
    np.testing.assert_array_equal(x[0], z0)
    alpha, p = softplus(layer.params["alpha_raw"]), softplus(layer.params["beta_raw"])  # p = α + β
    expected = 3 * np.log(p / alpha)
    assert abs(log_det[0] - expected) <= 16 * EPS * (1 + abs(expected))
    assert np.all(np.isfinite(layer.backward(np.ones((3, 3)), np.ones(3))))
    z_back, log_det_back = layer.forward(x)
    np.testing.assert_array_equal(z_back[0], z0)
    assert np.all(np.isfinite(log_det_back)) and np.all(np.isfinite(layer.backward(np.ones((3, 3)), np.ones(3))))


