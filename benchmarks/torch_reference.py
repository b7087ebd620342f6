"""PyTorch-autograd versions of the benchmarked models, for side-by-side timing only.

PyTorch is optional and not in requirements.txt: ``benchmarks/speed.py`` uses
this module only when ``import torch`` works. The models mirror nflows_np's
exactly (same architecture, float64, the same bounded log-scale), so the two
timings compare the same arithmetic: hand-written backward vs autograd.
"""
from __future__ import annotations

import torch


class Coupling(torch.nn.Module):
    """RealNVP affine coupling, mask [1, 0] or [0, 1] in 2-D, tanh MLP conditioner."""

    def __init__(self, mask, hidden=(64, 64), bound=3.0):
        super().__init__()
        self.register_buffer("mask", torch.tensor(mask, dtype=torch.float64))
        self.index_a = [i for i, m in enumerate(mask) if m == 1]
        self.index_b = [i for i, m in enumerate(mask) if m == 0]
        sizes = [len(self.index_a), *hidden, 2 * len(self.index_b)]
        layers = []
        for k in range(len(sizes) - 1):
            layers.append(torch.nn.Linear(sizes[k], sizes[k + 1], dtype=torch.float64))
            if k < len(sizes) - 2:
                layers.append(torch.nn.Tanh())
        self.net = torch.nn.Sequential(*layers)
        self.bound = bound

    def forward(self, x):
        x_a, x_b = x[:, self.index_a], x[:, self.index_b]
        out = self.net(x_a)
        n_b = len(self.index_b)
        s = self.bound * torch.tanh(out[:, :n_b] / self.bound)
        z_b = x_b * torch.exp(s) + out[:, n_b:]
        z = torch.empty_like(x)
        z[:, self.index_a] = x_a
        z[:, self.index_b] = z_b
        return z, s.sum(dim=1)


class RealNVP(torch.nn.Module):
    def __init__(self, num_layers=8, hidden=(64, 64)):
        super().__init__()
        self.layers = torch.nn.ModuleList(
            Coupling([1, 0] if k % 2 == 0 else [0, 1], hidden) for k in range(num_layers))

    def nll(self, x):
        log_det = torch.zeros(x.shape[0], dtype=torch.float64)
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        log_pz = -0.5 * (x * x).sum(dim=1) - x.shape[1] * 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=torch.float64))
        return -(log_pz + log_det).mean()


class Planar(torch.nn.Module):
    """x = z + û tanh(wᵀz + b) with û = u + (m(wᵀu) − wᵀu) w/‖w‖², m(s) = −1 + softplus(s)."""

    def __init__(self, dim):
        super().__init__()
        self.u = torch.nn.Parameter(0.1 * torch.randn(dim, dtype=torch.float64))
        self.w = torch.nn.Parameter(0.1 * torch.randn(dim, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, z):
        wu = self.w @ self.u
        u_hat = self.u + (torch.nn.functional.softplus(wu) - 1 - wu) * self.w / (self.w @ self.w)
        a = z @ self.w + self.b
        h = torch.tanh(a)
        x = z + h[:, None] * u_hat
        log_det = torch.log(torch.abs(1 + (1 - h * h) * (self.w @ u_hat)))
        return x, log_det


def u1_log_prob(x):
    """−U1 of Rezende & Mohamed (2015)."""
    norm = torch.sqrt((x * x).sum(dim=1))
    a = -0.5 * ((x[:, 0] - 2) / 0.6) ** 2
    b = -0.5 * ((x[:, 0] + 2) / 0.6) ** 2
    return -0.5 * ((norm - 2) / 0.4) ** 2 + torch.logaddexp(a, b)


class PlanarFlow(torch.nn.Module):
    def __init__(self, dim=2, num_layers=16):
        super().__init__()
        self.layers = torch.nn.ModuleList(Planar(dim) for _ in range(num_layers))

    def reverse_kl(self, z):
        log_pz = -0.5 * (z * z).sum(dim=1) - z.shape[1] * 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=torch.float64))
        x, log_det = z, torch.zeros(z.shape[0], dtype=torch.float64)
        for layer in reversed(self.layers):  # x = g_1 ∘ … ∘ g_K(z): g_K first
            x, ld = layer(x)
            log_det = log_det + ld
        return (log_pz - log_det - u1_log_prob(x)).mean()
