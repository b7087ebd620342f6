"""Contract cases: Linear, LULinear, QRLinear and ActNorm at D = 1, 2, 5, and a composition.

Parameters are random and away from the identity and from the orthogonal
initialisation (so W⁻ᵀ ≠ W and a transposition error would show):

- Linear: its random orthogonal W plus 0.3·N(0, 1) entries.
- LULinear, QRLinear: every parameter array set to N(0, 0.5²) by
  ``randomize_params`` — including the unused (masked) triangle of "lower"
  and "upper", which checks that those entries are really ignored.
- ActNorm: data-initialised on check_flow's first batch, drawn with mean 3
  and std 2 so that s and t end up non-trivial; and a ``data_init=False``
  layer with randomised s, t.
"""
from flow_cases import FlowCase

from nflows_np.composition import FlowModel
from nflows_np.flows.actnorm import ActNorm
from nflows_np.flows.linear import Linear, LULinear, QRLinear
from nflows_np.gradcheck import randomize_params


def _linear(dim):
    def make(rng):
        layer = Linear(dim, rng)
        layer.params["weight"] += 0.3 * rng.standard_normal((dim, dim))
        return layer
    return make


def _shifted_normal(dim):
    return lambda rng, n: 3.0 + 2.0 * rng.standard_normal((n, dim))


def _composition(rng):
    return FlowModel([ActNorm(3), randomize_params(LULinear(3, rng), rng), randomize_params(QRLinear(3, rng), rng),
                      _linear(3)(rng)])


CASES = [case for dim in (1, 2, 5) for case in (
    FlowCase(f"Linear-D{dim}", _linear(dim), dim),
    FlowCase(f"LULinear-D{dim}", lambda rng, dim=dim: randomize_params(LULinear(dim, rng), rng), dim),
    FlowCase(f"QRLinear-D{dim}", lambda rng, dim=dim: randomize_params(QRLinear(dim, rng), rng), dim),
    FlowCase(f"ActNorm-data-init-D{dim}", lambda rng, dim=dim: ActNorm(dim), dim, _shifted_normal(dim)),
    FlowCase(f"ActNorm-random-D{dim}", lambda rng, dim=dim: randomize_params(ActNorm(dim, data_init=False), rng), dim),
)] + [
    FlowCase("QRLinear-D5-K2", lambda rng: randomize_params(QRLinear(5, rng, num_reflections=2), rng), 5),
    FlowCase("FlowModel-ActNorm-LU-QR-Linear-D3", _composition, 3, _shifted_normal(3)),
]


def family_examples(dim, rng):
    """One layer of each family registered here, at dimension ``dim`` and random parameters."""
    return [LULinear(dim, rng=rng), QRLinear(dim, rng=rng), Linear(dim, rng=rng)]
