"""Assignment ``realnvp_coupling``: the RealNVP affine coupling, trained on moons (numpy only).

The student writes, in the template ``lectures/homework/realnvp_coupling.py``:

* ``MLP(sizes)`` -- ``forward(h)`` and ``backward(grad_out)`` of a tanh MLP with
  params "W1", "b1", … that the grader sets;
* ``AffineCoupling(mask, hidden)`` -- ``scale_shift``, ``forward``, ``inverse`` and
  ``backward`` (both directions), params "net.W1", … that the grader sets;
* ``nll_step(layers, x)`` -- the NLL of a stack and its gradient;
* ``train_realnvp(x_train, seed)`` -- 6 couplings fitted to moons.

References: ``nf.flows.mlp.MLP`` and ``nf.AffineCoupling`` at the same parameters,
``nf.train.mle_step`` for the loss, and for the trained layers
``nf.train.test_nll`` of ``nf.FlowModel`` on held-out moons drawn in the grader
(never sent to the submission).  The known mistakes named in the feedback are
recomputed by :func:`_coupling`, a small independent implementation with the
mistake switched on.
"""
from __future__ import annotations

import warnings

import numpy as np

import nflows_np as nf
from nflows_np.grading.assignments._flows import (
    DRIVER_PRELUDE,
    ROUND_TRIP_LABELS,
    Diagnosis,
    compare_named,
    layer_driver,
    params_of,
    pass_inputs,
    run_pass,
    set_params,
    threshold_score,
)
from nflows_np.grading.cases import Arrays, Assignment, Case, Outcome

NUM_LAYERS = 6
HIDDEN = (32, 32)
TRAIN_POINTS = 4000
TEST_POINTS = 20_000
ENTROPY = nf.datasets.ENTROPY["moons"]
NLL_FULL = 0.50     # nats above the entropy: full marks (the solution: ≤ 0.35 over 120 seeds, see the README)
NLL_PARTIAL = 0.75  # half marks; the best Gaussian is 0.90 above
STEP_LAYERS = 2
BOUND = nf.numerics.LOG_SCALE_BOUND
_TIMEOUT = 10.0
_TRAIN_TIMEOUT = 20.0


# ---- inputs -----------------------------------------------------------------------------

def _mlp_params(rng: np.random.Generator, sizes: tuple[int, ...], last_scale: float = 1.0) -> dict[str, np.ndarray]:
    params = {}
    for k in range(1, len(sizes)):
        scale = (last_scale if k == len(sizes) - 1 else 1.0) / np.sqrt(sizes[k - 1])
        params[f"W{k}"] = scale * rng.standard_normal((sizes[k - 1], sizes[k]))
        params[f"b{k}"] = 0.3 * rng.standard_normal(sizes[k])
    return params


def _mask(rng: np.random.Generator, dim: int, ones: int) -> np.ndarray:
    mask = np.zeros(dim, dtype=np.int64)
    mask[rng.choice(dim, size=ones, replace=False)] = 1
    return mask


def _coupling_inputs(dim: int = 4, ones: int = 2, hidden: tuple[int, ...] = (16, 16), n: int = 40,
                     last_scale: float = 1.0, grads: bool = False):
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        mask = _mask(rng, dim, ones)
        sizes = (ones, *hidden, 2 * (dim - ones))
        net = _mlp_params(rng, sizes, last_scale)
        x = 1.5 * rng.standard_normal((n, dim))
        return pass_inputs({f"net.{key}": value for key, value in net.items()}, x, rng if grads else None,
                           mask=mask, hidden=np.array(hidden, dtype=np.int64))
    return make


def _mlp_inputs(grads: bool = False):
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        sizes = (3, 16, 16, 4)
        h = 1.5 * rng.standard_normal((40, sizes[0]))
        inputs = pass_inputs(_mlp_params(rng, sizes), h, None, sizes=np.array(sizes, dtype=np.int64))
        if grads:
            inputs["grad_out"] = rng.standard_normal((40, sizes[-1]))
        return inputs
    return make


# ---- references: the library ----------------------------------------------------------------

def _library_coupling(inputs: Arrays, prefix: str = "p.") -> nf.AffineCoupling:
    hidden = tuple(int(v) for v in inputs["hidden"])
    return set_params(nf.AffineCoupling(inputs["mask"], hidden=hidden, activation="tanh"), params_of(inputs, prefix))


def _library_mlp(inputs: Arrays) -> nf.flows.mlp.MLP:
    sizes = [int(v) for v in inputs["sizes"]]
    net = nf.flows.mlp.MLP(sizes[0], sizes[-1], sizes[1:-1], "tanh", zero_last=False)
    return set_params(net, params_of(inputs))


def _ref_mlp(inputs: Arrays) -> dict[str, np.ndarray]:
    net = _library_mlp(inputs)
    result = {"out": net.forward(inputs["in"])}
    if "grad_out" in inputs:
        net.zero_grad()
        result["grad_in"] = net.backward(inputs["grad_out"])
        result.update({f"grad.{key}": grad.copy() for key, grad in net.grads.items()})
    return result


def _ref_coupling(direction: str, *names: str):
    def reference(inputs: Arrays) -> dict[str, np.ndarray]:
        result = run_pass(_library_coupling(inputs), inputs, direction)
        return {name: result[name] for name in names}
    return reference


def _ref_param_grads(direction: str):
    def reference(inputs: Arrays) -> dict[str, np.ndarray]:
        result = run_pass(_library_coupling(inputs), inputs, direction)
        return {name: value for name, value in result.items() if name.startswith("grad.")}
    return reference


def _ref_round_trip(inputs: Arrays) -> dict[str, np.ndarray]:
    x = run_pass(_library_coupling(inputs), inputs, "inverse")["out"]
    return {"out": inputs["in"], "log_det": np.zeros(inputs["in"].shape[0]), "x": x}


# ---- known mistakes, recomputed by an independent implementation ----------------------------

def _mlp(params: Arrays, h: np.ndarray, grad_out: np.ndarray | None = None, *,
         slope: str = "tanh") -> dict[str, np.ndarray]:
    """The tanh MLP; ``slope`` "tanh" (right), "none" (σ′ forgotten), "pre" (1 − pre-activation²)."""
    num = len(params) // 2
    inputs, pre = [h], []
    for k in range(1, num + 1):
        h = h @ params[f"W{k}"] + params[f"b{k}"]
        if k < num:
            pre.append(h)
            h = np.tanh(h)
            inputs.append(h)
    result = {"out": h}
    if grad_out is None:
        return result
    grad = grad_out
    for k in range(num, 0, -1):
        result[f"grad.W{k}"] = inputs[k - 1].T @ grad
        result[f"grad.b{k}"] = grad.sum(axis=0)
        grad = grad @ params[f"W{k}"].T
        if k > 1:
            a, z = inputs[k - 1], pre[k - 2]
            grad = grad * {"tanh": 1.0 - a * a, "none": 1.0, "pre": 1.0 - z * z}[slope]
    result["grad_in"] = grad
    return result


def _coupling(inputs: Arrays, direction: str, *, mask_flip: bool = False, swap: bool = False,
              clamp: bool = True, clamp_slope: bool = True, net_path: bool = True, log_det_term: bool = True,
              exp_sign: float = 1.0, order: str = "right", log_det_sign: float = 1.0,
              slope: str = "tanh") -> dict[str, np.ndarray]:
    """An affine coupling with one mistake switched on (all off: the right layer).

    mask_flip: mask 1 taken as "transformed"; swap: t first, ŝ second; clamp: s = 3 tanh(ŝ/3);
    clamp_slope: its derivative in backward; net_path: ∂L/∂in_A through the network;
    log_det_term: ∂L/∂log_det used; exp_sign −1: inverse multiplies by exp(+s);
    order "shift_last": inverse computes z_B e^{−s} − t; log_det_sign −1: the log-det's sign flipped;
    slope: the network's backward, see :func:`_mlp`.
    """
    mask = inputs["mask"].astype(int)
    if mask_flip:
        mask = 1 - mask
    a, b = np.flatnonzero(mask == 1), np.flatnonzero(mask == 0)
    params = {key[len("net."):]: value for key, value in params_of(inputs).items()}
    point = inputs["in"]
    net = _mlp(params, point[:, a])
    n_b = b.size
    raw_s, t = (net["out"][:, n_b:], net["out"][:, :n_b]) if swap else (net["out"][:, :n_b], net["out"][:, n_b:])
    s = BOUND * np.tanh(raw_s / BOUND) if clamp else raw_s
    out = point.copy()
    if direction == "forward":
        out[:, b] = point[:, b] * np.exp(s) + t
        log_det = log_det_sign * s.sum(axis=1)
    else:
        if order == "shift_last":
            out[:, b] = point[:, b] * np.exp(-s) - t
        else:
            out[:, b] = (point[:, b] - t) * np.exp(-exp_sign * s)
        log_det = -log_det_sign * s.sum(axis=1)
    result = {"out": out, "log_det": log_det}
    if "grad_out" not in inputs:
        return result
    grad_out = inputs["grad_out"]
    grad_ld = inputs["grad_log_det"] if log_det_term else np.zeros(point.shape[0])
    grad_b = grad_out[:, b]
    if direction == "forward":
        grad_in_b, grad_s, grad_t = grad_b * np.exp(s), grad_b * point[:, b] * np.exp(s) + grad_ld[:, None], grad_b
    else:
        x_b = out[:, b]
        grad_in_b = grad_b * np.exp(-s)
        grad_s, grad_t = -grad_b * x_b - grad_ld[:, None], -grad_in_b
    if clamp and clamp_slope:
        grad_s = grad_s * (1.0 - (s / BOUND) ** 2)
    grad_net = np.concatenate([grad_t, grad_s] if swap else [grad_s, grad_t], axis=1)
    back = _mlp(params, point[:, a], grad_net, slope=slope)
    grad_in = np.empty_like(point)
    grad_in[:, a] = grad_out[:, a] + (back["grad_in"] if net_path else 0.0)
    grad_in[:, b] = grad_in_b
    result["grad_in"] = grad_in
    result.update({f"grad.net.{key[len('grad.'):]}": value for key, value in back.items()
                   if key.startswith("grad.") and key != "grad_in"})
    return result


_VALUE_MISTAKES = (
    (dict(swap=True), "ŝ and t swapped: the network's first |B| outputs are ŝ, the last |B| are t"),
    (dict(clamp=False), "the log-scale is not clamped: s = bounded_log_scale(ŝ) = 3 tanh(ŝ/3)"),
    (dict(mask_flip=True), "mask meaning inverted: mask[i] = 1 is the conditioning part A (unchanged), "
                           "0 the transformed part B"),
)
_LOG_DET_MISTAKES = (
    (dict(log_det_sign=-1.0), "log-det sign: forward returns log|det ∂z/∂x| = +Σ_B s, inverse −Σ_B s"),
)
_INVERSE_MISTAKES = (
    (dict(exp_sign=-1.0), "the inverse divides by the scale: x_B = (z_B − t) ⊙ exp(−s), not ⊙ exp(s)"),
    (dict(order="shift_last"), "subtract the shift first: x_B = (z_B − t) ⊙ exp(−s), not z_B ⊙ exp(−s) − t"),
)
_BACKWARD_MISTAKES = (
    (dict(log_det_term=False), "the log-det term is missing: log_det = ±Σ s depends on the network "
                               "(∂log_det/∂s = ±1)"),
    (dict(clamp_slope=False), "the clamp's derivative is missing: ∂s/∂ŝ = 1 − (s/3)²"),
    (dict(net_path=False), "the path through the network is missing: in_A reaches the output directly "
                           "(out_A = in_A) and through (s, t) = c(in_A)"),
    (dict(slope="none"), "the network's backward misses tanh′ (see the MLP.backward cases)"),
    (dict(slope="pre"), "the network's backward takes tanh′ at the wrong point (see the MLP.backward cases)"),
)


def _diagnoses(direction: str, outputs: tuple[str, ...], mistakes) -> list[Diagnosis]:
    return [Diagnosis(output, lambda inputs, o=output, kw=kwargs: _coupling(inputs, direction, **kw)[o], hint)
            for kwargs, hint in mistakes for output in outputs]


def _mlp_diagnoses(outputs: tuple[str, ...]) -> list[Diagnosis]:
    hints = {"none": "tanh′ is missing: between layers, multiply by 1 − a_k² (a_k = tanh(·), the activation)",
             "pre": "tanh′ must be taken at the pre-activation: 1 − tanh²(·) = 1 − a_k², with a_k the "
                    "activation, not 1 − (pre-activation)²"}
    found = []
    for slope, hint in hints.items():
        for output in outputs:
            found.append(Diagnosis(output, lambda inputs, o=output, sl=slope: _mlp(
                params_of(inputs), inputs["in"], inputs["grad_out"], slope=sl)[o], hint))
    return found


# ---- nll_step --------------------------------------------------------------------------------

_STEP_DRIVER = DRIVER_PRELUDE + '''
def drive(namespace, inputs):
    cls = _student_class(namespace, "AffineCoupling")
    step = _student_function(namespace, "nll_step")
    hidden = tuple(int(v) for v in inputs["hidden"])
    layers = []
    for k in range({layers}):
        layer = cls(inputs[f"mask{{k}}"].astype(int), hidden, 0)
        _set_params(layer, inputs, prefix=f"p{{k}}.")
        _zero_grads(layer)
        layers.append(layer)
    out = {{"loss": step(layers, inputs["in"].copy())}}
    for k, layer in enumerate(layers):
        out.update(_grads(layer, prefix=f"grad{{k}}."))
    return out
'''.format(layers=STEP_LAYERS)


def _step_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    dim, hidden = 3, (8, 8)
    inputs = {"hidden": np.array(hidden, dtype=np.int64), "in": 1.5 * rng.standard_normal((48, dim))}
    for k in range(STEP_LAYERS):
        mask = np.array([1, 0, 1] if k % 2 == 0 else [0, 1, 0], dtype=np.int64)
        net = _mlp_params(rng, (int(mask.sum()), *hidden, 2 * int((1 - mask).sum())))
        inputs[f"mask{k}"] = mask
        inputs.update({f"p{k}.net.{key}": value for key, value in net.items()})
    return inputs


def _step_reference(inputs: Arrays, order=lambda layers: layers, log_det_sign: float = 1.0) -> dict[str, np.ndarray]:
    layers = [_library_coupling({**inputs, "mask": inputs[f"mask{k}"]}, prefix=f"p{k}.")
              for k in range(STEP_LAYERS)]
    model = nf.FlowModel(order(layers))
    x = inputs["in"]
    n = x.shape[0]
    model.zero_grad()
    z, log_det = model.forward(x)
    loss = -np.mean(model.base.log_prob(z) + log_det_sign * log_det)
    model.backward(z / n, np.full(n, -log_det_sign / n))
    result = {"loss": np.array(loss)}
    for k, layer in enumerate(layers):
        result.update({f"grad{k}.{key}": grad.copy() for key, grad in layer.grads.items()})
    return result


def _step_labels() -> dict[str, str]:
    labels = {"loss": "the loss (mean NLL)"}
    for k in range(STEP_LAYERS):
        labels.update({f"grad{k}.net.{key}{i}": f"∂loss/∂net.{key}{i} of layers[{k}]"
                       for i in (1, 2, 3) for key in ("W", "b")})
    return labels


def _step_diagnoses() -> list[Diagnosis]:
    variants = (
        (dict(order=lambda layers: layers[::-1]),
         "the layers were applied in the wrong order: layers[0].forward acts first on x"),
        (dict(log_det_sign=-1.0), "log-det sign: log p(x) = log p_Z(f(x)) + log|det ∂f/∂x|, so the NLL has "
                                  "−log|det ∂f/∂x|"),
    )
    return [Diagnosis(name, lambda inputs, name=name, kw=kwargs: _step_reference(inputs, **kw)[name], hint)
            for name in _step_labels() for kwargs, hint in variants]


# ---- training ---------------------------------------------------------------------------------

_TRAIN_DRIVER = DRIVER_PRELUDE + '''
def drive(namespace, inputs):
    train = _student_function(namespace, "train_realnvp")
    layers = list(train(inputs["x_train"].copy(), int(inputs["seed"])))
    if len(layers) != {layers}:
        raise ValueError(f"train_realnvp must return a list of {layers} layers, got {{len(layers)}}")
    out = {{"masks": np.stack([np.asarray(layer.mask, dtype=float) for layer in layers])}}
    for k, layer in enumerate(layers):
        _dicts(layer)
        out.update({{f"{{k}}.{{key}}": value for key, value in layer.params.items()}})
    return out
'''.format(layers=NUM_LAYERS)


def moons_variant(points: np.ndarray, variant: int) -> np.ndarray:
    """Moons with the coordinates swapped, then mirrored: ``variant`` 0..3 picks the signs.

    The grader trains and tests on a variant drawn with its secret seed, so
    parameters fitted to the plain moons offline and pasted into the file do
    not fit (the swap turns the moons upright); the entropy is unchanged (|det| = 1).
    """
    signs = np.array([1.0 - 2.0 * (variant & 1), 1.0 - 2.0 * ((variant >> 1) & 1)])
    return points[:, ::-1] * signs


def _train_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    variant = int(rng.integers(4))
    return {"x_train": moons_variant(nf.datasets.moons(TRAIN_POINTS, rng), variant),
            "seed": np.array(rng.integers(2**31)), "_test_seed": np.array(rng.integers(2**63)),
            "_variant": np.array(variant)}


def _model_shapes(inputs: Arrays) -> dict[str, np.ndarray]:
    """Zeros shaped like the trained model's arrays (the only shapes accepted back)."""
    shapes = {"masks": np.zeros((NUM_LAYERS, 2))}
    sizes = (1, *HIDDEN, 2)
    for k in range(NUM_LAYERS):
        for i in range(1, len(sizes)):
            shapes[f"{k}.net.W{i}"] = np.zeros((sizes[i - 1], sizes[i]))
            shapes[f"{k}.net.b{i}"] = np.zeros(sizes[i])
    return shapes


def trained_test_nll(received: Arrays, test_seed: int, variant: int = 0) -> float:
    """Test NLL of the returned couplings on fresh moons (of :func:`moons_variant`), by the library."""
    layers = []
    for k in range(NUM_LAYERS):
        layer = nf.AffineCoupling(received["masks"][k], hidden=HIDDEN, activation="tanh")
        layers.append(set_params(layer, {key: received[f"{k}.{key}"] for key in layer.params}))
    test = moons_variant(nf.datasets.moons(TEST_POINTS, np.random.default_rng(test_seed)), variant)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nf.train.test_nll(nf.FlowModel(layers), test)


def _score_training(inputs: Arrays, expected: Arrays, received: Arrays) -> Outcome:
    if not all(np.all(np.isfinite(value)) for value in received.values()):
        return Outcome(0.0, "the trained parameters contain NaN or inf: training diverged")
    try:
        nll = trained_test_nll(received, int(inputs["_test_seed"]), int(inputs["_variant"]))
    except (ValueError, ArithmeticError) as exc:
        return Outcome(0.0, f"the trained flow could not be evaluated: {exc}")
    outcome = threshold_score(nll - ENTROPY, NLL_FULL, NLL_PARTIAL,
                              f"test NLL − entropy of moons ({nll:.4f} − {ENTROPY:.4f}; the grader's "
                              f"estimate on {TEST_POINTS} held-out points)", " nats")
    return outcome


# ---- the cases ---------------------------------------------------------------------------------

_HINT_MLP = ("a_k = tanh(a_{k−1} W_k + b_k), no tanh after the last layer; backward: ∂L/∂W_k = a_{k−1}ᵀ G_k, "
             "∂L/∂b_k = Σ_n G_k, ∂L/∂a_{k−1} = G_k W_kᵀ, then ⊙ (1 − a_{k−1}²) below the last layer")
_HINT_VALUES = ("z_A = x_A, z_B = x_B ⊙ exp(s) + t with (ŝ, t) = net(x_A), s = 3 tanh(ŝ/3); "
                "log|det ∂z/∂x| = Σ_B s; the inverse has −Σ_B s")
_HINT_BACKWARD = ("forward: ∂L/∂x_B = ∂L/∂z_B ⊙ e^s, ∂L/∂s = ∂L/∂z_B ⊙ x_B e^s + ∂L/∂log_det, ∂L/∂t = ∂L/∂z_B; "
                  "then ∂L/∂ŝ = ∂L/∂s ⊙ (1 − (s/3)²), and ∂L/∂x_A = ∂L/∂z_A + net.backward([∂L/∂ŝ, ∂L/∂t]). "
                  "Check with nf.gradcheck.check_flow(layer, x)")
_CONSTRUCT = "cls(inputs['mask'].astype(int), tuple(int(v) for v in inputs['hidden']), 0)"

_MLP_DRIVER = '''
def drive(namespace, inputs):
    net = _student_class(namespace, "MLP")([int(v) for v in inputs["sizes"]], 0)
    _set_params(net, inputs)
    out = {{"out": net.forward(inputs["in"].copy())}}
    if "grad_out" in inputs:
        _zero_grads(net)
        out["grad_in"] = net.backward(inputs["grad_out"].copy())
        out.update(_grads(net))
    return {{name: out[name] for name in {want!r}}}
'''


def _mlp_case(name: str, weight: float, want: tuple[str, ...], labels: dict[str, str]) -> Case:
    grads = any(key.startswith("grad") for key in want)

    def reference(inputs: Arrays) -> dict[str, np.ndarray]:
        result = _ref_mlp(inputs)
        return {key: result[key] for key in want}

    return Case(name, weight, _mlp_inputs(grads), reference, DRIVER_PRELUDE + _MLP_DRIVER.format(want=want),
                compare_named(labels, diagnoses=_mlp_diagnoses(want)), timeout=_TIMEOUT, hint=_HINT_MLP)


def _pass_case(name: str, weight: float, direction: str, want: tuple[str, ...], labels: dict[str, str],
               hint: str, mistakes=(), hidden: bool = False, make_inputs=None, reference=None) -> Case:
    grads = any(key.startswith("grad") for key in want)
    make_inputs = make_inputs or _coupling_inputs(grads=grads)
    if reference is None:
        reference = _ref_coupling(direction, *want)
    return Case(name, weight, make_inputs, reference, layer_driver("AffineCoupling", _CONSTRUCT, direction, want),
                compare_named(labels, diagnoses=_diagnoses(direction, tuple(labels), mistakes)),
                hidden=hidden, timeout=_TIMEOUT, hint=hint)


def _param_grad_labels() -> dict[str, str]:
    return {f"grad.net.{key}{i}": f"∂L/∂net.{key}{i}" for i in (1, 2, 3) for key in ("W", "b")}


def _param_grad_case(name: str, weight: float, direction: str) -> Case:
    labels = _param_grad_labels()
    return _pass_case(name, weight, direction, tuple(labels), labels, _HINT_BACKWARD, _BACKWARD_MISTAKES,
                      reference=_ref_param_grads(direction))


_ALL_FORWARD = ("out", "log_det", "grad_in", *_param_grad_labels())

ASSIGNMENT = Assignment(
    name="realnvp_coupling",
    title="the RealNVP affine coupling: MLP, forward / inverse / log-det / backward, MLE on moons",
    solution="lectures/homework/solutions/realnvp_coupling.py",
    student="lectures/homework/realnvp_coupling.py",
    budget=30.0,
    cases=(
        _mlp_case("MLP.forward", 2, ("out",), {"out": "MLP(h)"}),
        _mlp_case("MLP.backward: ∂L/∂h", 2, ("grad_in",), {"grad_in": "∂L/∂h (returned by backward)"}),
        _mlp_case("MLP.backward: ∂L/∂W_k, ∂L/∂b_k", 2, tuple(f"grad.{k}{i}" for i in (1, 2, 3) for k in "Wb"),
                  {f"grad.{k}{i}": f"∂L/∂{k}{i} (grads['{k}{i}'])" for i in (1, 2, 3) for k in "Wb"}),
        _pass_case("forward: z = f(x)", 2, "forward", ("out",), {"out": "z = f(x)"}, _HINT_VALUES,
                   _VALUE_MISTAKES),
        _pass_case("forward: log|det ∂z/∂x|", 2, "forward", ("log_det",), {"log_det": "log|det ∂z/∂x|"},
                   _HINT_VALUES, _VALUE_MISTAKES + _LOG_DET_MISTAKES),
        _pass_case("inverse: x = g(z)", 2, "inverse", ("out",), {"out": "x = g(z)"}, _HINT_VALUES,
                   _VALUE_MISTAKES + _INVERSE_MISTAKES),
        _pass_case("inverse: log|det ∂x/∂z|", 1, "inverse", ("log_det",), {"log_det": "log|det ∂x/∂z|"},
                   _HINT_VALUES, _VALUE_MISTAKES + _LOG_DET_MISTAKES),
        _pass_case("round trip: forward(inverse(z)) = z, log-dets opposite", 1, "round_trip",
                   tuple(ROUND_TRIP_LABELS), ROUND_TRIP_LABELS,
                   "forward and inverse must use the same (s, t) = c(x_A) = c(z_A)",
                   reference=_ref_round_trip),
        _pass_case("forward backward: ∂L/∂x", 2, "forward", ("grad_in",), {"grad_in": "∂L/∂x (returned by backward)"},
                   _HINT_BACKWARD, _BACKWARD_MISTAKES),
        _param_grad_case("forward backward: ∂L/∂θ of the network", 2, "forward"),
        _pass_case("inverse backward: ∂L/∂z", 2, "inverse", ("grad_in",), {"grad_in": "∂L/∂z (returned by backward)"},
                   _HINT_BACKWARD, _BACKWARD_MISTAKES),
        _param_grad_case("inverse backward: ∂L/∂θ of the network", 2, "inverse"),
        _pass_case("forward and backward: 5-D, mask with three 1s, the clamp active", 2, "forward", _ALL_FORWARD,
                   {"out": "z = f(x)", "log_det": "log|det ∂z/∂x|", "grad_in": "∂L/∂x", **_param_grad_labels()},
                   _HINT_VALUES + "; " + _HINT_BACKWARD, _VALUE_MISTAKES[:2] + _LOG_DET_MISTAKES + _BACKWARD_MISTAKES,
                   hidden=True,
                   make_inputs=_coupling_inputs(dim=5, ones=3, last_scale=6.0, grads=True)),
        Case(f"nll_step: the loss and gradients of {STEP_LAYERS} layers", 3, _step_inputs, _step_reference,
             _STEP_DRIVER, compare_named(_step_labels(), diagnoses=_step_diagnoses()), timeout=_TIMEOUT,
             hint="loss = −mean[log p_Z(z) + Σ_k log-det_k]; ∂loss/∂z = z/N, ∂loss/∂log_det = −1/N for every "
                  "layer; backward through the last layer first"),
        Case(f"train_realnvp: test NLL of {NUM_LAYERS} couplings trained on moons", 5, _train_inputs,
             _model_shapes, _TRAIN_DRIVER, _score_training, timeout=_TRAIN_TIMEOUT,
             hint="a few hundred Adam steps, lr ≈ 5e-3, minibatches of ≈ 256 points; masks alternate "
                  "[1, 0], [0, 1]; the last layer of each MLP starts at 0 (the identity)"),
    ),
)
