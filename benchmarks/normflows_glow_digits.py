"""normflows' multiscale Glow on our digits split, scored exactly as benchmarks/glow_digits.py scores ours.

Run (needs torch and normflows, which this project does not depend on):
    /opt/tv/bin/python benchmarks/normflows_glow_digits.py [--seeds 0 1 2] [--max-steps 3000] [--ema 0.99]

Model: normflows' Glow as in its example notebook, L = 2 levels, K = 8 ``GlowBlock`` per level (affine
coupling with a 3×3 → 1×1 → 3×3 ConvNet2d of 64 hidden channels, zero-initialised last layer, Glow's
sigmoid scale map; LU 1×1 convolution; ActNorm initialised on the first batch), ``Squeeze`` between
levels, and normflows' split prior: every factored-out half has its own ``GlowBase``, a diagonal
Gaussian with a learned mean and scale per channel (not conditioned on the kept half). float64,
one thread, Adam lr 1e-3, batch 64.

Data and scores come from nflows_np, so that only the model differs: the fixed 1297 / 250 / 250 split,
``LogitTransform`` (uniform dequantisation, logit with α = 0.05, minibatches drawn epoch by epoch and
freshly dequantised), ActNorm initialised on 512 training images, validation bits/dim every 100 steps
(one fixed dequantisation draw), early stopping with patience 4 (the best evaluation's parameters are
kept), test bits/dim of the discrete images with ``images.bits_per_dim``. ``--ema`` evaluates an
exponential moving average of the parameters instead (as benchmarks/glow_digits.py does); the default
is plain Adam, as normflows trains.

Writes benchmarks/results/normflows_glow_digits.txt.
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time

import normflows
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from nflows_np.datasets.digits import LEVELS, SHAPE, load_digits
from nflows_np.images import LogitTransform

RESULTS = os.path.join(os.path.dirname(__file__), "results", "normflows_glow_digits.txt")
LEVELS_L, STEPS_K, HIDDEN = 2, 8, 64
ALPHA = 0.05
TRAINING = {"batch_size": 64, "lr": 1e-3, "eval_every": 100, "patience": 4, "init_batch": 512}
torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


def build_glow() -> normflows.MultiscaleFlow:
    """normflows' multiscale Glow (its example notebook's construction) for (1, 8, 8) images, L = 2, K = 8."""
    channels, (_, height, width) = SHAPE[0], SHAPE
    q0, merges, flows = [], [], []
    for i in range(LEVELS_L):  # level 0 is the deepest (smallest) one, as in normflows
        blocks = [normflows.flows.GlowBlock(channels * 2 ** (LEVELS_L + 1 - i), HIDDEN, split_mode="channel",
                                            scale=True) for _ in range(STEPS_K)]
        flows.append(blocks + [normflows.flows.Squeeze()])
        if i > 0:
            merges.append(normflows.flows.Merge())
            latent = (channels * 2 ** (LEVELS_L - i), height // 2 ** (LEVELS_L - i), width // 2 ** (LEVELS_L - i))
        else:
            latent = (channels * 2 ** (LEVELS_L + 1), height // 2 ** LEVELS_L, width // 2 ** LEVELS_L)
        q0.append(normflows.distributions.GlowBase(latent))
    return normflows.MultiscaleFlow(q0, flows, merges, class_cond=False)


class Scored:
    """An (N, 64) NumPy ``log_prob`` around the torch model, for ``LogitTransform.bits_per_dim``."""

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model.log_prob(torch.from_numpy(np.ascontiguousarray(x)).view(-1, *SHAPE), None).numpy()


def run_seed(seed: int, max_steps: int, ema: float | None, splits: dict) -> dict:
    transform = LogitTransform(LEVELS, ALPHA)
    rng = np.random.default_rng(seed)
    test_seed, val_seed = (int(v) for v in rng.integers(2**63, size=2))
    torch.manual_seed(seed)
    model = build_glow()
    sampler = transform.sampler(splits["train"])
    with torch.no_grad():  # ActNorm's data-dependent initialisation on one batch
        model.log_prob(torch.from_numpy(sampler(TRAINING["init_batch"], rng)).view(-1, *SHAPE), None)
    optimizer = torch.optim.Adam(model.parameters(), lr=TRAINING["lr"])
    averaged = copy.deepcopy(model) if ema is not None else None
    scored = Scored(averaged if averaged is not None else model)
    best_state, best_val, best_step, history = None, np.inf, 0, []
    start, step, stopped = time.perf_counter(), 0, f"reached max_steps = {max_steps}"
    while step < max_steps:
        x = torch.from_numpy(sampler(TRAINING["batch_size"], rng)).view(-1, *SHAPE)
        loss = model.forward_kld(x)
        if not torch.isfinite(loss):
            stopped = f"non-finite loss at step {step}"
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if averaged is not None:
            with torch.no_grad():
                for mine, theirs in zip(averaged.parameters(), model.parameters()):
                    mine.mul_(ema).add_(theirs, alpha=1.0 - ema)
                for mine, theirs in zip(averaged.buffers(), model.buffers()):
                    mine.copy_(theirs)
        if step % TRAINING["eval_every"] == 0:
            value = transform.bits_per_dim(scored, splits["validation"], rng=val_seed)
            history.append(value)
            if value < best_val:
                best_val, best_step = value, step
                best_state = copy.deepcopy(scored.model.state_dict())
            if len(history) - 1 - history.index(best_val) >= TRAINING["patience"]:
                stopped = f"early stop at step {step}"
                break
    seconds = time.perf_counter() - start
    scored.model.load_state_dict(best_state)
    return {"seed": seed, "test": transform.bits_per_dim(scored, splits["test"], rng=test_seed), "val": best_val,
            "best_step": best_step, "steps": step, "stopped": stopped, "seconds": seconds,
            "ms_per_step": 1000 * seconds / max(step, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--ema", type=float, default=None, help="decay of a parameter average (default: none)")
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args()
    splits = {name: load_digits(name).images for name in ("train", "validation", "test")}
    n_params = sum(p.numel() for p in build_glow().parameters())
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(seed, args.max_steps, args.ema, splits))
        r = rows[-1]
        print(f"seed {seed}: test {r['test']:.3f}  val {r['val']:.3f}  best step {r['best_step']}  ({r['stopped']}, "
              f"{r['seconds']:.0f} s, {r['ms_per_step']:.0f} ms/step)", flush=True)
    tests = np.array([r["test"] for r in rows])
    command = (f"/opt/tv/bin/python benchmarks/normflows_glow_digits.py --seeds {' '.join(map(str, args.seeds))} "
               f"--max-steps {args.max_steps}" + (f" --ema {args.ema}" if args.ema is not None else ""))
    lines = [
        "normflows' multiscale Glow on our digits split (1297 train / 250 validation / 250 test), test bits/dim",
        f"run: {command}",
        (f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, torch "
         f"{torch.__version__}, normflows {normflows.__version__}, float64, 1 thread, machine shared with other jobs"),
        (f"glow: L = {LEVELS_L}, K = {STEPS_K}, hidden {HIDDEN}, GlowBase split priors, {n_params} parameters; "
         f"{TRAINING}, ema {args.ema}; logit alpha {ALPHA}"),
        "",
        f"{'seed':>4}  {'test':>6}  {'val':>6}  {'best step':>9}  {'steps':>5}  {'train s':>7}  {'ms/step':>7}",
    ]
    for r in rows:
        lines.append(f"{r['seed']:>4}  {r['test']:6.3f}  {r['val']:6.3f}  {r['best_step']:>9}  {r['steps']:>5}  "
                     f"{r['seconds']:7.0f}  {r['ms_per_step']:7.0f}")
    lines.append(f"mean {tests.mean():.3f}, median {np.median(tests):.3f}, worst {tests.max():.3f}")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
