"""Assignment ``planar_flow``: the planar flow and reverse KL on U₁ (numpy only).

The student writes, in ``lectures/homework/solutions/planar_flow.py``'s
template, a class ``PlanarFlow(dim)`` with ``params`` "u" (D,), "w" (D,), "b"
() that the grader sets, and:

* ``u_hat()`` -- û = u + (m(wᵀu) − wᵀu) w/‖w‖², m(s) = −1 + softplus(s);
* ``inverse(z)`` -- x = z + û tanh(wᵀz + b), log|det ∂g/∂z| = log|1 + h′ wᵀû|;
* ``backward(grad_x, grad_log_det)`` -- ∂L/∂z, and ∂L/∂u, ∂L/∂w, ∂L/∂b into ``grads``;
* ``reverse_kl_step(layers, z, beta)`` -- the reverse-KL loss against U₁ and its gradient;
* ``train_planar(seed)`` -- K = 8 layers trained on U₁.

References: ``nf.Planar`` (same parameters) for every value and gradient,
``nf.train.reverse_kl_step`` for the loss, and for the trained layers
``nf.train.free_energy`` of ``nf.FlowModel`` built from the returned
parameters plus U₁'s ``log_z``, on fresh samples drawn in the grader.
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

NUM_LAYERS = 8
KL_FULL = 0.5     # nats: full marks (the solution: ≤ 0.28 over 200 seeds, see the README)
KL_PARTIAL = 0.8  # half marks; a flow on one of the two modes has KL ≈ log 2 ≈ 0.69
KL_SAMPLES = 20_000
STEP_LAYERS = 3
_TIMEOUT = 10.0
_TRAIN_TIMEOUT = 20.0
_U1 = nf.targets.get("U1")


# ---- the library's planar layer at given parameters ---------------------------------------

def _planar(params: Arrays, invertible: bool = True) -> nf.Planar:
    dim = params["u"].shape[0]
    return set_params(nf.Planar(dim, invertible=invertible), params)


def _softplus(s: float) -> float:
    return float(np.logaddexp(0.0, s))


def _u_hat_variant(params: Arrays, power: float = 2.0, minus_one: bool = True) -> np.ndarray:
    """û with ‖w‖^power in the denominator, and m(s) = softplus(s) − 1 (or without the −1)."""
    u, w = params["u"], params["w"]
    s = float(w @ u)
    m = _softplus(s) - (1.0 if minus_one else 0.0)
    return u + (m - s) * w / np.linalg.norm(w) ** power


def _with_u(params: Arrays, u: np.ndarray) -> dict[str, np.ndarray]:
    return {**params, "u": u}


# ---- inputs -----------------------------------------------------------------------------

def _planar_params(rng: np.random.Generator, dim: int, active: bool = False) -> dict[str, np.ndarray]:
    w = rng.standard_normal(dim)
    # ‖w‖ kept away from 1, so that ‖w‖ and ‖w‖² in û give different numbers.
    w *= rng.choice([rng.uniform(0.5, 0.8), rng.uniform(1.3, 2.0)]) / np.linalg.norm(w)
    u = 1.5 * rng.standard_normal(dim)
    if active:  # wᵀu = −3 < −1: without û the map would not be invertible
        u += (-3.0 - w @ u) * w / (w @ w)
    return {"u": u, "w": w, "b": np.array(rng.uniform(-1.0, 1.0))}


def _pass_case_inputs(dim: int = 2, n: int = 40, scale: float = 1.5, active: bool = False,
                      grads: bool = False):
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        params = _planar_params(rng, dim, active)
        z = scale * rng.standard_normal((n, dim))
        return pass_inputs(params, z, rng if grads else None)
    return make


# ---- references ---------------------------------------------------------------------------

def _ref_u_hat(inputs: Arrays) -> dict[str, np.ndarray]:
    return {"value": _planar(params_of(inputs)).u_hat}


def _ref_inverse(inputs: Arrays) -> dict[str, np.ndarray]:
    return run_pass(_planar(params_of(inputs)), inputs, "inverse")


def _only(*names: str):
    def reference(inputs: Arrays) -> dict[str, np.ndarray]:
        result = _ref_inverse(inputs)
        return {name: result[name] for name in names}
    return reference


def _ref_round_trip(inputs: Arrays) -> dict[str, np.ndarray]:
    return {"out": inputs["in"], "log_det": np.zeros(inputs["in"].shape[0]), "x": _ref_inverse(inputs)["out"]}


# ---- diagnoses ------------------------------------------------------------------------------

def _inverse_with(u_hat_of, what: str):
    """x and log_det of the map with û replaced by ``u_hat_of(params)`` (a wrong û)."""
    def alternative(inputs: Arrays) -> np.ndarray:
        params = params_of(inputs)
        layer = _planar(_with_u(params, u_hat_of(params)), invertible=False)
        x, log_det = layer.inverse(inputs["in"])
        return x if what == "out" else log_det
    return alternative


_WRONG_U_HATS = (
    (lambda p: _u_hat_variant(p, power=1.0), "û divided by ‖w‖ instead of ‖w‖²? Only with ‖w‖² is wᵀû = m(wᵀu)"),
    (lambda p: _u_hat_variant(p, minus_one=False), "m(s) = softplus(s) without the −1? m(s) = −1 + log(1 + eˢ)"),
    (lambda p: p["u"], "you used u itself where the map uses û (call self.u_hat())"),
)


def _u_hat_diagnoses() -> list[Diagnosis]:
    return [Diagnosis("value", lambda inputs, f=f: f(params_of(inputs)), hint) for f, hint in _WRONG_U_HATS]


def _log_det_formula(inputs: Arrays, formula) -> np.ndarray:
    params = params_of(inputs)
    u_hat = _planar(params).u_hat
    a = inputs["in"] @ params["w"] + params["b"]
    return formula(np.tanh(a), float(params["w"] @ u_hat))


def _inverse_diagnoses() -> list[Diagnosis]:
    found = [Diagnosis(what, _inverse_with(f, what), hint) for f, hint in _WRONG_U_HATS for what in ("out", "log_det")]
    found += [
        Diagnosis("out", lambda inputs: inputs["in"] + np.outer(np.tanh(inputs["in"] @ inputs["p.w"]),
                                                                _planar(params_of(inputs)).u_hat),
                  "the bias b is missing: a = wᵀz + b"),
        Diagnosis("log_det", lambda inputs: _log_det_formula(inputs, lambda t, c: np.log(np.abs(1.0 + t * c))),
                  "h′ is the derivative of tanh: h′(a) = 1 − tanh²(a), not tanh(a)"),
        Diagnosis("log_det", lambda inputs: _log_det_formula(inputs, lambda t, c: 1.0 + (1.0 - t * t) * c),
                  "the log is missing: log_det = log|1 + h′ wᵀû|"),
        Diagnosis("log_det", lambda inputs: -_log_det_formula(inputs, lambda t, c: np.log(1.0 + (1.0 - t * t) * c)),
                  "log-det sign: inverse returns log|det ∂g/∂z| = +log(1 + h′ wᵀû); "
                  "the minus sign belongs to forward (log|det ∂f/∂x|)"),
    ]
    return found


def _gradient_with(output: str, grad_x: bool = True, grad_log_det: bool = True, fixed_u_hat: bool = False):
    """The gradient ``output`` with one upstream term dropped, or with û treated as a parameter."""
    def alternative(inputs: Arrays) -> np.ndarray:
        params = params_of(inputs)
        if fixed_u_hat:
            params = _with_u(params, _planar(params).u_hat)
        layer = _planar(params, invertible=not fixed_u_hat)
        changed = dict(inputs)
        if not grad_x:
            changed["grad_out"] = np.zeros_like(inputs["grad_out"])
        if not grad_log_det:
            changed["grad_log_det"] = np.zeros_like(inputs["grad_log_det"])
        return run_pass(layer, changed, "inverse")[output]
    return alternative


def _backward_diagnoses(outputs: tuple[str, ...]) -> list[Diagnosis]:
    found = []
    for output in outputs:
        found.append(Diagnosis(output, _gradient_with(output, grad_log_det=False),
                               "this is the gradient of the x-term alone: the log-det term "
                               "log(1 + h′(wᵀz + b) wᵀû) is missing (it depends on z, w, b and û)"))
        found.append(Diagnosis(output, _gradient_with(output, grad_x=False),
                               "this is the gradient of the log-det term alone: the term through "
                               "x = z + û tanh(wᵀz + b) is missing"))
        if output in ("grad.u", "grad.w"):
            found.append(Diagnosis(output, _gradient_with(output, fixed_u_hat=True),
                                   "û was treated as a parameter: chain through û(u, w) = u + "
                                   "(m(wᵀu) − wᵀu) w/‖w‖², which depends on u and on w"))
    found.append(Diagnosis("grad_in", lambda inputs: run_pass(_planar(params_of(inputs)), inputs, "inverse")
                           ["grad_in"] - inputs["grad_out"],
                           "the identity part is missing: x = z + …, so ∂L/∂z starts with ∂L/∂x"))
    return found


# ---- reverse_kl_step -----------------------------------------------------------------------

_STEP_DRIVER = DRIVER_PRELUDE + '''
def drive(namespace, inputs):
    cls = _student_class(namespace, "PlanarFlow")
    step = _student_function(namespace, "reverse_kl_step")
    layers = []
    for k in range({layers}):
        layer = cls(2)
        _set_params(layer, inputs, prefix=f"p{{k}}.")
        _zero_grads(layer)
        layers.append(layer)
    loss = step(layers, inputs["in"].copy(), float(inputs["beta"]))
    out = {{"loss": loss}}
    for k, layer in enumerate(layers):
        out.update(_grads(layer, prefix=f"grad{{k}}."))
    return out
'''.format(layers=STEP_LAYERS)


def _step_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    inputs = {}
    for k in range(STEP_LAYERS):
        params = _planar_params(rng, 2)
        inputs.update({f"p{k}.{key}": value for key, value in params.items()})
    inputs["in"] = rng.standard_normal((64, 2))
    inputs["beta"] = np.array(rng.uniform(0.3, 1.0))
    return inputs


def _step_reference(inputs: Arrays, order=lambda layers: layers, log_det_sign: float = 1.0,
                    base_term: bool = True) -> dict[str, np.ndarray]:
    layers = [_planar(params_of(inputs, f"p{k}.")) for k in range(STEP_LAYERS)]
    model = nf.FlowModel(order(layers))
    z, beta = inputs["in"], float(inputs["beta"])
    n = z.shape[0]
    model.zero_grad()
    x, log_det = model.inverse(z)
    log_p_z = model.base.log_prob(z) if base_term else 0.0
    loss = np.mean(log_p_z - log_det_sign * log_det - beta * _U1.log_prob(x))
    model.backward(_U1.grad_log_prob(x) * (-beta / n), np.full(n, -log_det_sign / n))
    result = {"loss": np.array(loss)}
    for k, layer in enumerate(layers):
        result.update({f"grad{k}.{key}": grad.copy() for key, grad in layer.grads.items()})
    return result


def _step_labels() -> dict[str, str]:
    labels = {"loss": "the loss"}
    for k in range(STEP_LAYERS):
        labels.update({f"grad{k}.{key}": f"∂loss/∂{key} of layers[{k}]" for key in ("u", "w", "b")})
    return labels


def _step_diagnoses() -> list[Diagnosis]:
    found = []
    variants = (
        (dict(order=lambda layers: layers[::-1]),
         "the layers were applied in the wrong order: layers[-1].inverse acts first on z, "
         "layers[0].inverse last (x = g_1 ∘ ⋯ ∘ g_K(z))"),
        (dict(log_det_sign=-1.0), "log-det sign: the loss has −log|det ∂g/∂z| (sampling spreads mass)"),
        (dict(base_term=False), "the term log p(z) is missing from the loss (it has no gradient, but it "
                                "is part of the KL estimate)"),
    )
    for name in _step_labels():
        for kwargs, hint in variants:
            found.append(Diagnosis(name, lambda inputs, name=name, kwargs=kwargs:
                                   _step_reference(inputs, **kwargs)[name], hint))
    return found


# ---- training ---------------------------------------------------------------------------------

_TRAIN_DRIVER = DRIVER_PRELUDE + '''
def drive(namespace, inputs):
    train = _student_function(namespace, "train_planar")
    out = {{}}
    for suffix, seed in (("", inputs["seed"]), ("_b", inputs["seed_b"])):
        layers = list(train(int(seed)))
        if len(layers) != {layers}:
            raise ValueError(f"train_planar(seed) must return a list of {layers} layers, got {{len(layers)}}")
        for layer in layers:
            _dicts(layer)
        out.update({{key + suffix: np.stack([np.asarray(layer.params[key], dtype=float) for layer in layers])
                    for key in ("u", "w", "b")}})
    return out
'''.format(layers=NUM_LAYERS)
_KEYS = ("u", "w", "b")
SAME_PARAMETERS = 1e-6  # max |θ_a − θ_b| below this: the seed changed nothing, training did not happen


def _train_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    seed, seed_b = rng.choice(2**31, size=2, replace=False)
    return {"seed": np.array(seed), "seed_b": np.array(seed_b), "_eval_seed": np.array(rng.integers(2**63))}


def _train_shapes(inputs: Arrays) -> dict[str, np.ndarray]:
    shapes = {"u": np.zeros((NUM_LAYERS, 2)), "w": np.zeros((NUM_LAYERS, 2)), "b": np.zeros(NUM_LAYERS)}
    return {**shapes, **{key + "_b": value for key, value in shapes.items()}}


def trained_kl(params: Arrays, seed: int, n: int = KL_SAMPLES) -> float:
    """KL(p(x|θ)‖π) of K planar layers (θ stacked along axis 0) against U₁, by the library."""
    layers = [_planar({key: params[key][k] for key in ("u", "w", "b")}) for k in range(NUM_LAYERS)]
    model = nf.FlowModel(layers)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nf.train.free_energy(model, _U1, n, rng=np.random.default_rng(seed)) + float(_U1.log_z)


def _score_training(inputs: Arrays, expected: Arrays, received: Arrays) -> Outcome:
    """Both runs (two seeds of the grader's) must reach the KL threshold, and differ.

    Parameters trained offline and pasted into the file are the same whatever
    the seed: they earn nothing.
    """
    runs = [{key: received[key + suffix] for key in _KEYS} for suffix in ("", "_b")]
    if not all(np.all(np.isfinite(value)) for run in runs for value in run.values()):
        return Outcome(0.0, "the trained parameters contain NaN or inf: training diverged")
    change = max(float(np.max(np.abs(runs[0][key] - runs[1][key]))) for key in _KEYS)
    if change < SAME_PARAMETERS:
        return Outcome(0.0, f"train_planar returned the same parameters for the seeds {int(inputs['seed'])} "
                            f"and {int(inputs['seed_b'])} (they differ by {change:.2g}): the grader checks "
                            "that your code trains from the seed it is given")
    outcomes = []
    for run, seed in zip(runs, (inputs["seed"], inputs["seed_b"])):
        try:
            kl = trained_kl(run, int(inputs["_eval_seed"]))
        except (ValueError, ArithmeticError) as exc:
            return Outcome(0.0, f"the flow trained with seed {int(seed)} could not be evaluated: {exc}")
        outcomes.append(threshold_score(kl, KL_FULL, KL_PARTIAL,
                                        f"seed {int(seed)}: KL(p(x|θ)‖π) of your {NUM_LAYERS} layers on U₁ "
                                        f"(the grader's estimate on {KL_SAMPLES} fresh samples)", " nats"))
    return Outcome(min(outcome.fraction for outcome in outcomes), "\n".join(o.message for o in outcomes))


# ---- the cases ---------------------------------------------------------------------------------

_HINT_U_HAT = "û = u + (m(wᵀu) − wᵀu) w / ‖w‖² with m(s) = −1 + log(1 + eˢ); then wᵀû = m(wᵀu) > −1"
_HINT_INVERSE = ("x = z + û tanh(a), a = wᵀz + b (one scalar per sample); log|det ∂g/∂z| = "
                 "log|1 + (1 − tanh² a) wᵀû| by the matrix determinant lemma")
_HINT_BACKWARD = ("∂L/∂a = (∂L/∂x · û) h′(a) + ∂L/∂log_det · ∂log ψ/∂a with ψ = 1 + h′(a) wᵀû; then "
                  "∂L/∂z = ∂L/∂x + (∂L/∂a) w, ∂L/∂b = Σ_n ∂L/∂a; u and w also act through û and wᵀû. "
                  "Check with nf.gradcheck.check_flow(layer, x, directions=('inverse',))")


def _inverse_case(name: str, weight: float, want: tuple[str, ...], labels: dict[str, str], make_inputs,
                  diagnoses, hint: str, hidden: bool = False, reference=None, mode: str = "inverse") -> Case:
    return Case(name=name, weight=weight, make_inputs=make_inputs,
                reference=reference or _only(*want),
                driver=layer_driver("PlanarFlow", "cls(int(inputs['in'].shape[1]))", mode, want),
                score=compare_named(labels, diagnoses=diagnoses), hidden=hidden, timeout=_TIMEOUT, hint=hint)


def _backward_case(name: str, weight: float, outputs: tuple[str, ...], hidden: bool = False,
                   dim: int = 2) -> Case:
    labels = {"grad_in": "∂L/∂z (returned by backward)", "grad.u": "∂L/∂u (grads['u'])",
              "grad.w": "∂L/∂w (grads['w'])", "grad.b": "∂L/∂b (grads['b'])"}
    return _inverse_case(name, weight, outputs, {key: labels[key] for key in outputs},
                         _pass_case_inputs(dim=dim, grads=True), _backward_diagnoses(outputs),
                         _HINT_BACKWARD, hidden=hidden)


_X = {"out": "x = g(z)"}
_LOG_DET = {"log_det": "log|det ∂g/∂z|"}

ASSIGNMENT = Assignment(
    name="planar_flow",
    title="the planar flow: û, the generative pass, log-det, backward, reverse KL on U₁",
    solution="lectures/homework/solutions/planar_flow.py",
    student="lectures/homework/planar_flow.py",
    budget=30.0,
    cases=(
        Case("u_hat: û at random u, w", 3, _pass_case_inputs(), _ref_u_hat,
             layer_driver("PlanarFlow", "cls(int(inputs['in'].shape[1]))", "u_hat", ("value",)),
             compare_named({"value": "û = u_hat()"}, diagnoses=_u_hat_diagnoses()),
             timeout=_TIMEOUT, hint=_HINT_U_HAT),
        Case("u_hat: wᵀu = −3 (the constraint is active), 4-D", 1, _pass_case_inputs(dim=4, active=True),
             _ref_u_hat, layer_driver("PlanarFlow", "cls(int(inputs['in'].shape[1]))", "u_hat", ("value",)),
             compare_named({"value": "û = u_hat()"}, diagnoses=_u_hat_diagnoses()),
             hidden=True, timeout=_TIMEOUT, hint=_HINT_U_HAT),
        _inverse_case("inverse: x = g(z)", 3, ("out",), _X, _pass_case_inputs(), _inverse_diagnoses(),
                      _HINT_INVERSE),
        _inverse_case("inverse: log|det ∂g/∂z|", 3, ("log_det",), _LOG_DET, _pass_case_inputs(),
                      _inverse_diagnoses(), _HINT_INVERSE),
        _inverse_case("inverse: 5-D, wᵀu = −3", 2, ("out", "log_det"), {**_X, **_LOG_DET},
                      _pass_case_inputs(dim=5, scale=3.0, active=True), _inverse_diagnoses(), _HINT_INVERSE,
                      hidden=True),
        _inverse_case("round trip: forward(inverse(z)) = z, log-dets opposite", 1, tuple(ROUND_TRIP_LABELS),
                      ROUND_TRIP_LABELS,
                      _pass_case_inputs(), (), "forward (given) uses your u_hat(); inverse must use the same û",
                      reference=_ref_round_trip, mode="round_trip"),
        _backward_case("backward: ∂L/∂z", 2, ("grad_in",)),
        _backward_case("backward: ∂L/∂u", 2, ("grad.u",)),
        _backward_case("backward: ∂L/∂w", 2, ("grad.w",)),
        _backward_case("backward: ∂L/∂b", 1, ("grad.b",)),
        _backward_case("backward: 5-D, every gradient", 2, ("grad_in", "grad.u", "grad.w", "grad.b"),
                       hidden=True, dim=5),
        Case(f"reverse_kl_step: the loss and gradients of {STEP_LAYERS} layers on U₁", 3, _step_inputs,
             _step_reference, _STEP_DRIVER, compare_named(_step_labels(), diagnoses=_step_diagnoses()),
             timeout=_TIMEOUT,
             hint="loss = mean[log p(z) − Σ_k log-det_k − β log π̃(x)]; ∂loss/∂x = −(β/N) ∇log π̃(x), "
                  "∂loss/∂log_det = −1/N for every layer; backward through layers[0] first"),
        Case(f"train_planar: KL(p‖π) of {NUM_LAYERS} layers trained on U₁", 5, _train_inputs, _train_shapes,
             _TRAIN_DRIVER, _score_training, timeout=_TRAIN_TIMEOUT,
             hint="anneal β from 0.01 to 1 over the first half of training, so that the flow finds both "
                  "modes of U₁; a few hundred Adam steps with lr ≈ 1e-2 and batches of ≈ 128"),
    ),
)
