"""The digits Glow of ``nflows_np.models.glow_image`` in PyTorch autograd, for side-by-side timing only.

PyTorch is optional and not in requirements.txt: ``benchmarks/glow_speed.py`` imports
this module only when ``import torch`` works. :func:`from_nflows` builds the torch
model layer by layer from an nflows_np Glow and copies its parameters, so both
compute the same function of the same parameters (``glow_speed.py`` checks that the
two log-likelihoods agree to 1e-10 before timing):

- Squeeze: z[4c + 2a + b, i, j] = x[c, 2i + a, 2j + b];
- channel ActNorm: z = x·exp(s_c) + t_c, log-det H·W·Σ s;
- invertible 1×1 convolution: W = P L (U + diag(sign·exp(log_s))), log-det H·W·Σ log_s;
- affine coupling over channels with the conditioner 3×3 conv → ReLU → 1×1 conv → ReLU
  → 3×3 conv ("same" padding), s = 3·tanh(ŝ/3), z_B = x_B·exp(s) + t;
- the split: the first half of the channels goes on to the next level, the rest is
  scored by the base N(0, I) with the rest of z.

Everything in float64, channels-first (torch's layout), as nflows_np's (N, C·H·W) rows.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

BOUND = 3.0  # nflows_np.numerics.LOG_SCALE_BOUND


def _parameter(array: np.ndarray) -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.tensor(np.asarray(array), dtype=torch.float64))


class Squeeze(torch.nn.Module):
    sources: dict = {}  # noqa: RUF012  (no parameters)

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return x.reshape(n, 4 * c, h // 2, w // 2), 0.0


class ActNorm(torch.nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.s = _parameter(layer.params["actnorm.s"])
        self.t = _parameter(layer.params["actnorm.t"])
        self.sources = {"actnorm.s": self.s, "actnorm.t": self.t}  # nflows_np name → parameter

    def forward(self, x):
        pixels = x.shape[2] * x.shape[3]
        return x * torch.exp(self.s)[:, None, None] + self.t[:, None, None], pixels * self.s.sum()


class InvConv1x1(torch.nn.Module):
    """W = P L (U + diag s): (P b)_i = b_{perm[i]}, so W = (L U′)[perm]."""

    def __init__(self, layer):
        super().__init__()
        lu = layer.layer
        self.lower = _parameter(lu.params["lower"])
        self.upper = _parameter(lu.params["upper"])
        self.log_s = _parameter(lu.params["log_s"])
        self.register_buffer("sign", torch.tensor(lu.sign, dtype=torch.float64))
        self.register_buffer("eye", torch.eye(lu.dim, dtype=torch.float64))
        self.perm = torch.tensor(lu.perm, dtype=torch.long)
        self.sources = {"lu.lower": self.lower, "lu.upper": self.upper, "lu.log_s": self.log_s}

    def forward(self, x):
        lower = torch.tril(self.lower, -1) + self.eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign * torch.exp(self.log_s))
        weight = (lower @ upper)[self.perm]
        pixels = x.shape[2] * x.shape[3]
        return F.conv2d(x, weight[:, :, None, None]), pixels * self.log_s.sum()


class Coupling(torch.nn.Module):
    """z_A = x_A, z_B = x_B·exp(s) + t, (ŝ, t) = conv3×3 → ReLU → conv1×1 → ReLU → conv3×3 (x_A)."""

    def __init__(self, layer):
        super().__init__()
        p = layer.net.params
        # nflows_np kernels are (k, k, C_in, C_out); torch's (C_out, C_in, k, k); both cross-correlate
        self.w1, self.w2, self.w3 = (_parameter(p[k].transpose(3, 2, 0, 1)) for k in ("W1", "W2", "W3"))
        self.b1, self.b2, self.b3 = (_parameter(p[k]) for k in ("b1", "b2", "b3"))
        self.c_a = layer.c_a
        self.sources = {f"net.{k}": v for k, v in zip(("W1", "W2", "W3", "b1", "b2", "b3"),
                                                     (self.w1, self.w2, self.w3, self.b1, self.b2, self.b3))}

    def forward(self, x):
        x_a, x_b = x[:, :self.c_a], x[:, self.c_a:]
        h = torch.relu(F.conv2d(x_a, self.w1, self.b1, padding=1))
        h = torch.relu(F.conv2d(h, self.w2, self.b2))
        raw = F.conv2d(h, self.w3, self.b3, padding=1)
        c_b = x_b.shape[1]
        s = BOUND * torch.tanh(raw[:, :c_b] / BOUND)
        return torch.cat([x_a, x_b * torch.exp(s) + raw[:, c_b:]], dim=1), s.sum(dim=(1, 2, 3))


class Level(torch.nn.Module):
    """The layers of one FlowModel; a FactorOut passes its first channels to the next level."""

    def __init__(self, model, prefix: str = ""):
        super().__init__()
        self.layers = torch.nn.ModuleList()
        self.inner = None
        self.sources = {}  # nflows_np's FlowModel key → torch parameter
        for index, layer in enumerate(model.layers):
            kind = type(layer).__name__
            if kind == "FactorOut":
                self.inner = Level(layer.inner, f"{prefix}{index}.inner.")
                sources = self.inner.sources
            else:
                module = {"Squeeze": Squeeze, "ChannelActNorm": ActNorm, "InvertibleConv1x1": InvConv1x1,
                          "ConvAffineCoupling": Coupling}[kind](*(() if kind == "Squeeze" else (layer,)))
                self.layers.append(module)
                sources = {f"{prefix}{index}.{key}": value for key, value in module.sources.items()}
            self.sources.update(sources)

    def forward(self, x):
        """(the latent pieces, channels-first images, and the summed log-det)."""
        log_det = 0.0
        for layer in self.layers:
            x, layer_log_det = layer(x)
            log_det = log_det + layer_log_det
        if self.inner is None:
            return [x], log_det
        half = x.shape[1] // 2
        inner, inner_log_det = self.inner(x[:, :half])
        return inner + [x[:, half:]], log_det + inner_log_det


class Glow(torch.nn.Module):
    def __init__(self, model, shape):
        super().__init__()
        self.level = Level(model)
        self.shape = tuple(shape)
        if set(self.level.sources) != set(model.params):
            raise ValueError("torch Glow: the parameters do not match the nflows_np model's")

    def grads_as_numpy(self, model) -> dict[str, np.ndarray]:
        """torch's gradients under nflows_np's names and layouts (kernels back to (k, k, C_in, C_out))."""
        out = {}
        for key, param in self.level.sources.items():
            grad = param.grad.numpy()
            out[key] = grad.transpose(2, 3, 1, 0) if grad.ndim == 4 else grad
        return out

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = log N(f(x); 0, I) + log|det ∂f/∂x| for (N, C·H·W) rows."""
        pieces, log_det = self.level(x.reshape(x.shape[0], *self.shape))
        z = torch.cat([piece.reshape(x.shape[0], -1) for piece in pieces], dim=1)
        return -0.5 * (z * z).sum(dim=1) - 0.5 * z.shape[1] * math.log(2 * math.pi) + log_det


def from_nflows(model, shape) -> Glow:
    """A torch Glow with the layers and a copy of the parameters of an nflows_np ``glow_image`` model."""
    return Glow(model, shape)
