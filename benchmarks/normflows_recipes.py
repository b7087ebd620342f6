"""The lecture's two recipes in normflows (PyTorch), for a side-by-side with tests/test_quality.py.

Run (needs torch and normflows, which this project does not depend on):
    python benchmarks/normflows_recipes.py [SEEDS...]

Same recipes, same data, same evaluation as tests/test_quality.py:

- RealNVP: 8 ``AffineCouplingBlock`` (normflows' MLP [1, 64, 64, 2] with zero-initialised
  last layer, ReLU, scale map exp) with a swap ``Permute`` between them (the masks
  [1,0]/[0,1]), float64, Adam lr 1e-3, batch 512 of fresh moons samples (nflows_np's
  sampler, seeded as the test does), 3000 steps; gap of the test NLL on the test's
  20 000 held-out points to the entropy.
- Planar: 16 normflows ``Planar`` layers (their initialisation), reverse KL to U1 (the
  energy written in torch), Adam lr 1e-3, batch 512, 5000 steps, β from 0.01 to 1 over
  the first 2500; KL = F + log Z with F on 50 000 samples and nflows_np's log Z.

Prints one line per run and a summary; writes benchmarks/results/normflows_recipes.txt.

Also the normflows side of the leaderboard (benchmarks/leaderboard.py, part (c)):
``mle_run`` and ``kl_run`` train normflows' RealNVP, MAF, Glow-style, planar and
radial flows at the leaderboard's budget, on the same data stream, seeds and test
points as the nflows_np runs.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any

import normflows
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nflows_np as nf  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "normflows_recipes.txt")
torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


def realnvp_model(num_layers: int = 8) -> normflows.NormalizingFlow:
    """normflows' RealNVP of the recipe: AffineCouplingBlock (MLP [1, 64, 64, 2], ReLU, zero last layer,
    scale exp) and a swap Permute, ``num_layers`` times, on a standard normal base."""
    flows = []
    for _ in range(num_layers):
        flows += [normflows.flows.AffineCouplingBlock(normflows.nets.MLP([1, 64, 64, 2], init_zeros=True)),
                  normflows.flows.Permute(2, mode="swap")]
    return normflows.NormalizingFlow(normflows.distributions.DiagGaussian(2, trainable=False), flows)


def maf_model(num_layers: int = 5) -> normflows.NormalizingFlow:
    """normflows' MaskedAffineAutoregressive (MADE of width 64: its linear input layer, two masked
    ReLU layers, no residual blocks) with a swap Permute between layers, ``num_layers`` of them."""
    flows = []
    for k in range(num_layers):
        flows += ([normflows.flows.Permute(2, mode="swap")] if k else []) + [
            normflows.flows.MaskedAffineAutoregressive(2, 64, num_blocks=2, use_residual_blocks=False)]
    return normflows.NormalizingFlow(normflows.distributions.DiagGaussian(2, trainable=False), flows)


def glow_model(num_layers: int = 4) -> normflows.NormalizingFlow:
    """Glow-style steps x → z: ActNorm → LULinearPermute → AffineCouplingBlock (MLP [1, 64, 64, 2], ReLU).

    normflows lists flows in the sampling direction z → x, so the x → z sequence is reversed.
    """
    to_latent = []
    for _ in range(num_layers):
        to_latent += [normflows.flows.ActNorm((2,)), normflows.flows.LULinearPermute(2),
                      normflows.flows.AffineCouplingBlock(normflows.nets.MLP([1, 64, 64, 2], init_zeros=True))]
    return normflows.NormalizingFlow(normflows.distributions.DiagGaussian(2, trainable=False), to_latent[::-1])


MLE_MODELS = {"realnvp": realnvp_model, "maf": maf_model, "glow": glow_model}
KL_LAYERS = {"planar": normflows.flows.Planar, "radial": normflows.flows.Radial}


class _NumpyLogProb(torch.autograd.Function):
    """log π̃(x) of an nflows_np target, with its analytic gradient: the very same energy on both sides."""

    @staticmethod
    def forward(ctx, x, target):
        value, grad = target.log_prob_and_grad(x.detach().numpy()) if hasattr(target, "log_prob_and_grad") \
            else (target.log_prob(x.detach().numpy()), target.grad_log_prob(x.detach().numpy()))
        ctx.save_for_backward(torch.from_numpy(np.ascontiguousarray(grad)))
        return torch.from_numpy(np.asarray(value, dtype=np.float64))

    @staticmethod
    def backward(ctx, grad_value):
        (grad,) = ctx.saved_tensors
        return grad_value[:, None] * grad, None


class NumpyTarget(normflows.distributions.Target):
    """An nflows_np target (U1–U4, with their walls) as a normflows target."""

    def __init__(self, target: Any):
        super().__init__()
        self.target = target

    def log_prob(self, z):
        return _NumpyLogProb.apply(z, self.target)


def mle_run(family: str, data: str, seed: int, steps: int, batch: int, lr: float,
            test_points: int) -> tuple[float, float]:
    """(gap of the test NLL to the entropy, seconds of training) for normflows' ``family`` on one toy.

    The minibatches are nflows_np's sampler on ``default_rng(seed)``, as ``nf.train.fit_mle``
    draws them; the test points are the leaderboard's. A non-finite loss stops the run (gap NaN).
    """
    torch.manual_seed(seed)
    model = MLE_MODELS[family]()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(steps):
        x = torch.from_numpy(nf.datasets.sample(data, batch, rng))
        optimizer.zero_grad()
        loss = model.forward_kld(x)
        if not torch.isfinite(loss):
            return float("nan"), time.perf_counter() - start
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    test = torch.from_numpy(nf.datasets.sample(data, test_points, rng=10_000 + seed))
    with torch.no_grad():
        nll = -float(torch.cat([model.log_prob(part) for part in test.split(4096)]).mean())
    return nll - nf.datasets.ENTROPY[data], seconds


def kl_run(flow: str, target_name: str, depth: int, seed: int, steps: int, batch: int, lr: float,
           eval_samples: int) -> tuple[float, float, float]:
    """(KL, its Monte Carlo standard error, seconds) for ``depth`` normflows ``flow`` layers on one target.

    Reverse KL with β from 0.01 to 1 over the first half of the steps (``nf.train.linear_beta``),
    KL = F + log Z with F on ``eval_samples`` samples, as the leaderboard's nflows_np runs.
    """
    torch.manual_seed(seed)
    target = nf.targets.get(target_name)
    model = normflows.NormalizingFlow(normflows.distributions.DiagGaussian(2, trainable=False),
                                      [KL_LAYERS[flow]((2,)) for _ in range(depth)], NumpyTarget(target))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    beta = nf.train.linear_beta(0.01, 1.0, steps // 2)
    start = time.perf_counter()
    for t in range(steps):
        optimizer.zero_grad()
        loss = model.reverse_kld(batch, beta=beta(t))
        if not torch.isfinite(loss):
            return float("nan"), float("nan"), time.perf_counter() - start
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        x, log_q = model.sample(eval_samples)
    log_w = log_q.numpy() - target.log_prob(x.numpy())
    return float(log_w.mean() + target.log_z), float(log_w.std() / np.sqrt(log_w.size)), seconds


def realnvp_gap(seed: int) -> float:
    torch.manual_seed(seed)
    model = realnvp_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    for _ in range(3000):
        x = torch.from_numpy(nf.datasets.sample("moons", 512, rng))
        optimizer.zero_grad()
        loss = model.forward_kld(x)
        loss.backward()
        optimizer.step()
    test = torch.from_numpy(nf.datasets.sample("moons", 20_000, rng=10_000 + seed))
    with torch.no_grad():
        nll = -model.log_prob(test).mean().item()
    return nll - nf.datasets.ENTROPY["moons"]


class U1(normflows.distributions.Target):
    """Rezende & Mohamed's U1, unnormalised: log π̃ = −U1."""

    def __init__(self):
        super().__init__(prop_scale=torch.tensor(4.0), prop_shift=torch.tensor(0.0))

    def log_prob(self, z):
        r = torch.linalg.norm(z, dim=1)
        ring = 0.5 * ((r - 2.0) / 0.4) ** 2
        modes = torch.logsumexp(torch.stack([-0.5 * ((z[:, 0] - 2.0) / 0.6) ** 2,
                                             -0.5 * ((z[:, 0] + 2.0) / 0.6) ** 2], 1), 1)
        return -ring + modes


def planar_kl(seed: int) -> float:
    torch.manual_seed(seed)
    flows = [normflows.flows.Planar((2,)) for _ in range(16)]
    model = normflows.NormalizingFlow(normflows.distributions.DiagGaussian(2, trainable=False), flows, U1())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for t in range(5000):
        beta = 0.01 + (1.0 - 0.01) * t / 2500 if t < 2500 else 1.0
        optimizer.zero_grad()
        loss = model.reverse_kld(512, beta=beta)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        x, log_q = model.sample(50_000)
        free_energy = (log_q - model.p.log_prob(x)).mean().item()
    return free_energy + nf.targets.get("U1").log_z


def main(seeds: list[int]) -> None:
    lines = [f"# normflows {normflows.__version__}, torch {torch.__version__}, float64, 1 thread; "
             f"{time.strftime('%Y-%m-%d %H:%M')}; python benchmarks/normflows_recipes.py {' '.join(map(str, seeds))}"]
    for name, run in (("RealNVP moons gap", realnvp_gap), ("planar U1 KL", planar_kl)):
        values = []
        for seed in seeds:
            start = time.perf_counter()
            values.append(run(seed))
            print(f"{name} seed {seed}: {values[-1]:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
        lines.append(f"{name}, seeds {seeds}: {np.round(values, 4).tolist()}, median {np.median(values):.4f}, "
                     f"max {max(values):.4f}")
        print(lines[-1], flush=True)
    with open(RESULTS, "w") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [0, 1, 2, 3, 4])
