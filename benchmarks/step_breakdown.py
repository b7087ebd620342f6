"""Where the RealNVP training step's time goes: each operation of one coupling layer, timed alone.

Run:  python benchmarks/step_breakdown.py

The recipe's layer (mask [1, 0], MLP 1 → 64 → 64 → 2, ReLU, batch 512, float64, one BLAS
thread), in the layout the library uses (features × samples, [W; b] blocks, activations with
a row of ones). Each figure is the min over rounds of the thread CPU time per call, so load
from other processes inflates it less than wall time. Also: the whole layer's forward and
vector-Jacobian product at N = 512 and at N = 8 (there almost all of it is per-call overhead:
Python and NumPy dispatch), Adam's update of the 8-layer model, and the three-products floor.
Writes benchmarks/results/step_breakdown.txt.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nflows_np as nf  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "step_breakdown.txt")


def cost(fn, calls: int = 200, rounds: int = 7) -> float:
    """Min over rounds of the thread CPU seconds per call."""
    fn()
    best = np.inf
    for _ in range(rounds):
        start = time.thread_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.thread_time() - start) / calls)
    return best


def operations(n: int = 512, width: int = 64) -> dict[str, object]:
    rng = np.random.default_rng(0)
    a0 = np.ones((2, n))
    a0[0] = rng.standard_normal(n)
    a1, a2 = (np.ones((width + 1, n)) for _ in range(2))
    a1[:-1], a2[:-1] = (np.maximum(rng.standard_normal((width, n)), 0.0) for _ in range(2))
    b1, b2 = rng.standard_normal((2, width)), rng.standard_normal((width + 1, width))
    b3 = rng.standard_normal((width + 1, 2))
    g3, g2 = rng.standard_normal((2, n)), rng.standard_normal((width, n))
    hidden, active = np.empty((width, n)), np.empty((width, n), dtype=bool)
    return {
        "forward, hidden 64x64 product (floor)": lambda: np.dot(b2.T, a1, out=a2[:-1]),
        "forward, first layer 1->64 product": lambda: np.dot(b1.T, a0, out=a1[:-1]),
        "forward, ReLU (x2 per layer)": lambda: np.maximum(a1[:-1], 0.0, out=a1[:-1]),
        "forward, output 64->2 product": lambda: np.dot(b3.T, a2),
        "backward, hidden [dW; db] product (floor)": lambda: np.dot(a1, g2.T),
        "backward, hidden input-gradient product (floor)": lambda: np.dot(b2[:-1], g2, out=hidden),
        "backward, ReLU mask (x2 per layer)": lambda: np.multiply(hidden, np.greater(a2[:-1], 0.0, out=active),
                                                                   out=hidden),
        "backward, output layer [dW; db]": lambda: np.dot(a2, g3.T),
        "backward, output layer input gradient": lambda: np.dot(b3[:-1], g3, out=hidden),
        "backward, first layer [dW; db] + input gradient": lambda: (np.dot(a0, g2.T), np.dot(b1[:-1], g2)),
    }


def main() -> None:
    threadpool_limits(limits=1, user_api="blas")
    lines = [(f"# RealNVP step breakdown, {time.strftime('%Y-%m-%d %H:%M')}; python benchmarks/step_breakdown.py; "
              "min thread CPU time per call, one BLAS thread")]

    def report(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    for name, fn in operations().items():
        report(f"{name:52s} {1e6 * cost(fn):8.1f} us")
    for n in (512, 8):
        rng = np.random.default_rng(0)
        layer = nf.gradcheck.randomize_params(nf.AffineCoupling([1, 0], rng=rng), rng, 0.1)
        x, ones = rng.standard_normal((n, 2)), np.ones(n)
        z, _ = layer.forward(x)
        forward = cost(lambda layer=layer, x=x: layer.forward(x))
        layer.forward(x)
        backward = cost(lambda layer=layer, z=z, ones=ones: layer.backward(z, ones))
        report(f"{'one coupling layer, forward, N = ' + str(n):52s} {1e6 * forward:8.1f} us")
        report(f"{'one coupling layer, backward, N = ' + str(n):52s} {1e6 * backward:8.1f} us")
    model = nf.models.realnvp(rng=0)
    opt = nf.optim.Adam(model, lr=1e-3)
    label = f"Adam step, 8-layer model ({model.num_params()} parameters)"
    report(f"{label:52s} {1e6 * cost(opt.step):8.1f} us")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
