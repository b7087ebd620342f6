"""The one contract test (DESIGN §5), run on every registered layer in both directions.

Layers register in ``tests/cases_<family>.py``; see ``flow_cases.py``.
"""
import numpy as np
import pytest
from flow_cases import all_cases

from nflows_np.gradcheck import CHECKS, DIRECTIONS, check_backward_params, make_probe

CASES = all_cases()
IDS = [case.name for case in CASES]


@pytest.fixture(params=CASES, ids=IDS)
def case(request):
    return request.param


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("check", CHECKS, ids=[check.__name__ for check in CHECKS])
def test_contract(case, check, direction):
    """One property of the contract (shapes, round trip, opposite log-dets, log_det = slogdet(J),
    backward = finite differences for the input and every parameter, accumulation, bad input)."""
    rng = np.random.default_rng(1234)
    layer = case.make(rng)
    identity = {key: id(value) for key, value in layer.grads.items()}
    probe = make_probe(layer, case.inputs(rng, 6), direction, rng, **case.check_kwargs)
    results = check(probe)
    assert len(results) >= (len(layer.params) if check is check_backward_params else 1)
    assert all(result.passed for result in results), "\n".join(result.line() for result in results)
    assert {key: id(value) for key, value in layer.grads.items()} == identity, "grads changed identity"


def test_scipy_jacobian_log_det(case):
    """log_det also agrees with slogdet of scipy.differentiate.jacobian (adaptive, high order).

    Tolerance 1e-8: scipy's estimate is accurate to ~1e-10 here; the gap to the
    central-difference check is the point of running both.
    """
    rng = np.random.default_rng(99)
    layer = case.make(rng)
    x = case.inputs(rng, 3)
    from nflows_np.gradcheck import jacobian, log_abs_det
    for run, points in ((layer.forward, x), (layer.inverse, layer.forward(x)[0])):
        _, log_det = run(points)
        reference = log_abs_det(jacobian(lambda a: run(a)[0], points, method="scipy"))
        np.testing.assert_allclose(log_det, reference, rtol=0, atol=1e-8 * max(1.0, np.abs(reference).max()),
                                   err_msg=f"{case.name}.{run.__name__}: log_det against scipy Jacobian")


def test_backward_before_any_pass_raises(case):
    layer = case.make(np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="no forward or inverse pass"):
        layer.backward(np.zeros((2, case.dim)), np.zeros(2))


@pytest.mark.parametrize("bad, error", [
    ("1-D", ValueError), ("wrong D", ValueError), ("NaN", ValueError), ("inf", ValueError),
    ("strings", TypeError), ("objects", TypeError), ("complex", TypeError),
])
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_bad_input_names_the_layer(case, bad, error, direction):
    layer = case.make(np.random.default_rng(0))
    d = case.dim
    value = {
        "1-D": np.zeros(d), "wrong D": np.zeros((3, d + 1)), "NaN": np.full((3, d), np.nan),
        "inf": np.full((3, d), -np.inf), "strings": np.full((3, d), "a"),
        "objects": np.array([[object()] * d] * 3), "complex": np.zeros((3, d), complex),
    }[bad]
    with pytest.raises(error, match=type(layer).__name__):
        getattr(layer, direction)(value)


@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_zero_samples(case, direction):
    layer = case.make(np.random.default_rng(0))
    layer.forward(case.inputs(np.random.default_rng(1), 4))  # data-dependent initialisation, if any
    out, log_det = getattr(layer, direction)(np.zeros((0, case.dim)))
    assert out.shape == (0, case.dim) and log_det.shape == (0,)
    grad_in = layer.backward(np.zeros((0, case.dim)), np.zeros(0))
    assert grad_in.shape == (0, case.dim)


@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_extreme_inputs_are_finite_or_refused(case, direction):
    """|x| = 1e4: finite results or a clear error naming the layer, never a silent NaN."""
    rng = np.random.default_rng(3)
    layer = case.make(rng)
    layer.forward(case.inputs(rng, 4))
    extreme = 1e4 * np.sign(rng.standard_normal((5, case.dim)))
    try:
        out, log_det = getattr(layer, direction)(extreme)
    except (ValueError, FloatingPointError) as err:
        assert type(layer).__name__ in str(err), f"error does not name the layer: {err}"
        return
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(log_det)), (
        f"{case.name}.{direction} at |x| = 1e4 gave non-finite output without an error")


def test_backward_checks_its_arguments(case):
    layer = case.make(np.random.default_rng(0))
    x = case.inputs(np.random.default_rng(1), 4)
    layer.forward(x)
    with pytest.raises(ValueError, match="grad_log_det"):
        layer.backward(np.zeros((4, case.dim)), np.zeros(3))
    with pytest.raises(ValueError):
        layer.backward(np.zeros((4, case.dim + 1)), np.zeros(4))


@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_results_belong_to_the_caller(case, direction):
    """What a pass or a backward returns is not overwritten by later passes of the same shape.

    Layers may keep work buffers between steps for speed; a buffer handed to the caller
    would silently change under them (e.g. two VJPs compared in a gradient check).
    Fails if any returned array aliases a buffer that a later call writes.
    """
    rng = np.random.default_rng(5)
    layer = case.make(rng)
    run = getattr(layer, direction)
    x1, x2 = case.inputs(rng, 6), case.inputs(rng, 6)
    layer.forward(x1)  # data-dependent initialisation, if any
    out1, log_det1 = run(x1)
    grad1 = layer.backward(rng.standard_normal(out1.shape), rng.standard_normal(6))
    kept = [out1.copy(), log_det1.copy(), grad1.copy()]
    out2, _ = run(x2)
    grad2 = layer.backward(rng.standard_normal(out2.shape), rng.standard_normal(6))
    again = layer.backward(rng.standard_normal(out2.shape), rng.standard_normal(6))
    for name, now, before in zip(("output", "log_det", "input gradient"), (out1, log_det1, grad1), kept):
        np.testing.assert_array_equal(now, before, err_msg=f"{case.name}.{direction}: the {name} of the "
                                                           "first pass changed after a later one")
    assert not np.shares_memory(grad2, again), f"{case.name}: two backward calls returned the same buffer"
