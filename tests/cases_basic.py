"""Contract cases: elementwise flows (affine, sinh-arcsinh), permutations, and a composition of them."""
from flow_cases import FlowCase

import nflows_np as nf
from nflows_np.gradcheck import randomize_params


def _model(rng):
    return nf.FlowModel([
        randomize_params(nf.ElementwiseAffine(3), rng),
        nf.Permutation([2, 0, 1]),
        randomize_params(nf.ElementwiseAffine(3), rng),
        nf.Reverse(3),
    ])


CASES = [
    FlowCase("ElementwiseAffine-D3", lambda rng: randomize_params(nf.ElementwiseAffine(3), rng), 3),
    FlowCase("SinhArcsinh-D1", lambda rng: randomize_params(nf.SinhArcsinh(1), rng), 1),
    FlowCase("SinhArcsinh-D3", lambda rng: randomize_params(nf.SinhArcsinh(3), rng), 3),
    FlowCase("Permutation-D4", lambda rng: nf.Permutation(rng.permutation(4)), 4),
    FlowCase("Reverse-D3", lambda rng: nf.Reverse(3), 3),
    FlowCase("FlowModel-elementwise-permutation", _model, 3),
]


def family_examples(dim, rng):
    """One layer of each family registered here, at dimension ``dim`` and random parameters."""
    return [randomize_params(nf.ElementwiseAffine(dim), rng, 0.3), randomize_params(nf.SinhArcsinh(dim), rng, 0.3),
            nf.Reverse(dim)]
