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
import numpy as np
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


# -- accuracy of the root-finding direction, shared by the residual flows' tests -------------

EPS = np.finfo(np.float64).eps


def jacobian_of_inverse(layer, z):
    """∂g/∂z (N, D, D) from the layer's own VJPs (exact to rounding; the contract test checks them)."""
    n, dim = z.shape
    jac = np.empty((n, dim, dim))
    for i in range(dim):
        layer.inverse(z)
        unit = np.zeros((n, dim))
        unit[:, i] = 1.0
        jac[:, i, :] = layer.backward(unit, np.zeros(n))  # row i of J = Jᵀ e_i
    layer.zero_grad()
    return jac


def round_trip_errors(layer, z):
    """Per sample, ‖g(f(x)) − x‖∞ / (εS) and ‖f(g(z)) − z‖∞ / (εSκ) at x = g(z) (module docstring),
    after asserting that both log-dets are finite."""
    x, log_det_inverse = layer.inverse(z)
    z_back, log_det_forward = layer.forward(x)
    assert np.all(np.isfinite(log_det_inverse)) and np.all(np.isfinite(log_det_forward))
    x_back, _ = layer.inverse(z_back)
    jac = jacobian_of_inverse(layer, z)
    residual_term = np.linalg.norm(jac - np.eye(layer.dim), 2, axis=(1, 2))
    size = (1 + np.abs(x).max(axis=1) + np.abs(z).max(axis=1)) * (1 + residual_term)
    with np.errstate(divide="ignore"):  # κ = ‖J⁻¹‖₂ = 1/σ_min(J), inf where J is singular in float64
        kappa = 1.0 / np.linalg.svd(jac, compute_uv=False)[:, -1]
    return np.abs(x_back - x).max(axis=1) / (EPS * size), np.abs(z_back - z).max(axis=1) / (EPS * size * kappa)


def family_examples(dim, rng):
    """One layer of each family registered here, at dimension ``dim`` and random parameters of scale 0.3."""
    return [randomize_params(layer, rng, 0.3) for layer in (Planar(dim, rng=rng), Radial(dim, rng=rng),
                                                             Sylvester(dim, rng=rng))]
