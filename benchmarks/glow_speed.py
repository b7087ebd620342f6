"""Speed of one Glow training step on the digits against the floor of its own matrix products and PyTorch.

Run:  /opt/tv/bin/python benchmarks/glow_speed.py [--repeats 9]   (any python; torch is optional)

Writes benchmarks/results/glow_speed.txt. The step: the benchmark's Glow (L = 2, K = 8,
64 hidden channels, split priors) on a batch of 64 dequantised digits, float64: forward,
log-likelihood, backward, Adam update; nflows_np runs at one BLAS thread.

The floor: exactly the matrix products its convolutions perform (forward, ∂L/∂W and ∂L/∂x
for every conv of every coupling network, as nflows_np.conv lays them out), recorded from
one real step and timed on arrays of the same shapes in a tight loop. The im2col floor: the
same with every 3×3 convolution done by im2col (the earlier definition; on the 2×2 level
nflows_np now uses the convolution's dense matrix, fewer multiplications).

PyTorch (only when ``import torch`` works): the same architecture written with autograd
(benchmarks/torch_glow.py) with a copy of the parameters; the script first checks that it
computes the same log-likelihood and gradients, then times it at 1 and 2 threads.

All figures come from the same run, interleaved: each repeat times one block of steps of
every contender in turn; min and median over repeats of the mean time per step.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from speed import blas_kernels, product_floor

from nflows_np import models, optim, train
from nflows_np.datasets.digits import LEVELS, SHAPE, load_digits
from nflows_np.flows import conv_coupling
from nflows_np.images import LogitTransform

RESULTS = os.path.join(os.path.dirname(__file__), "results", "glow_speed.txt")
BATCH = 64
FLOOR = "floor (the convolutions' products only)"
FLOOR_IM2COL = "im2col floor (the same, all by im2col)"
SAME_TOL = 1e-10  # |log p_numpy − log p_torch|: float64 round-off over ~100 layers is ~1e-13


def glow_model():
    """The benchmark's Glow, ActNorm initialised on a batch, parameters moved off the zero-initialised start."""
    model = models.glow_image(SHAPE, levels=2, steps=8, hidden=64, rng=0)
    rng = np.random.default_rng(0)
    x = LogitTransform(LEVELS).forward(load_digits("train").images[:BATCH], rng)[0]
    model.forward(x)  # ActNorm initialisation
    for value in model.params.values():  # away from the zero-initialised last layers, as during training
        value += 0.01 * rng.standard_normal(value.shape)
    return model, x


def numpy_step(model, x):
    adam = optim.Adam(model, lr=1e-3)

    def step():
        model.zero_grad()
        train.mle_step(model, x)
        adam.step()

    return step


def torch_step(tmodel, x):
    import torch

    adam = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    xt = torch.tensor(x)

    def step():
        adam.zero_grad()
        loss = -tmodel.log_prob(xt).mean()
        loss.backward()
        adam.step()

    return step


def compare_with_torch(model, tmodel, x) -> tuple[float, float]:
    """(max |Δ log p(x_n)|, max over parameter arrays of max |Δ ∂L/∂θ| / max |∂L/∂θ|) between nflows_np and torch, same parameters."""
    import torch

    xt = torch.tensor(x)
    log_p = tmodel.log_prob(xt)
    gap = float(np.max(np.abs(model.log_prob(x) - log_p.detach().numpy())))
    (-log_p.mean()).backward()
    model.zero_grad()
    train.mle_step(model, x)
    theirs = tmodel.grads_as_numpy(model)
    worst = max(np.max(np.abs(g - theirs[k])) / max(np.max(np.abs(g)), 1e-300) for k, g in model.grads.items())
    return gap, float(worst)


def recorded_convolutions(step) -> list[tuple[tuple, tuple]]:
    """(input shape, weight shape) of every conv2d call of one step."""
    calls, original = [], conv_coupling.conv2d

    def recording(x, weight, *args, **kwargs):
        calls.append((x.shape, weight.shape))
        return original(x, weight, *args, **kwargs)

    conv_coupling.conv2d = recording
    try:
        step()
    finally:
        conv_coupling.conv2d = original
    return calls


def product_shapes(calls, layout: str) -> list[tuple[int, int, int]]:
    """(rows, inner, columns) of the forward product of each recorded convolution.

    layout "nflows_np": as nflows_np.conv lays it out now — im2col of the narrower side, or the
    convolution's dense (H·W·C_in, H·W·C_out) matrix on images of at most k² pixels;
    "im2col": every k > 1 convolution by im2col (the floor's earlier definition; on a 2×2 image
    most of its rows multiply padding zeros).
    """
    shapes = []
    for (n, h, w, c_in), (k, _, _, c_out) in calls:
        if layout == "nflows_np" and k > 1 and h * w <= k * k:  # Y = X M, X (N, H·W·C_in)
            shapes.append((n, h * w * c_in, h * w * c_out))
        elif k > 1 and c_in > c_out:  # output side: P = X W_all, W_all (C_in, k²C_out)
            shapes.append((n * h * w, c_in, k * k * c_out))
        else:                       # input side: Y = X_col W_col, X_col (rows, k²C_in)
            shapes.append((n * h * w, k * k * c_in, c_out))
    return shapes


def mflop(shapes) -> float:
    return sum(2 * rows * a * b * 3 for rows, a, b in shapes) / 1e6


def interleaved(contenders: dict, steps: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per step of each contender, one block of ``steps`` per repeat, contenders taking turns.

    A contender is (setup, step): ``setup()`` runs before each of its blocks (thread settings).
    """
    for setup, step in contenders.values():  # warm-up
        setup()
        for _ in range(3):
            step()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, (setup, step) in contenders.items():
            setup()
            start = time.perf_counter()
            for _ in range(steps):
                step()
            times[name].append((time.perf_counter() - start) / steps)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed block")
    args = parser.parse_args()
    try:
        import torch
        import torch_glow
    except ImportError:
        torch = None
    lines = [
        "One Glow training step on the digits (L = 2, K = 8, hidden 64, split priors; batch 64, float64)",
        (f"run: {os.path.basename(sys.executable)} benchmarks/glow_speed.py --repeats {args.repeats} --steps {args.steps}   "
         f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores shared with other jobs, "
         f"load average {os.getloadavg()[0]:.1f} at the start)"),
        f"numpy {np.__version__}, BLAS: {blas_kernels()}; nflows_np at 1 BLAS thread",
    ]
    with threadpool_limits(1, "blas"):
        model, x = glow_model()
        contenders = {}
        if torch is not None:
            tmodel = torch_glow.from_nflows(model, SHAPE)
            gap, grad_gap = compare_with_torch(model, tmodel, x)
            if not gap <= SAME_TOL:
                raise SystemExit(f"torch and nflows_np disagree: max |Δ log p| = {gap:.2e} > {SAME_TOL:g}")
            lines.append(f"torch {torch.__version__} (same architecture and parameters, autograd): "
                         f"max |Δ log p(x)| = {gap:.1e}, max relative Δ of the gradients = {grad_gap:.1e}")
            for threads in (1, 2):
                contenders[f"torch autograd, {threads} thread{'s' * (threads > 1)}"] = (
                    lambda t=threads: torch.set_num_threads(t), torch_step(tmodel, x))
        else:
            lines.append("torch: not importable here, no autograd comparison (run with a python that has torch)")
        step = numpy_step(model, x)
        calls = recorded_convolutions(step)
        layouts = {layout: product_shapes(calls, layout) for layout in ("nflows_np", "im2col")}
        contenders = {"nflows_np step (forward + backward + Adam)": (lambda: None, step),
                      FLOOR: (lambda: None, product_floor(layouts["nflows_np"])),
                      FLOOR_IM2COL: (lambda: None, product_floor(layouts["im2col"])), **contenders}
        times = interleaved(contenders, args.steps, args.repeats)
    lines.append(f"convolutions per step: {len(calls)}; their products: {mflop(layouts['nflows_np']):.0f} MFLOP as "
                 f"nflows_np lays them out, {mflop(layouts['im2col']):.0f} MFLOP all by im2col")
    lines.append(f"ms per step over {args.repeats} interleaved blocks of {args.steps} steps:   min   median")
    for name, values in times.items():
        lines.append(f"  {name:<45s} {1000 * min(values):6.1f} {1000 * statistics.median(values):7.1f}")
    step_times = times[next(iter(times))]
    for name in (FLOOR, FLOOR_IM2COL):
        lines.append(f"ratio step / {name.split(' (')[0]}: {min(step_times) / min(times[name]):.2f} (min), "
                     f"{statistics.median(step_times) / statistics.median(times[name]):.2f} (median)")
    for name, values in times.items():
        if name.startswith("torch"):
            lines.append(f"ratio {name} / nflows_np step: {min(values) / min(step_times):.2f} (min), "
                         f"{statistics.median(values) / statistics.median(step_times):.2f} (median)")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
