"""Contract cases: NICE / RealNVP coupling and the MAF layer, at random parameters.

Parameters are N(0, 0.3²) draws (``randomize_params(…, scale=0.3)``): far from
the identity initialisation (every weight non-zero, log-scales of order 0.3–1),
yet well-conditioned, so finite differences of the contract test stay accurate.
Hidden widths (8, 8) keep the finite-difference checks fast.
"""
import numpy as np
from flow_cases import FlowCase

from nflows_np.flows.autoregressive import MaskedAutoregressive
from nflows_np.flows.coupling import AdditiveCoupling, AffineCoupling
from nflows_np.gradcheck import randomize_params

SCALE = 0.3
HIDDEN = (8, 8)
MASKS = {"D2-mask10": [1, 0], "D2-mask01": [0, 1], "D5-mask10110": [1, 0, 1, 1, 0]}


def _coupling(cls, mask):
    return lambda rng: randomize_params(cls(mask, hidden=HIDDEN, rng=rng), rng, scale=SCALE)


def _affine_scale(mask, scale, **kwargs):
    return lambda rng: randomize_params(AffineCoupling(mask, hidden=HIDDEN, rng=rng, scale=scale, **kwargs), rng,
                                        scale=SCALE)


def _maf(dim, order=None):
    return lambda rng: randomize_params(MaskedAutoregressive(dim, hidden=HIDDEN, rng=rng, order=order), rng,
                                        scale=SCALE)


CASES = [
    FlowCase(f"{cls.__name__}-{label}", _coupling(cls, mask), len(mask))
    for cls in (AdditiveCoupling, AffineCoupling) for label, mask in MASKS.items()
] + [
    # the other log-scale maps (module docstring of coupling.py), each with a split of 1 and of 3
    FlowCase(f"AffineCoupling-{label}-scale-{name}", _affine_scale(mask, scale, **kwargs), len(mask))
    for name, scale, kwargs in (("exp", "exp", {}), ("sigmoid", "sigmoid", {}), ("tanh6", "tanh", {"scale_bound": 6.0}))
    for label, mask in (("D2-mask10", [1, 0]), ("D5-mask10110", [1, 0, 1, 1, 0]))
] + [
    FlowCase("MaskedAutoregressive-D1", _maf(1), 1),
    FlowCase("MaskedAutoregressive-D2", _maf(2), 2),
    FlowCase("MaskedAutoregressive-D4", _maf(4), 4),
    FlowCase("MaskedAutoregressive-D4-order2031", _maf(4, order=[2, 0, 3, 1]), 4),
]


def family_examples(dim, rng):
    """One layer of each family registered here, at dimension ``dim`` ≥ 2 and random parameters."""
    mask = np.arange(dim) % 2
    return [randomize_params(AffineCoupling(mask, hidden=(8, 8), rng=rng), rng, 0.3),
            randomize_params(AdditiveCoupling(1 - mask, hidden=(8, 8), rng=rng), rng, 0.3),
            randomize_params(MaskedAutoregressive(dim, hidden=(8, 8), rng=rng), rng, 0.3)]
