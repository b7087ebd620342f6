"""Speed of one Glow training step on the digits against the floor of its own matrix products.

Run:  python benchmarks/glow_speed.py [--repeats 5]

Writes benchmarks/results/glow_speed.txt. The step: the benchmark's Glow (L = 2, K = 8,
64 hidden channels, split priors) on a batch of 64 dequantised digits, float64, one BLAS
thread: forward, log-likelihood, backward, Adam update. The floor: exactly the matrix
products its convolutions perform (forward, ∂L/∂W and ∂L/∂x for every conv of every
coupling network, as nflows_np.conv lays them out: im2col of the narrower side), recorded
from one real step and timed on arrays of the same shapes in a tight loop. The ratio is of
two figures measured in the same run (the machine is shared, absolute times drift).
PyTorch is not installed here, so there is no autograd column.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from nflows_np import models, optim, train
from nflows_np.datasets.digits import LEVELS, SHAPE, load_digits
from nflows_np.flows import conv_coupling
from nflows_np.images import LogitTransform
from speed import timeit  # the same timer as the other speed benchmark (median of block means)

RESULTS = os.path.join(os.path.dirname(__file__), "results", "glow_speed.txt")
BATCH = 64


def glow_step():
    model = models.glow_image(SHAPE, levels=2, steps=8, hidden=64, rng=0)
    rng = np.random.default_rng(0)
    x = LogitTransform(LEVELS).forward(load_digits("train").images[:BATCH], rng)[0]
    model.forward(x)  # ActNorm initialisation
    for value in model.params.values():  # away from the zero-initialised last layers, as during training
        value += 0.01 * rng.standard_normal(value.shape)
    adam = optim.Adam(model, lr=1e-3)

    def step():
        model.zero_grad()
        train.mle_step(model, x)
        adam.step()

    return step


def recorded_convolutions(step) -> list[tuple[tuple, tuple]]:
    """(input shape, weight shape) of every conv2d call of one step."""
    calls, original = [], conv_coupling.conv2d

    def recording(x, weight, bias=None):
        calls.append((x.shape, weight.shape))
        return original(x, weight, bias)

    conv_coupling.conv2d = recording
    try:
        step()
    finally:
        conv_coupling.conv2d = original
    return calls


def product_floor(calls):
    """The three products of each recorded convolution, on random arrays of the same shapes."""
    rng = np.random.default_rng(0)
    products = []
    for (n, h, w, c_in), (k, _, _, c_out) in calls:
        rows = n * h * w
        if k > 1 and c_in > c_out:  # output side: P = X W_all, W_all (C_in, k²C_out)
            a, b = c_in, k * k * c_out
        else:                       # input side: Y = X_col W_col, X_col (rows, k²C_in)
            a, b = k * k * c_in, c_out
        products.append((rng.standard_normal((rows, a)), rng.standard_normal((a, b)), rng.standard_normal((rows, b))))

    def step():
        for x, wt, g in products:
            x @ wt     # forward
            x.T @ g    # ∂L/∂W
            g @ wt.T   # ∂L/∂x
    return step, products


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with threadpool_limits(1, "blas"):
        step = glow_step()
        calls = recorded_convolutions(step)
        floor, products = product_floor(calls)
        flops = sum(2 * x.shape[0] * x.shape[1] * wt.shape[1] * 3 for x, wt, _ in products)
        seconds_step = timeit(step, 10, args.repeats)
        seconds_floor = timeit(floor, 10, args.repeats)
    lines = [
        "One Glow training step on the digits (L = 2, K = 8, hidden 64, split priors; batch 64, float64, 1 BLAS thread)",
        (f"run: python benchmarks/glow_speed.py --repeats {args.repeats}   "
         f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, machine shared with other jobs)"),
        f"convolutions per step: {len(calls)}; their products: {flops / 1e6:.0f} MFLOP",
        f"step (forward + backward + Adam): {1000 * seconds_step:7.1f} ms",
        f"floor (the convolutions' products only): {1000 * seconds_floor:7.1f} ms",
        f"ratio step / floor: {seconds_step / seconds_floor:.2f}",
        "PyTorch: not installed on this machine, no autograd comparison.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
