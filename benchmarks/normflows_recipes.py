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
"""
from __future__ import annotations

import os
import sys
import time

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
