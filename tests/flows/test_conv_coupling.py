"""The convolutional coupling with Glow's ReLU conditioner: identity at start, check_flow with small steps."""
import numpy as np
import pytest

from nflows_np.flows.conv_coupling import ConvAffineCoupling
from nflows_np.gradcheck import check_flow, randomize_params


def test_starts_as_the_identity():
    layer = ConvAffineCoupling((4, 3, 3), hidden=8, rng=0)
    x = np.random.default_rng(1).standard_normal((5, 36))
    z, log_det = layer.forward(x)
    np.testing.assert_array_equal(z, x)
    np.testing.assert_array_equal(log_det, 0.0)


def test_relu_conditioner_passes_check_flow():
    """Central differences with h = 1e-6 (gradients) and 1e-5 (Jacobian) cross a ReLU kink only if a
    pre-activation lies within ~1e-5 of 0, which at these fixed draws none does (the check passes at 1e-6)."""
    rng = np.random.default_rng(2)
    layer = randomize_params(ConvAffineCoupling((3, 2, 4), hidden=5, rng=rng), rng, scale=0.3)
    x = rng.standard_normal((4, 24))
    report = check_flow(layer, x, rng=rng)
    assert report.ok, str(report)


def test_only_the_second_half_of_the_channels_changes():
    rng = np.random.default_rng(3)
    layer = randomize_params(ConvAffineCoupling((3, 2, 2), hidden=4, rng=rng), rng, scale=0.3)
    x = rng.standard_normal((2, 12))
    z, _ = layer.forward(x)
    np.testing.assert_array_equal(z[:, :4], x[:, :4])  # channel 0 (⌊3/2⌋ = 1 channel × 4 pixels)
    assert np.all(z[:, 4:] != x[:, 4:])


@pytest.mark.parametrize("shape", [(4, 4, 4), (8, 2, 2)])  # im2col and dense convolutions
def test_interleaved_passes_of_same_shaped_couplings_keep_their_gradients(shape):
    """Networks of the same shapes share their backward arrays and keep their forward ones: two couplings
    run forward A, forward B, backward B, backward A give exactly the gradients each gives alone."""
    rng = np.random.default_rng(4)
    a, b = (randomize_params(ConvAffineCoupling(shape, hidden=6, rng=rng), rng, scale=0.3) for _ in range(2))
    x_a, x_b, g_a, g_b = (rng.standard_normal((3, int(np.prod(shape)))) for _ in range(4))
    gld = rng.standard_normal(3)
    alone = []
    for layer, x, g in ((a, x_a, g_a), (b, x_b, g_b)):
        layer.zero_grad()
        layer.forward(x)
        alone.append((layer.backward(g, gld), {k: v.copy() for k, v in layer.grads.items()}))
    a.zero_grad()
    b.zero_grad()
    a.forward(x_a)
    b.forward(x_b)
    together = [(b.backward(g_b, gld), b.grads), (a.backward(g_a, gld), a.grads)][::-1]
    for (grad_alone, grads_alone), (grad_together, grads_together) in zip(alone, together):
        np.testing.assert_array_equal(grad_together, grad_alone)
        for key in grads_alone:
            np.testing.assert_array_equal(grads_together[key], grads_alone[key])
