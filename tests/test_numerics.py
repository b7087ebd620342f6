"""The numerics shared across families: each against scipy or a direct formula where that is accurate."""
import numpy as np
import scipy.special

from nflows_np.numerics import (LOG_SCALE_BOUND, bounded_log_scale, bounded_log_scale_slope, logcosh, logsumexp,
                                sigmoid, softplus)


def test_sigmoid_and_softplus_against_scipy():
    x = np.linspace(-800, 800, 4001)
    np.testing.assert_allclose(sigmoid(x), scipy.special.expit(x), rtol=1e-15, atol=1e-307)  # denormals aside
    np.testing.assert_allclose(softplus(x), np.logaddexp(0, x), rtol=1e-15, atol=0)
    for scalar in (-50.0, -1e-3, 0.0, 2.0, 700.0):
        assert abs(sigmoid(scalar) - scipy.special.expit(scalar)) <= 1e-16 * max(1.0, scipy.special.expit(scalar))
        assert abs(softplus(scalar) - np.logaddexp(0, scalar)) <= 1e-15 * max(1.0, softplus(scalar))


def test_logsumexp_against_scipy_including_all_minus_infinity_rows():
    rng = np.random.default_rng(0)
    a = 300.0 * rng.standard_normal((50, 7))
    a[3] = -np.inf
    a[4, :3] = -np.inf
    np.testing.assert_allclose(logsumexp(a, axis=1), scipy.special.logsumexp(a, axis=1), rtol=1e-14)
    np.testing.assert_allclose(logsumexp(a.T, axis=0), scipy.special.logsumexp(a, axis=1), rtol=1e-14)
    assert logsumexp(a, axis=1)[3] == -np.inf


def test_logcosh_does_not_overflow_and_bounded_log_scale_slope_is_its_derivative():
    x = np.array([-1000.0, -3.0, 0.0, 0.5, 1000.0])
    np.testing.assert_allclose(logcosh(x[1:4]), np.log(np.cosh(x[1:4])), rtol=1e-14)
    np.testing.assert_allclose(logcosh(x[[0, 4]]), 1000.0 - np.log(2.0), rtol=1e-15)
    raw = np.linspace(-20, 20, 81)
    s = bounded_log_scale(raw)
    assert np.all(np.abs(s) < LOG_SCALE_BOUND + 1e-15)
    h = 1e-6
    numeric = (bounded_log_scale(raw + h) - bounded_log_scale(raw - h)) / (2 * h)
    np.testing.assert_allclose(bounded_log_scale_slope(s), numeric, atol=1e-9)
