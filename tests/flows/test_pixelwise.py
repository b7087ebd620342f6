"""The invertible 1×1 convolution and channel ActNorm: log-dets with the H·W factor, data-dependent init."""
import numpy as np

from nflows_np.flows.pixelwise import ChannelActNorm, InvertibleConv1x1
from nflows_np.gradcheck import randomize_params


def test_conv1x1_is_w_at_every_pixel_and_log_det_is_hw_log_det_w():
    """z[:, :, i, j] = W x[:, :, i, j] and log_det = H·W·log|det W| (numpy slogdet; tolerance 1e-12)."""
    rng = np.random.default_rng(0)
    layer = randomize_params(InvertibleConv1x1((3, 2, 5), rng), rng)
    x = rng.standard_normal((4, 30))
    z, log_det = layer.forward(x)
    w = layer.weight()
    expected = np.einsum("oc,nchw->nohw", w, x.reshape(4, 3, 2, 5)).reshape(4, 30)
    np.testing.assert_allclose(z, expected, atol=1e-12)
    np.testing.assert_allclose(log_det, 2 * 5 * np.linalg.slogdet(w)[1], atol=1e-12)


def test_channel_actnorm_initialises_per_channel_over_batch_and_pixels():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((50, 3, 4, 4)) * np.array([1.0, 5.0, 0.2])[:, None, None]
         + np.array([-2.0, 3.0, 7.0])[:, None, None])
    layer = ChannelActNorm((3, 4, 4))
    z, log_det = layer.forward(x.reshape(50, -1))
    channels = z.reshape(50, 3, 16)
    np.testing.assert_allclose(channels.mean(axis=(0, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(channels.std(axis=(0, 2)), 1.0, atol=1e-12)
    np.testing.assert_allclose(log_det, 16 * layer.params["actnorm.s"].sum(), atol=1e-12)
