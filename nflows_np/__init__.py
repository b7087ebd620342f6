"""nflows_np: normalizing flows in NumPy, with hand-written analytic gradients.

Directions follow the lecture: ``forward`` is f (data x → latent z), ``inverse``
is g = f⁻¹ (z → x); :class:`nflows_np.Flow` states the contract every layer honours.

Layout: the layers in :mod:`nflows_np.flows` (one module per family), their
contract in :mod:`nflows_np.base`, compositions in :mod:`nflows_np.composition`,
shared numerics in :mod:`nflows_np.numerics` and :mod:`nflows_np.linalg`, then
training, data, targets, plotting, grading and the command line around them.
``plotting``, ``grading`` and ``vae`` load on first use, so ``import nflows_np``
never imports matplotlib or scipy.
"""
import importlib
from typing import Any

from nflows_np import checkpoint, datasets, gradcheck, linalg, lvm, models, numerics, optim, targets, train
from nflows_np.base import Flow, Module
from nflows_np.composition import FlowModel
from nflows_np.distributions import StandardNormal, Uniform
from nflows_np.flows import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    ElementwiseAffine,
    Linear,
    LULinear,
    MaskedAutoregressive,
    Permutation,
    Planar,
    QRLinear,
    Radial,
    Reverse,
    SinhArcsinh,
    Sylvester,
)

_LAZY_MODULES = ("plotting", "grading", "vae")

__all__ = [
    "Flow", "FlowModel", "Module", "StandardNormal", "Uniform",
    "ElementwiseAffine", "SinhArcsinh", "Permutation", "Reverse", "ActNorm", "Linear", "LULinear", "QRLinear",
    "AdditiveCoupling", "AffineCoupling", "MaskedAutoregressive", "Planar", "Radial", "Sylvester",
    "checkpoint", "datasets", "gradcheck", "grading", "linalg", "lvm", "models", "numerics", "optim", "plotting",
    "targets", "train", "vae",
]


def __getattr__(name: str) -> Any:
    """``nf.plotting``, ``nf.grading`` and ``nf.vae`` are imported on first use (matplotlib and scipy are slow to import)."""
    if name in _LAZY_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_MODULES))
