"""nflows_np: normalizing flows in NumPy, with hand-written analytic gradients.

Directions follow the lecture: ``forward`` is f (data x → latent z), ``inverse``
is g = f⁻¹ (z → x). See ``DESIGN.md`` for the contract every layer honours.
"""
from nflows_np import datasets, gradcheck, io, linalg, lvm, optim, targets, train
from nflows_np import grading, models, plotting  # after the layers: they build on them
from nflows_np.actnorm import ActNorm
from nflows_np.autoregressive import MaskedAutoregressive
from nflows_np.base import Flow
from nflows_np.coupling import AdditiveCoupling, AffineCoupling
from nflows_np.distributions import StandardNormal, Uniform
from nflows_np.elementwise import ElementwiseAffine, SinhArcsinh
from nflows_np.linear import Linear, LULinear, QRLinear
from nflows_np.model import FlowModel
from nflows_np.permutation import Permutation, Reverse
from nflows_np.planar import Planar
from nflows_np.radial import Radial
from nflows_np.sylvester import Sylvester

__all__ = [
    "Flow", "FlowModel", "StandardNormal", "Uniform",
    "ElementwiseAffine", "SinhArcsinh", "Permutation", "Reverse", "ActNorm", "Linear", "LULinear", "QRLinear",
    "AdditiveCoupling", "AffineCoupling", "MaskedAutoregressive", "Planar", "Radial", "Sylvester",
    "datasets", "gradcheck", "grading", "io", "linalg", "lvm", "models", "optim", "plotting", "targets", "train",
]
