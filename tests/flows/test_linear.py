"""Linear flows (Linear, LULinear, QRLinear) and ActNorm: the claims the contract test does not cover.

The contract checks (round trip, log-det against a numerical Jacobian, backward
against finite differences) run on these layers through ``tests/cases_linear.py``.

Tolerances are derived from floating-point error bounds (Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed.), with ε = machine epsilon; each
test says which. γ_D = D·ε / (1 − D·ε) bounds the relative rounding error of a
D-term dot product (§3.1, with ε in place of the unit roundoff ε/2: a factor 2
of slack).
"""
import numpy as np
import pytest
import scipy.linalg

from nflows_np.flows.actnorm import ActNorm
from nflows_np.flows.linear import Linear, LULinear, QRLinear
from nflows_np.gradcheck import randomize_params
from nflows_np.linalg import random_orthogonal

EPS = np.finfo(np.float64).eps


def gamma(d):
    """γ_d: bound on the relative rounding error of a d-term dot product."""
    return d * EPS / (1 - d * EPS)


def left_and_triangular(layer):
    """(A, U′) with W = A U′: A = P L for LULinear, Q for QRLinear."""
    factors = layer.factors()
    return (factors[0] @ factors[1], factors[2]) if isinstance(layer, LULinear) else factors


def random_layer(cls, dim, seed):
    """A layer at random parameters (every array N(0, 0.5²), as in the contract cases)."""
    rng = np.random.default_rng(seed)
    return randomize_params(cls(dim, rng), rng)


# -- W from weight() is the matrix the layer applies -----------------------------------

@pytest.mark.parametrize("cls", [LULinear, QRLinear])
def test_weight_is_the_matrix_the_layer_applies(cls):
    """forward(e_j) is column j of W = weight(); inverse(e_j) is column j of weight_inverse() = W⁻¹."""
    dim = 5
    layer = random_layer(cls, dim, seed=0)
    weight = layer.weight()
    applied = layer.forward(np.eye(dim))[0].T
    left, triangular = left_and_triangular(layer)
    if cls is LULinear:
        # Both sides sum the same D products L_ik U′_kj (maybe in another order), each within
        # γ_D (|L||U′|)_ij of the exact value: they differ by at most 2 γ_D (|P L||U′|)_ij.
        tol = 2 * gamma(dim) * (np.abs(left) @ np.abs(triangular))
        assert np.all(np.abs(applied - weight) <= tol), f"max error {np.abs(applied - weight).max():.2e}"
    else:
        # Q applied to U′ by K reflections vs Q formed from I (householder_product), then times U′:
        # each Householder product is normwise backward stable with error ≤ K γ_{cD} ‖·‖ (Higham
        # Lemma 19.3, c a small constant; c = 2 covers the two rank-1 updates of a reflection),
        # so the two differ by at most 2 K γ_{2D} ‖U′‖_F in Frobenius norm.
        tol = 2 * layer.num_reflections * gamma(2 * dim) * np.linalg.norm(triangular)
        assert np.linalg.norm(applied - weight) <= tol, f"error {np.linalg.norm(applied - weight):.2e} > {tol:.2e}"
    # W⁻¹ by the layer's solves against numpy's inverse of W: both within κ(W) γ_D ‖W⁻¹‖ of the
    # exact inverse (normwise forward error of a backward-stable inversion).
    inverse = np.linalg.inv(weight)
    tol = 2 * np.linalg.cond(weight) * gamma(dim) * np.linalg.norm(inverse, 2)
    assert np.abs(layer.weight_inverse() - inverse).max() <= tol


def test_linear_weight_is_the_matrix_it_applies():
    """For the dense layer, forward(I) multiplies by exact 0s and 1s, so it returns W bit for bit."""
    layer = Linear(4, rng=0)
    layer.params["weight"] += 0.3 * np.random.default_rng(1).standard_normal((4, 4))
    np.testing.assert_array_equal(layer.forward(np.eye(4))[0].T, layer.weight())


# -- agreement with scipy.linalg.lu and numpy.linalg.slogdet -------------------------------

def test_lulinear_from_a_matrix_recovers_scipy_lu_factors_and_w():
    rng = np.random.default_rng(2)
    dim = 6
    weight = rng.standard_normal((dim, dim))
    layer = LULinear(dim, weight=weight)
    p, l, u = scipy.linalg.lu(weight)
    p_layer, l_layer, u_layer = layer.factors()
    np.testing.assert_array_equal(p_layer, p)
    np.testing.assert_array_equal(l_layer, l)
    # U′ = U + diag(sign ⊙ exp(log_s)): exp(log|u_ii|) returns u_ii to a few ulps (exp and log
    # each correctly rounded to within 1 ulp, amplified by |log u_ii| in exp): 4 (1 + |log|u_ii||) ε relative.
    np.testing.assert_array_equal(np.triu(u_layer, 1), np.triu(u, 1))
    diag_tol = 4 * (1 + np.abs(np.log(np.abs(np.diag(u))))) * EPS * np.abs(np.diag(u))
    assert np.all(np.abs(np.diag(u_layer) - np.diag(u)) <= diag_tol)
    # Backward error of LU with partial pivoting: |P L U − W| ≤ γ_D |L||U| (Higham Thm 9.3),
    # plus the diagonal's few-ulp difference just bounded.
    tol = gamma(dim) * (np.abs(l) @ np.abs(u)) + np.abs(l) @ np.diag(diag_tol)
    assert np.all(np.abs(layer.weight() - weight) <= tol), f"max error {np.abs(layer.weight() - weight).max():.2e}"
    # log|det W| = Σ log_s = Σ log|u_ii|, what slogdet computes from the same factorisation:
    # D logs, each within ε relative, and a D-term sum: γ_D Σ|log|u_ii|| + D ε.
    sign, log_abs_det = np.linalg.slogdet(weight)
    _, log_det = layer.forward(rng.standard_normal((3, dim)))
    log_u = np.log(np.abs(np.diag(u)))
    np.testing.assert_allclose(log_det, log_abs_det, rtol=0, atol=gamma(dim) * np.abs(log_u).sum() + dim * EPS)
    assert np.prod(layer.sign) * np.linalg.det(p) == sign


def test_lulinear_init_is_the_scipy_lu_of_a_random_rotation():
    """As in Glow: the initial factors are scipy.linalg.lu of an orthogonal W (cond 1)."""
    dim = 5
    layer = LULinear(dim, rng=3)
    weight = layer.weight()
    p_layer, l_layer, u_layer = layer.factors()
    # The rotation is orthogonal to D γ_D (Householder QR, Higham Thm 19.4); re-forming it from
    # its LU factors adds γ_D |L||U′| ≤ γ_D max(|L||U′|) per entry, hence about twice that in WᵀW.
    orthogonality_tol = dim * gamma(dim) + 2 * gamma(dim) * (np.abs(l_layer) @ np.abs(u_layer)).max()
    np.testing.assert_allclose(weight.T @ weight, np.eye(dim), rtol=0, atol=orthogonality_tol)
    p, l, u = scipy.linalg.lu(weight)
    np.testing.assert_array_equal(p_layer, p)
    # W is formed from the factors within γ_D |L||U′|; LU factors move by at most κ(W) times that
    # relative perturbation (first-order LU perturbation bound, Higham §9.13), κ(W) measured.
    tol = np.linalg.cond(weight) * gamma(dim) * np.abs(l_layer).dot(np.abs(u_layer)).max()
    assert np.abs(l - l_layer).max() <= tol and np.abs(u - u_layer).max() <= tol


@pytest.mark.parametrize("cls", [Linear, LULinear, QRLinear])
def test_log_det_equals_slogdet_of_the_weight(cls):
    dim = 5
    rng = np.random.default_rng(4)
    layer = random_layer(cls, dim, seed=5) if cls is not Linear else Linear(dim, rng)
    if cls is Linear:
        layer.params["weight"] += 0.3 * rng.standard_normal((dim, dim))
    weight = layer.weight()
    reference = np.linalg.slogdet(weight)[1]
    x = rng.standard_normal((4, dim))
    z, log_det = layer.forward(x)
    _, log_det_inverse = layer.inverse(z)
    # W formed from factors A U′ carries a normwise relative error δ ≤ K γ_{2D} ‖|A||U′|‖ / ‖W‖ (the
    # bounds of test_weight_is_the_matrix_the_layer_applies; K = 1 for P L; δ = 0 for the dense layer,
    # whose W is the parameter itself). It moves log|det W| by |tr(W⁻¹ ΔW)| ≤ D κ(W) δ; a final
    # D ε covers slogdet's sum of D logs.
    delta = 0.0
    if cls is not Linear:
        left, triangular = left_and_triangular(layer)
        num_factors = layer.num_reflections if cls is QRLinear else 1
        growth = np.linalg.norm(np.abs(left) @ np.abs(triangular), 2) / np.linalg.norm(weight, 2)
        delta = num_factors * gamma(2 * dim) * growth
    tol = dim * np.linalg.cond(weight) * delta + dim * EPS
    np.testing.assert_allclose(log_det, reference, rtol=0, atol=tol)
    np.testing.assert_allclose(log_det_inverse, -reference, rtol=0, atol=tol)
    assert np.ptp(log_det) == 0, "the log-det of a linear map is the same for every sample"


@pytest.mark.parametrize("num_reflections", [1, 2, 5])
def test_qrlinear_q_is_orthogonal(num_reflections):
    dim = 5
    rng = np.random.default_rng(6)
    layer = randomize_params(QRLinear(dim, rng, num_reflections=num_reflections), rng)
    q, triangular = layer.factors()
    # The brief's 1e-12; the bound for K reflections formed in floating point is K γ_{2D} ≈ 2e-15·K.
    error = np.abs(q.T @ q - np.eye(dim)).max()
    assert error <= 1e-12 and error <= 2 * num_reflections * gamma(2 * dim), f"QᵀQ − I = {error:.2e}"
    # det Q = (−1)^K: each reflection has det −1.
    assert np.linalg.slogdet(q)[0] == (-1) ** num_reflections
    np.testing.assert_array_equal(np.tril(triangular, -1), 0.0)
    np.testing.assert_array_equal(np.diag(triangular), np.exp(layer.params["log_s"]))


def test_qrlinear_refuses_a_zero_householder_vector():
    layer = QRLinear(3, rng=0)
    layer.params["vectors"][1] = 0.0
    for run in (layer.forward, layer.inverse):
        with pytest.raises(ValueError, match="QRLinear: Householder vector 1"):
            run(np.ones((2, 3)))


@pytest.mark.parametrize("cls", [LULinear, QRLinear])
@pytest.mark.parametrize("log_s", [800.0, -800.0])
def test_a_diagonal_outside_float64_is_refused(cls, log_s):
    """exp(±800) over/underflows float64 (range ≈ e^±708): a clear error, not inf or a singular solve."""
    layer = cls(3, rng=0)
    layer.params["log_s"][1] = log_s
    for run in (layer.forward, layer.inverse):
        with pytest.raises(ValueError, match=f"{cls.__name__}: exp\\(log_s\\) is outside the float64 range"):
            run(np.ones((2, 3)))


# -- masked entries: gradients exactly zero, structure kept by optimiser updates ------------

MASKS = {  # key -> entries that are not parameters (must have zero gradient)
    "lower": lambda d: np.triu(np.ones((d, d), bool)),
    "upper": lambda d: np.tril(np.ones((d, d), bool)),
}


@pytest.mark.parametrize("cls", [LULinear, QRLinear])
def test_masked_entries_get_exactly_zero_gradient_and_stay_zero(cls):
    dim = 5
    rng = np.random.default_rng(7)
    layer = cls(dim, rng)
    masked = {key: mask(dim) for key, mask in MASKS.items() if key in layer.params}
    for key, mask in masked.items():
        np.testing.assert_array_equal(layer.params[key][mask], 0.0)
    x = rng.standard_normal((8, dim))
    for step in range(3):
        for run in (layer.forward, layer.inverse):
            layer.zero_grad()
            out, _ = run(x)
            layer.backward(rng.standard_normal(out.shape), rng.standard_normal(len(out)))
            for key, mask in masked.items():
                np.testing.assert_array_equal(layer.grads[key][mask], 0.0, err_msg=f"{cls.__name__} grads[{key!r}]")
                assert np.any(layer.grads[key][~mask] != 0.0), "the trained entries do get a gradient"
            for key, value in layer.params.items():
                value -= 0.01 * layer.grads[key]  # an optimiser-like in-place update
    for key, mask in masked.items():
        np.testing.assert_array_equal(layer.params[key][mask], 0.0, err_msg=f"structure of {key!r} after updates")


@pytest.mark.parametrize("cls", [LULinear, QRLinear])
def test_masked_entries_do_not_change_the_map(cls):
    """Whatever sits in the unused triangle (e.g. after randomize_params), the layer ignores it."""
    dim = 4
    layer = random_layer(cls, dim, seed=8)
    x = np.random.default_rng(9).standard_normal((5, dim))
    z, log_det = layer.forward(x)
    for key, mask in MASKS.items():
        if key in layer.params:
            layer.params[key][mask(dim)] = 1e3
    z_again, log_det_again = layer.forward(x)
    np.testing.assert_array_equal(z_again, z)
    np.testing.assert_array_equal(log_det_again, log_det)


# -- the inverse uses triangular solves and is accurate at D = 32 -------------------------

@pytest.mark.parametrize("cls, solves", [(LULinear, 2), (QRLinear, 1)])
def test_inverse_uses_triangular_solves_and_round_trips_at_d32(cls, solves, monkeypatch):
    dim = 32
    rng = np.random.default_rng(10)
    layer = cls(dim, rng)
    for value in layer.params.values():  # move away from the orthogonal start, as training would
        value += 0.1 * rng.standard_normal(value.shape)
    condition = np.linalg.cond(layer.weight())
    # Measured: κ₂(W) ≈ 24 (LULinear) and 3.0 (QRLinear). A backward-stable solve has relative
    # forward error ≲ κ D ε; the round trip is within 1e-12 if κ ≤ 1e-12 / (D ε) ≈ 141.
    assert condition <= 1e-12 / (dim * EPS), f"κ(W) = {condition:.1f}"

    calls = []
    real_solve_triangular = scipy.linalg.solve_triangular

    def counting_solve_triangular(*args, **kwargs):
        calls.append(kwargs)
        return real_solve_triangular(*args, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("a general solve or inverse was called")

    monkeypatch.setattr(scipy.linalg, "solve_triangular", counting_solve_triangular)  # the layer imports it on use
    for module, name in [(np.linalg, "solve"), (np.linalg, "inv"), (scipy.linalg, "solve"), (scipy.linalg, "inv"),
                         (scipy.linalg, "lu_solve")]:
        monkeypatch.setattr(module, name, forbidden)

    x = rng.standard_normal((200, dim))
    z, _ = layer.forward(x)
    assert not calls, "forward needs no solve"
    x_back, _ = layer.inverse(z)
    assert len(calls) == solves, f"expected {solves} triangular solves, got {len(calls)}"
    error = np.abs(x_back - x).max() / np.abs(x).max()
    assert error <= 1e-12, f"round trip error {error:.2e} at κ(W) = {condition:.1f}"


def test_linear_round_trip_at_d32():
    dim = 32
    rng = np.random.default_rng(11)
    layer = Linear(dim, rng)
    layer.params["weight"] += 0.1 * rng.standard_normal((dim, dim))
    condition = np.linalg.cond(layer.weight())
    assert condition <= 1e-12 / (dim * EPS), f"κ(W) = {condition:.1f}"  # same bound as above; measured κ₂(W) ≈ 5.7
    x = rng.standard_normal((200, dim))
    error = np.abs(layer.inverse(layer.forward(x)[0])[0] - x).max() / np.abs(x).max()
    assert error <= 1e-12, f"round trip error {error:.2e} at κ(W) = {condition:.1f}"


# -- Linear: initialisation and singular W ------------------------------------------------

def test_linear_starts_orthogonal():
    dim = 6
    weight = Linear(dim, rng=12).weight()
    # QR's Q is orthogonal to a few γ_D (Householder QR, Higham Thm 19.4).
    np.testing.assert_allclose(weight.T @ weight, np.eye(dim), rtol=0, atol=2 * dim * gamma(dim))
    assert not np.allclose(weight, np.eye(dim)), "the start is a random rotation, not the identity"


@pytest.mark.parametrize("make_singular", [
    lambda w: w.__setitem__((slice(None), 0), 0.0),                # a zero column: an exact zero pivot
    lambda w: w.__setitem__((slice(None), 1), 3.0 * w[:, 0]),      # dependent columns: singular up to rounding
])
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_linear_refuses_a_singular_weight(make_singular, direction):
    layer = Linear(4, rng=13)
    make_singular(layer.params["weight"])
    with pytest.raises(ValueError, match="Linear: weight matrix is singular"):
        getattr(layer, direction)(np.ones((2, 4)))


def test_linear_refuses_a_non_finite_weight():
    layer = Linear(3, rng=0)
    layer.params["weight"][0, 0] = np.nan
    with pytest.raises(ValueError, match="Linear: weight has non-finite"):
        layer.forward(np.ones((2, 3)))


# -- constructors ----------------------------------------------------------------------------

@pytest.mark.parametrize("build, error, message", [
    (lambda: Linear(0), ValueError, "Linear: dim"),
    (lambda: Linear(2, rng="seed"), TypeError, "rng"),
    (lambda: LULinear(2.5), TypeError, "LULinear: dim"),
    (lambda: LULinear(2, weight=np.zeros((2, 2))), ValueError, "LULinear: weight is singular"),
    (lambda: LULinear(3, weight=np.eye(2)), ValueError, "LULinear: weight must have shape"),
    (lambda: LULinear(2, weight=np.ones((3, 2))), ValueError, "LULinear: weight must have shape"),
    (lambda: LULinear(2, weight=[[1.0, np.inf], [0.0, 1.0]]), ValueError, "LULinear: weight contains non-finite"),
    (lambda: QRLinear(3, num_reflections=0), ValueError, "QRLinear: num_reflections"),
    (lambda: QRLinear(3, num_reflections=True), TypeError, "QRLinear: num_reflections"),
    (lambda: ActNorm(3, data_init="yes"), TypeError, "ActNorm: data_init"),
    (lambda: ActNorm(3, min_std=0.0), ValueError, "ActNorm: min_std"),
    (lambda: ActNorm(3, min_std=np.nan), ValueError, "ActNorm: min_std"),
])
def test_constructor_arguments_are_validated(build, error, message):
    with pytest.raises(error, match=message):
        build()


@pytest.mark.parametrize("build", [lambda rng: Linear(4, rng), lambda rng: LULinear(4, rng),
                                   lambda rng: QRLinear(4, rng), lambda rng: random_orthogonal(4, rng)])
def test_seeded_construction_is_reproducible_and_leaves_global_rng_alone(build):
    state = np.random.get_state()
    first, second = build(21), build(np.random.default_rng(21))
    assert np.random.get_state()[1].tolist() == state[1].tolist(), "numpy's global RNG was used"
    if isinstance(first, np.ndarray):
        np.testing.assert_array_equal(first, second)
    else:
        np.testing.assert_array_equal(first.weight(), second.weight())


# -- ActNorm -------------------------------------------------------------------------------

def data(rng, n, dim=3):
    """A batch with a different mean and scale in every dimension, so initialisation has work to do."""
    return np.array([-2.0, 0.5, 4.0])[:dim] + np.array([0.3, 1.0, 5.0])[:dim] * rng.standard_normal((n, dim))


def test_actnorm_first_forward_standardises_the_batch_in_place():
    rng = np.random.default_rng(14)
    layer = ActNorm(3)
    assert not layer.initialized
    params = {key: id(value) for key, value in layer.params.items()}
    x = data(rng, 50)
    z, log_det = layer.forward(x)
    assert layer.initialized
    # (x − μ)/σ in float64: a few ulps of |x − μ|/σ ≲ 5 per entry, so mean and std are within
    # ~1e-15 (measured 8e-16); 1e-12 is the brief's figure.
    np.testing.assert_allclose(z.mean(axis=0), 0.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(log_det, -np.log(x.std(axis=0)).sum(), rtol=0, atol=1e-12)
    assert {key: id(value) for key, value in layer.params.items()} == params, "params set in place"


def test_actnorm_second_forward_does_not_reinitialise():
    rng = np.random.default_rng(15)
    layer = ActNorm(3)
    layer.forward(data(rng, 50))
    before = {key: value.copy() for key, value in layer.params.items()}
    z, _ = layer.forward(data(rng, 50) + 10.0)
    for key, value in layer.params.items():
        np.testing.assert_array_equal(value, before[key])
    assert np.all(np.abs(z.mean(axis=0)) > 1.0), "a shifted second batch is not re-centred"


def test_actnorm_initialize_forces_reinitialisation():
    rng = np.random.default_rng(16)
    layer = ActNorm(3)
    layer.forward(data(rng, 50))
    x = data(rng, 50) + 10.0
    layer.initialize(x)
    z, _ = layer.forward(x)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, rtol=0, atol=1e-12)  # as in the first test
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=0, atol=1e-12)


def test_actnorm_inverse_first_raises_and_leaves_the_layer_uninitialised():
    layer = ActNorm(3)
    with pytest.raises(RuntimeError, match=r"ActNorm\.inverse: the layer is not initialised.*data_init=False"):
        layer.inverse(np.zeros((4, 3)))
    assert not layer.initialized
    np.testing.assert_array_equal(layer.params["s"], 0.0)
    layer.forward(data(np.random.default_rng(17), 10))  # forward still initialises afterwards
    assert layer.initialized


def test_actnorm_without_data_init_starts_at_the_identity():
    layer = ActNorm(3, data_init=False)
    assert layer.initialized
    z = np.random.default_rng(18).standard_normal((4, 3))
    x, log_det = layer.inverse(z)
    np.testing.assert_array_equal(x, z)
    np.testing.assert_array_equal(log_det, 0.0)


@pytest.mark.parametrize("n", [0, 1])
def test_actnorm_first_batch_of_fewer_than_two_samples_is_refused(n):
    layer = ActNorm(3)
    with pytest.raises(ValueError, match=f"ActNorm: .*at least 2 samples.*N = {n}"):
        layer.forward(np.ones((n, 3)))
    assert not layer.initialized
    np.testing.assert_array_equal(layer.params["s"], 0.0)
    np.testing.assert_array_equal(layer.params["t"], 0.0)


def test_actnorm_constant_dimension_is_centred_with_a_bounded_scale():
    rng = np.random.default_rng(19)
    x = data(rng, 20)
    x[:, 1] = 7.0
    layer = ActNorm(3, min_std=1e-6)
    z, log_det = layer.forward(x)
    np.testing.assert_array_equal(z[:, 1], 0.0)  # 7·exp(s) + t with t = −7·exp(s): the same product, so exactly 0
    assert layer.params["s"][1] == -np.log(1e-6)
    assert np.all(np.isfinite(z)) and np.all(np.isfinite(log_det))
