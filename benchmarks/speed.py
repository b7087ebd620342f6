"""Speed of nflows_np's hand-written training steps, measured side by side.

Run:  python benchmarks/speed.py [--quick]

Prints, and writes to benchmarks/results/speed.txt:

1. The RealNVP training step of the core issue (8 AffineCoupling layers,
   masks [1,0]/[0,1], hidden (64, 64), batch 512, float64, Adam): nflows_np
   against the same model in PyTorch autograd (when torch is installed), and
   against the step's floor — the time of exactly the matrix products the
   step cannot avoid (3 forward + 3 weight-gradient + 3 input-gradient
   products per coupling layer), timed on arrays of the same shapes.
2. The reverse-KL step of a planar flow (K = 16, batch 512, target U1),
   against PyTorch autograd.
3. The root-finding direction of the residual flows against their closed form.
4. Each layer family, forward + backward and inverse + backward, against batch size.

Every ratio is of two figures measured in the same run (this machine is noisy):
each figure is the median over repeats of the mean time of a block of steps.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nflows_np as nf  # noqa: E402
from nflows_np import train  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "speed.txt")


def blas_kernels() -> str:
    """Each loaded BLAS with the kernel it runs (threadpoolctl's ``architecture``), e.g. "openblas 0.3.31 SkylakeX"."""
    found = {f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
             for i in threadpool_info() if i.get("user_api") == "blas"}
    return ", ".join(sorted(found)) or "?"


def timeit(fn, steps: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean seconds per call over ``steps`` calls (after a warm-up)."""
    for _ in range(max(2, steps // 10)):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def realnvp(rng):
    # tanh conditioners, as benchmarks/torch_reference.py's PyTorch model (the library's default is ReLU)
    return nf.FlowModel([nf.AffineCoupling([1, 0] if k % 2 == 0 else [0, 1], hidden=(64, 64), rng=rng,
                                           activation="tanh") for k in range(8)])


def numpy_realnvp_step(batch: int):
    rng = np.random.default_rng(0)
    model = realnvp(rng)
    nf.gradcheck.randomize_params(model, rng, 0.1)  # away from the identity, as during training
    opt = nf.optim.Adam(model, lr=1e-3)
    x = nf.datasets.sample("moons", batch, rng)

    def step():
        model.zero_grad()
        train.mle_step(model, x)
        opt.step()

    return step


def matmul_floor(batch: int):
    """The step's unavoidable products, on arrays of the same shapes, in a tight loop."""
    rng = np.random.default_rng(0)
    sizes = [1, 64, 64, 2]
    shapes = []
    for _ in range(8):
        for k in range(3):
            a, b = sizes[k], sizes[k + 1]
            shapes.append((rng.standard_normal((batch, a)), rng.standard_normal((a, b)),
                           rng.standard_normal((batch, b))))

    def step():
        for h, w, g in shapes:
            h @ w          # forward
            h.T @ g        # ∂L/∂W
            g @ w.T        # ∂L/∂h

    return step


def transcendentals(batch: int):
    """The step's tanh and exp calls on arrays of the same shapes: 2 hidden tanh per layer,
    the log-scale clamp tanh(ŝ/3) and exp(s) per layer (8 layers)."""
    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((batch, 64))
    scale = rng.standard_normal((batch, 1))

    def step():
        for _ in range(8):
            np.tanh(hidden)
            np.tanh(hidden)
            np.exp(np.tanh(scale))

    return step


def torch_realnvp_step(batch: int):
    import torch

    from torch_reference import RealNVP

    torch.manual_seed(0)
    model = RealNVP()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.tensor(nf.datasets.sample("moons", batch, 0))

    def step():
        opt.zero_grad()
        model.nll(x).backward()
        opt.step()

    return step


def numpy_planar_step(batch: int):
    rng = np.random.default_rng(0)
    model = nf.FlowModel([nf.Planar(2, rng=rng) for _ in range(16)])
    opt = nf.optim.Adam(model, lr=1e-3)
    target = nf.targets.get("U1")
    z = rng.standard_normal((batch, 2))

    def step():
        model.zero_grad()
        train.reverse_kl_step(model, target, z)
        opt.step()

    return step


def torch_planar_step(batch: int):
    import torch

    from torch_reference import PlanarFlow

    torch.manual_seed(0)
    model = PlanarFlow(2, 16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    z = torch.randn(batch, 2, dtype=torch.float64)

    def step():
        opt.zero_grad()
        model.reverse_kl(z).backward()
        opt.step()

    return step


def best_torch(make_step, batch: int, steps: int, repeats: int, report) -> float:
    """PyTorch's time at its best thread count (1 or all cores): the comparison most favourable to it."""
    import torch

    default = torch.get_num_threads()
    times = {}
    for threads in sorted({1, default}):
        torch.set_num_threads(threads)
        times[threads] = timeit(make_step(batch), steps, repeats)
    torch.set_num_threads(default)
    report("  PyTorch " + ", ".join(f"{n} thread(s): {1e3 * t:.3f} ms" for n, t in times.items()))
    return min(times.values())


def layer_families(dim: int, rng):
    hidden = (64, 64)
    mask = np.arange(dim) % 2
    return {
        "ElementwiseAffine": nf.gradcheck.randomize_params(nf.ElementwiseAffine(dim), rng, 0.3),
        "Permutation": nf.Permutation(rng.permutation(dim)),
        "Linear": nf.Linear(dim, rng=rng),
        "LULinear": nf.LULinear(dim, rng=rng),
        "QRLinear": nf.QRLinear(dim, rng=rng),
        "ActNorm": nf.ActNorm(dim),
        "AdditiveCoupling": nf.gradcheck.randomize_params(nf.AdditiveCoupling(mask, hidden, rng=rng), rng, 0.1),
        "AffineCoupling": nf.gradcheck.randomize_params(nf.AffineCoupling(mask, hidden, rng=rng), rng, 0.1),
        "MaskedAutoregressive": nf.gradcheck.randomize_params(nf.MaskedAutoregressive(dim, hidden, rng=rng), rng, 0.1),
        "Planar": nf.Planar(dim, rng=rng),
        "Radial": nf.Radial(dim, rng=rng),
        "Sylvester": nf.Sylvester(dim, rng=rng),
    }


def pass_and_backward(layer, direction: str, x):
    run = getattr(layer, direction)
    grad_log_det = np.ones(x.shape[0])

    def step():
        out, _ = run(x)
        layer.backward(out, grad_log_det)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    args = parser.parse_args()
    steps, repeats = (20, 3) if args.quick else (100, 7)
    threadpool_limits(limits=1, user_api="blas")  # as nf.train.fit does (see its docstring)
    lines = [f"# nflows_np speed, {time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, numpy {np.__version__}, "
             f"BLAS {blas_kernels()} limited to 1 thread (as in training); "
             f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
             f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}"]

    def report(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    try:
        import torch
        have_torch = True
        report(f"# torch {torch.__version__}, {torch.get_num_threads()} threads")
    except ImportError:
        have_torch = False
        report("# torch not installed: the PyTorch columns are skipped (pip install torch to measure them)")

    batch = 512
    report("\n## RealNVP training step (8 AffineCoupling, hidden (64, 64), batch 512, float64, Adam)")
    t_np = timeit(numpy_realnvp_step(batch), steps, repeats)
    t_floor = timeit(matmul_floor(batch), steps, repeats)
    report(f"nflows_np step            {1e3 * t_np:8.3f} ms")
    with threadpool_limits(limits=os.cpu_count(), user_api="blas"):
        t_threads = timeit(numpy_realnvp_step(batch), steps, repeats)
    report(f"  same, BLAS on {os.cpu_count()} threads {1e3 * t_threads:8.3f} ms   ({t_threads / t_np:.1f}x the 1-thread step)")
    report(f"matmul floor (72 products) {1e3 * t_floor:7.3f} ms   step / floor = {t_np / t_floor:.2f}  (target <= 2)")
    t_trans = timeit(transcendentals(batch), steps, repeats)
    report(f"  of the step: products {100 * t_floor / t_np:.0f} %, tanh/exp {100 * t_trans / t_np:.0f} %, "
           f"the rest (elementwise arithmetic, copies, Python) {100 * (1 - (t_floor + t_trans) / t_np):.0f} %")
    if have_torch:
        t_torch = best_torch(torch_realnvp_step, batch, steps, repeats, report)
        report(f"PyTorch autograd step     {1e3 * t_torch:8.3f} ms   torch / nflows_np = {t_torch / t_np:.2f}  (target >= 3)")

    report("\n## Planar flow reverse-KL step (K = 16, batch 512, target U1, Adam)")
    t_planar = timeit(numpy_planar_step(batch), steps, repeats)
    report(f"nflows_np step            {1e3 * t_planar:8.3f} ms")
    if have_torch:
        t_torch_planar = best_torch(torch_planar_step, batch, steps, repeats, report)
        report(f"PyTorch autograd step     {1e3 * t_torch_planar:8.3f} ms   torch / nflows_np = "
               f"{t_torch_planar / t_planar:.2f}  (target >= 4)")

    report("\n## Root-finding direction (forward, x → z) against the closed form (inverse, z → x), batch 512, D = 2")
    rng = np.random.default_rng(1)
    for name in ("Planar", "Radial", "Sylvester"):
        layer = layer_families(2, rng)[name]
        z = rng.standard_normal((batch, 2))
        x = layer.inverse(z)[0]
        t_closed = timeit(lambda: layer.inverse(z), steps, repeats)
        t_root = timeit(lambda: layer.forward(x), steps, repeats)
        report(f"{name:10s} closed form {1e3 * t_closed:7.3f} ms   root-finding {1e3 * t_root:7.3f} ms   "
               f"ratio {t_root / t_closed:5.1f}")

    report("\n## Layer families, D = 2: ms per pass + backward, against batch size")
    batches = (64, 512, 4096)
    report(f"{'layer':22s} {'direction':9s} " + " ".join(f"N={n:<6d}" for n in batches))
    for name in layer_families(2, np.random.default_rng(0)):
        for direction in ("forward", "inverse"):
            cells = []
            for n in batches:
                layer = layer_families(2, np.random.default_rng(0))[name]
                x = np.random.default_rng(2).standard_normal((n, 2))
                layer.forward(x)  # data-dependent initialisation (ActNorm)
                cells.append(f"{1e3 * timeit(pass_and_backward(layer, direction, x), steps // 2, repeats):8.3f}")
            report(f"{name:22s} {direction:9s} " + " ".join(cells))

    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
