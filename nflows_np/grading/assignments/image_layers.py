"""Assignment ``image_layers``: Glow's squeeze and invertible 1×1 convolution (numpy only).

The student writes, in the template ``lectures/homework/image_layers.py``:

* ``squeeze(x, shape)`` / ``unsqueeze(z, shape)`` — space-to-depth and back,
  ``z[4c + 2a + b, i, j] = x[c, 2i + a, 2j + b]``;
* ``conv1x1_forward(x, weight, shape)`` — z = W x at every pixel, log-det H·W·log|det W|;
* ``conv1x1_backward(x, weight, shape, grad_z, grad_log_det)`` — ∂L/∂x and ∂L/∂W,
  the log-det's H·W·W⁻ᵀ term included.

References: the library's ``Squeeze`` for the layout, and the grader's own einsum
formulas for the convolution (the library's 1×1 convolution is LU-parametrised, so
its ∂L/∂W is not the one asked here). Known mistakes are recomputed and named:
the H·W factor forgotten in the log-det or in its gradient, W instead of Wᵀ in
∂L/∂x, the log-det term missing from ∂L/∂W, and the other channel order of
space-to-depth (block first, ``z[C·(2a + b) + c]``, TensorFlow's layout).
"""
from __future__ import annotations

import numpy as np

from nflows_np.flows.squeeze import Squeeze
from nflows_np.grading.assignments._flows import Diagnosis, compare_named
from nflows_np.grading.cases import Arrays, Assignment, Case, function_driver

_TIMEOUT = 10.0


# ---- inputs -----------------------------------------------------------------------------

def _images(c: int, h: int, w: int, n: int = 5):
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        # W with det < 0 half the time and away from singular: a random orthogonal matrix plus noise.
        q, _ = np.linalg.qr(rng.standard_normal((c, c)))
        weight = q @ np.diag(rng.uniform(0.5, 2.0, c)) + 0.2 * rng.standard_normal((c, c))
        return {"x": rng.standard_normal((n, c * h * w)), "shape": np.array([c, h, w]), "weight": weight,
                "grad_z": rng.standard_normal((n, c * h * w)), "grad_log_det": rng.standard_normal(n)}
    return make


def _squeezed(c: int, h: int, w: int, n: int = 5):
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"z": rng.standard_normal((n, c * h * w)), "shape": np.array([c, h, w])}
    return make


# ---- references -------------------------------------------------------------------------

def _shape(inputs: Arrays) -> tuple[int, int, int]:
    c, h, w = (int(v) for v in inputs["shape"])
    return c, h, w


def _ref_squeeze(inputs: Arrays) -> dict[str, np.ndarray]:
    return {"z": Squeeze(_shape(inputs)).forward(inputs["x"])[0]}


def _ref_unsqueeze(inputs: Arrays) -> dict[str, np.ndarray]:
    return {"x": Squeeze(_shape(inputs)).inverse(inputs["z"])[0]}


def _conv(inputs: Arrays, *, hw_factor: bool = True, transpose: bool = True, log_det_grad: str = "right"):
    """The 1×1 convolution's outputs, with one known mistake switched on (defaults: right)."""
    c, h, w = _shape(inputs)
    n = inputs["x"].shape[0]
    weight, x = inputs["weight"], inputs["x"].reshape(n, c, h, w)
    grads = inputs["grad_z"].reshape(n, c, h, w)
    factor = h * w if hw_factor else 1
    pattern = "oc,nohw->nchw" if transpose else "co,nohw->nchw"
    term = {"right": h * w, "no_hw": 1, "missing": 0}[log_det_grad]
    return {
        "z": np.einsum("oc,nchw->nohw", weight, x).reshape(n, -1),
        "log_det": np.full(n, factor * np.linalg.slogdet(weight)[1]),
        "grad_x": np.einsum(pattern, weight, grads).reshape(n, -1),
        "grad_weight": np.einsum("nohw,nchw->oc", grads, x)
        + term * inputs["grad_log_det"].sum() * np.linalg.inv(weight).T,
    }


def _ref_conv(*names: str):
    return lambda inputs: {name: _conv(inputs)[name] for name in names}


def _block_first(inputs: Arrays) -> np.ndarray:
    c, h, w = _shape(inputs)
    images = inputs["x"].reshape(-1, c, h // 2, 2, w // 2, 2)  # (n, c, i, a, j, b)
    return images.transpose(0, 3, 5, 1, 2, 4).reshape(images.shape[0], -1)  # (n, a, b, c, i, j)


_SQUEEZE_DIAGNOSES = (
    Diagnosis("z", _block_first, "the channels are ordered block first (z[C·(2a + b) + c]): this layout puts the "
                                 "four pixels of a 2×2 block of channel c next to each other, z[4c + 2a + b]"),
    Diagnosis("z", lambda inputs: inputs["x"], "z = x: squeeze reorders the coordinates (reshape alone does not)"),
)
_CONV_DIAGNOSES = (
    Diagnosis("log_det", lambda inputs: _conv(inputs, hw_factor=False)["log_det"],
              "the H·W factor is missing: W acts at each of the H·W pixels, so the Jacobian holds H·W copies of W "
              "and log|det ∂z/∂x| = H·W·log|det W|"),
    Diagnosis("grad_x", lambda inputs: _conv(inputs, transpose=False)["grad_x"],
              "∂L/∂x used W instead of Wᵀ: z = W x ⇒ ∂L/∂x = Wᵀ ∂L/∂z at every pixel"),
    Diagnosis("grad_weight", lambda inputs: _conv(inputs, log_det_grad="missing")["grad_weight"],
              "the log-det's gradient is missing: log_det = H·W·log|det W| depends on W, "
              "∂/∂W = H·W·W⁻ᵀ·Σ_n ∂L/∂log_det_n"),
    Diagnosis("grad_weight", lambda inputs: _conv(inputs, log_det_grad="no_hw")["grad_weight"],
              "the H·W factor is missing from the log-det's gradient: ∂(H·W·log|det W|)/∂W = H·W·W⁻ᵀ"),
)

_HINT_SQUEEZE = ("reshape to (N, C, H/2, 2, W/2, 2) = (n, c, i, a, j, b), transpose to (n, c, a, b, i, j), "
                 "flatten; unsqueeze is the reverse")
_HINT_CONV = ("z = einsum('oc,nchw->nohw', W, x); log_det = H·W·slogdet(W)[1] for every image; "
              "∂L/∂x = Wᵀ ∂L/∂z per pixel; ∂L/∂W = Σ_{n, pixels} ∂L/∂z xᵀ + H·W·(Σ_n ∂L/∂log_det_n)·W⁻ᵀ")
_ARGS = ("x", "weight", "shape")


def _squeeze_case(name: str, weight: float, shape: tuple[int, int, int], hidden: bool = False) -> Case:
    return Case(name, weight, _images(*shape), _ref_squeeze, function_driver("squeeze", ("x", "shape"), ("z",)),
                compare_named({"z": "z = squeeze(x)"}, diagnoses=_SQUEEZE_DIAGNOSES, batch_key="x"),
                hidden=hidden, timeout=_TIMEOUT, hint=_HINT_SQUEEZE)


def _conv_case(name: str, weight: float, shape: tuple[int, int, int], labels: dict[str, str],
               backward: bool = False, hidden: bool = False) -> Case:
    function = "conv1x1_backward" if backward else "conv1x1_forward"
    args = _ARGS + (("grad_z", "grad_log_det") if backward else ())
    outputs = ("grad_x", "grad_weight") if backward else ("z", "log_det")
    return Case(name, weight, _images(*shape), _ref_conv(*outputs), function_driver(function, args, outputs),
                compare_named(labels, diagnoses=_CONV_DIAGNOSES, batch_key="x"),
                hidden=hidden, timeout=_TIMEOUT, hint=_HINT_CONV)


ASSIGNMENT = Assignment(
    name="image_layers",
    title="Glow's image layers: squeeze and the invertible 1×1 convolution (log-det H·W·log|det W|, backward)",
    solution="lectures/homework/solutions/image_layers.py",
    student="lectures/homework/image_layers.py",
    budget=25.0,
    cases=(
        _squeeze_case("squeeze: 2×4×4 → 8×2×2", 2, (2, 4, 4)),
        Case("unsqueeze: 8×2×2 → 2×4×4, the inverse", 2, _squeezed(2, 4, 4), _ref_unsqueeze,
             function_driver("unsqueeze", ("z", "shape"), ("x",)),
             compare_named({"x": "x = unsqueeze(z)"}, batch_key="z"), timeout=_TIMEOUT, hint=_HINT_SQUEEZE),
        _conv_case("conv1x1_forward: z = W x at every pixel", 2, (3, 2, 4), {"z": "z"}),
        _conv_case("conv1x1_forward: log|det ∂z/∂x| = H·W·log|det W|", 3, (3, 2, 4), {"log_det": "log_det"}),
        _conv_case("conv1x1_backward: ∂L/∂x", 2, (3, 2, 4), {"grad_x": "∂L/∂x"}, backward=True),
        _conv_case("conv1x1_backward: ∂L/∂W", 3, (3, 2, 4), {"grad_weight": "∂L/∂W"}, backward=True),
        _squeeze_case("squeeze: 3×6×4, several channels", 1, (3, 6, 4), hidden=True),
        _conv_case("conv1x1: 5×4×6, every output", 2, (5, 4, 6), {"z": "z", "log_det": "log_det"}, hidden=True),
        _conv_case("conv1x1_backward: 5×4×6, every output", 2, (5, 4, 6),
                   {"grad_x": "∂L/∂x", "grad_weight": "∂L/∂W"}, backward=True, hidden=True),
    ),
)
