"""The invertible layers, one module per family.

=================  ==============================================================
module             layers
=================  ==============================================================
elementwise        ElementwiseAffine, SinhArcsinh
permutation        Permutation, Reverse
actnorm            ActNorm
linear             Linear, LULinear, QRLinear
coupling           AdditiveCoupling, AffineCoupling  (conditioner: ``mlp.MLP``)
autoregressive     MaskedAutoregressive              (MADE masks: ``mlp``)
planar             Planar                             (residual pieces: ``residual``)
radial             Radial
sylvester          Sylvester
squeeze            Squeeze                            (images: (N, C·H·W) rows, channel-first)
pixelwise          PerPixel, InvertibleConv1x1, ChannelActNorm, ChannelPermutation
conv_coupling      ConvAffineCoupling                 (conditioner: ``ConvNet``, convolutions: ``nflows_np.conv``)
multiscale         FactorOut                          (multi-scale architecture)
=================  ==============================================================

Where a new flow goes
---------------------
A new family gets its own module here. Its layer subclasses
:class:`nflows_np.base.Flow` and implements four hooks, each pass next to its
backward::

    _forward(x)  -> (z, log_det, cache)      _forward_vjp(cache, grad_z, grad_log_det) -> grad_x
    _inverse(z)  -> (x, log_det, cache)      _inverse_vjp(cache, grad_x, grad_log_det) -> grad_z

registering its trainable arrays with ``self.add_param(name, value)``. The base
class validates inputs, remembers the pass for ``backward`` and keeps ``grads``.
Helpers shared by several families live in :mod:`nflows_np.numerics` and
:mod:`nflows_np.linalg`, never in a sibling family's module.

The layer joins the contract test (``tests/test_contract.py``: shapes, round
trip, log-det against scipy, every gradient against finite differences, bad
input) by adding a case to the registry in ``tests/flow_cases.py``.
"""
from nflows_np.flows.actnorm import ActNorm
from nflows_np.flows.autoregressive import MaskedAutoregressive
from nflows_np.flows.conv_coupling import ConvAffineCoupling
from nflows_np.flows.coupling import AdditiveCoupling, AffineCoupling
from nflows_np.flows.elementwise import ElementwiseAffine, SinhArcsinh
from nflows_np.flows.linear import Linear, LULinear, QRLinear
from nflows_np.flows.multiscale import FactorOut
from nflows_np.flows.permutation import Permutation, Reverse
from nflows_np.flows.pixelwise import ChannelActNorm, ChannelPermutation, InvertibleConv1x1, PerPixel
from nflows_np.flows.planar import Planar
from nflows_np.flows.radial import Radial
from nflows_np.flows.squeeze import Squeeze
from nflows_np.flows.sylvester import Sylvester

__all__ = [
    "ActNorm", "AdditiveCoupling", "AffineCoupling", "ElementwiseAffine", "LULinear", "Linear",
    "MaskedAutoregressive", "Permutation", "Planar", "QRLinear", "Radial", "Reverse", "SinhArcsinh", "Sylvester",
    "Squeeze", "PerPixel", "InvertibleConv1x1", "ChannelActNorm", "ChannelPermutation", "ConvAffineCoupling", "FactorOut",
]
