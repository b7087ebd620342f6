"""Contract cases: residual flows (planar, radial, Sylvester) and a composition of them.

Parameters are N(0, 1) draws (``randomize_params``), far from the initialisation.

Root-finding direction (forward of Planar and Sylvester): the solver's stated accuracy is
a backward error ‖g(f(x)) − x‖∞ ≤ 64ε·(1 + ‖x‖∞ + ‖z‖∞)(1 + ‖∂g/∂z − I‖₂), and the error
in z is at most that times ‖(∂g/∂z)⁻¹‖₂ (tests/test_residual.py checks both over 200
parameter draws). At the contract test's draws (seed 1234, six inputs) |x|, |z| ≤ 4.4,
‖∂g/∂z − I‖₂ ≤ 5.2 and ‖(∂g/∂z)⁻¹‖₂ ≤ 4.1, and the bound is at most 1.4e-12 (measured,
case Sylvester-triangular-D4-reverse): ``inverse_tol=1e-11`` covers it with a margin of
seven and is ten times tighter than the default 1e-10 (measured round trips: ~1e-16).
"""
from flow_cases import FlowCase

from nflows_np.composition import FlowModel
from nflows_np.flows.planar import Planar
from nflows_np.flows.radial import Radial
from nflows_np.flows.sylvester import Sylvester
from nflows_np.gradcheck import randomize_params

ROOT_FINDER = {"inverse_tol": 1e-11}


def _planar_plain(rng):
    """invertible=False (û = u), with wᵀu ≥ −1 so the plain map is invertible: u flipped if not."""
    layer = randomize_params(Planar(3, rng=rng, invertible=False), rng, 1.0)
    if not layer.is_invertible:
        layer.params["u"] *= -1.0
    return layer


def _stack(rng):
    return FlowModel([
        randomize_params(Planar(2, rng=rng), rng, 1.0),
        randomize_params(Radial(2, rng=rng), rng, 1.0),
        randomize_params(Sylvester(2, variant="triangular", rng=rng), rng, 1.0),
        randomize_params(Sylvester(2, variant="triangular", reverse=True, rng=rng), rng, 1.0),
    ])


def _sylvester(dim, **kwargs):
    return lambda rng: randomize_params(Sylvester(dim, rng=rng, **kwargs), rng, 1.0)


CASES = [
    *(FlowCase(f"Planar-D{d}", lambda rng, d=d: randomize_params(Planar(d, rng=rng), rng, 1.0), d,
               check_kwargs=ROOT_FINDER) for d in (1, 2, 5)),
    FlowCase("Planar-plain-D3", _planar_plain, 3, check_kwargs=ROOT_FINDER),
    # Radial: both directions in closed form; the default inverse_tol (1e-10) applies.
    *(FlowCase(f"Radial-D{d}", lambda rng, d=d: randomize_params(Radial(d, rng=rng), rng, 1.0), d) for d in (2, 5)),
    FlowCase("Sylvester-orthogonal-D2-M1", _sylvester(2, variant="orthogonal", m=1), 2, check_kwargs=ROOT_FINDER),
    FlowCase("Sylvester-orthogonal-D4-M2", _sylvester(4, variant="orthogonal", m=2), 4, check_kwargs=ROOT_FINDER),
    FlowCase("Sylvester-householder-D2", _sylvester(2, variant="householder"), 2, check_kwargs=ROOT_FINDER),
    FlowCase("Sylvester-householder-D4-K3", _sylvester(4, variant="householder", num_householder=3), 4,
             check_kwargs=ROOT_FINDER),
    FlowCase("Sylvester-triangular-D2", _sylvester(2, variant="triangular"), 2, check_kwargs=ROOT_FINDER),
    FlowCase("Sylvester-triangular-D4-reverse", _sylvester(4, variant="triangular", reverse=True), 4,
             check_kwargs=ROOT_FINDER),
    FlowCase("FlowModel-planar-radial-sylvester", _stack, 2, check_kwargs=ROOT_FINDER),
]
