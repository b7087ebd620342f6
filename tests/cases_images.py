"""Contract cases: the image layers (squeeze, 1×1 convolution, channel ActNorm, channel permutation,
convolutional coupling, factor-out, masked and emerging convolutions) and a two-level Glow, on small images.

Parameters are N(0, 0.3²) draws (``randomize_params(…, scale=0.3)``): far from the
initialisations (the coupling's zero last layer, the 1×1 convolution's orthogonal
start), yet well-conditioned for finite differences. Shapes are small, with an
odd channel count and non-square images, so that a transposed axis would show.
ChannelActNorm is data-initialised on check_flow's first batch, drawn with mean 3 and std 2.

The couplings' conditioner uses tanh here (``activation="tanh"``), not Glow's ReLU: the
scipy cross-check differentiates adaptively with steps up to 0.5, which cross ReLU kinks and
give a wrong reference Jacobian (measured: 1.6e-4 off on the two-level Glow). The ReLU
network is checked with small central differences in tests/flows/test_conv_coupling.py.
"""
from flow_cases import FlowCase

from nflows_np.composition import FlowModel
from nflows_np.flows.conv_coupling import ConvAffineCoupling
from nflows_np.flows.emerging import EmergingConv, MaskedConv2d
from nflows_np.flows.multiscale import FactorOut
from nflows_np.flows.pixelwise import ChannelActNorm, ChannelPermutation, InvertibleConv1x1
from nflows_np.flows.squeeze import Squeeze
from nflows_np.gradcheck import randomize_params
from nflows_np.models import glow_image

SCALE = 0.3


def _randomized(make):
    return lambda rng: randomize_params(make(rng), rng, scale=SCALE)


def _shifted(dim):
    return lambda rng, n: 3.0 + 2.0 * rng.standard_normal((n, dim))


def _factor_out(rng):
    inner = FlowModel([randomize_params(InvertibleConv1x1((2, 2, 1), rng), rng, SCALE),
                       randomize_params(ConvAffineCoupling((2, 2, 1), hidden=4, rng=rng, activation="tanh"), rng, SCALE)])
    return FactorOut(inner, 12)


def _glow(rng):
    return randomize_params(glow_image((1, 4, 4), levels=2, steps=1, hidden=4, activation="tanh", data_init=False, rng=rng), rng,
                            scale=SCALE)


CASES = [
    FlowCase("Squeeze-2x4x6", lambda rng: Squeeze((2, 4, 6)), 48),
    FlowCase("InvertibleConv1x1-3x2x3", _randomized(lambda rng: InvertibleConv1x1((3, 2, 3), rng)), 18),
    FlowCase("ChannelActNorm-data-init-3x2x2", lambda rng: ChannelActNorm((3, 2, 2)), 12, _shifted(12)),
    FlowCase("ChannelActNorm-random-2x3x2", _randomized(lambda rng: ChannelActNorm((2, 3, 2), data_init=False)), 12),
    FlowCase("ChannelPermutation-3x2x2", lambda rng: ChannelPermutation((3, 2, 2), rng.permutation(3)), 12),
    FlowCase("ConvAffineCoupling-2x3x3", _randomized(lambda rng: ConvAffineCoupling((2, 3, 3), hidden=4, rng=rng, activation="tanh")), 18),
    FlowCase("ConvAffineCoupling-3x2x4", _randomized(lambda rng: ConvAffineCoupling((3, 2, 4), hidden=3, rng=rng, activation="tanh")), 24),
    FlowCase("FactorOut-3x2x2-keep-2x2x1", _factor_out, 12),
    FlowCase("GlowImage-1x4x4-L2-K1", _glow, 16),
]

CASES += [
    FlowCase("MaskedConv2d-lower-2x3x3-k3", _randomized(lambda rng: MaskedConv2d((2, 3, 3), 3, "lower", rng)), 18),
    FlowCase("MaskedConv2d-upper-3x2x3-k3", _randomized(lambda rng: MaskedConv2d((3, 2, 3), 3, "upper", rng)), 18),
    FlowCase("MaskedConv2d-lower-1x4x4-k5", _randomized(lambda rng: MaskedConv2d((1, 4, 4), 5, "lower", rng)), 16),
    FlowCase("EmergingConv-2x3x3-k3", _randomized(lambda rng: EmergingConv((2, 3, 3), 3, rng)), 18),
]
