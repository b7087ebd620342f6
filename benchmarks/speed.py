"""Speed of nflows_np's hand-written training steps, measured side by side.

Run:  python benchmarks/speed.py [--quick]
      (with torch and normflows importable for the side-by-side columns; both kernels of
      OpenBLAS:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/speed.py
      and  OPENBLAS_CORETYPE=Haswell python benchmarks/speed.py)

Prints, and writes to benchmarks/results/speed.txt (speed_<coretype>.txt when
OPENBLAS_CORETYPE is set):

1. The RealNVP training step of the lecture's recipe (8 AffineCoupling layers,
   masks [1,0]/[0,1], hidden (64, 64), batch 512, float64, Adam): nflows_np with
   its default ReLU conditioners against normflows' own RealNVP (the recipe of
   benchmarks/normflows_recipes.py: AffineCouplingBlock + Permute), and with tanh
   conditioners against the plain PyTorch model of benchmarks/torch_reference.py;
   and against the step's floor, the three 512×64×64 products per layer that no
   implementation avoids (forward, weight gradient, input gradient of the hidden
   64×64 layer), timed on arrays of the same shapes.
2. The reverse-KL step of a planar flow (K = 16, batch 512, target U1),
   against PyTorch autograd.
3. The root-finding direction of the residual flows against their closed form.
4. Each layer family, forward + backward and inverse + backward, against batch size.

The figures compared in sections 1 and 2 are measured interleaved in one run
(this machine is shared): block after block of steps, each contender in turn,
several rounds; each figure is the min (and the median) over rounds of the mean
time per step of a block.
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

CORETYPE = os.environ.get("OPENBLAS_CORETYPE")
RESULTS = os.path.join(os.path.dirname(__file__), "results",
                       f"speed_{CORETYPE.lower()}.txt" if CORETYPE else "speed.txt")


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


def race(contenders: dict, steps: int, rounds: int) -> dict[str, tuple[float, float]]:
    """{name: (min, median) seconds per step}: blocks of ``steps`` calls, each contender in turn, ``rounds`` times.

    Interleaving puts every contender under the same load, so ratios hold on a busy machine.
    """
    for fn in contenders.values():
        for _ in range(max(2, steps // 10)):
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            times[name].append((time.perf_counter() - start) / steps)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def realnvp(rng, activation: str):
    """The recipe's RealNVP: 8 couplings, masks [1,0]/[0,1], hidden (64, 64)."""
    return nf.FlowModel([nf.AffineCoupling([1, 0] if k % 2 == 0 else [0, 1], hidden=(64, 64), rng=rng,
                                           activation=activation) for k in range(8)])


def numpy_realnvp_step(batch: int, activation: str = "relu"):
    rng = np.random.default_rng(0)
    model = realnvp(rng, activation)
    nf.gradcheck.randomize_params(model, rng, 0.1)  # away from the identity, as during training
    opt = nf.optim.Adam(model, lr=1e-3)
    x = nf.datasets.sample("moons", batch, rng)

    def step():
        model.zero_grad()
        train.mle_step(model, x)
        opt.step()

    return step


def product_floor(shapes):
    """The three products (forward, ∂L/∂W, ∂L/∂input) of each (rows, fan_in, fan_out), on random arrays of those shapes."""
    rng = np.random.default_rng(0)
    products = [(rng.standard_normal((rows, a)), rng.standard_normal((a, b)), rng.standard_normal((rows, b)))
                for rows, a, b in shapes]

    def step():
        for h, w, g in products:
            h @ w          # forward
            h.T @ g        # ∂L/∂W
            g @ w.T        # ∂L/∂input

    return step


def three_products_floor(batch: int):
    """The floor: per layer, the three batch×64×64 products of the hidden layer (forward, ∂L/∂W, ∂L/∂h)."""
    return product_floor([(batch, 64, 64)] * 8)


def matmul_floor(batch: int):
    """All 72 products of the step (9 per layer, skinny ones included), on arrays of the same shapes."""
    sizes = [1, 64, 64, 2]
    return product_floor([(batch, sizes[k], sizes[k + 1]) for _ in range(8) for k in range(3)])


def normflows_realnvp_step(batch: int):
    """normflows' own RealNVP of benchmarks/normflows_recipes.py (ReLU MLP [1, 64, 64, 2], exp scale), Adam."""
    import torch

    from normflows_recipes import realnvp_model

    torch.manual_seed(0)
    model = realnvp_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.tensor(nf.datasets.sample("moons", batch, 0))

    def step():
        opt.zero_grad()
        model.forward_kld(x).backward()
        opt.step()

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


def optional_torch(report):
    """(the torch module or None, why normflows is not importable or None), reported in the header."""
    try:
        import torch
    except ImportError as err:
        report(f"# torch not importable ({err}): the PyTorch and normflows columns are skipped")
        return None, "no torch"
    try:
        import normflows
        report(f"# torch {torch.__version__}, {torch.get_num_threads()} threads; normflows {normflows.__version__}")
        return torch, None
    except ImportError as err:
        report(f"# torch {torch.__version__}, {torch.get_num_threads()} threads; normflows not importable ({err})")
        return torch, str(err)


_THREADS = {"current": None}  # the (torch, BLAS) thread counts in force


def contender(step, torch_threads: int = 1, blas_threads: int = 1):
    """A step that first sets the thread counts it is timed with (contenders alternate, so each sets its own)."""
    wanted = (torch_threads, blas_threads)

    def run():
        if _THREADS["current"] != wanted:  # once per block: the race calls one contender's steps in a row
            threadpool_limits(limits=blas_threads, user_api="blas")
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(torch_threads)
            _THREADS["current"] = wanted
        step()

    return run


def single_threads() -> None:
    """Back to one BLAS (and PyTorch) thread, as in training, after a race that changed them."""
    contender(lambda: None)()


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


def realnvp_section(report, torch, normflows_error, torch_threads, block: int, rounds: int,
                    steps: int, repeats: int, batch: int = 512) -> None:
    """Section 1: the RealNVP step raced against the floor, normflows' RealNVP and the plain PyTorch model."""
    report("\n## RealNVP training step (8 AffineCoupling, hidden (64, 64), batch 512, float64, Adam)")
    report(f"interleaved: {rounds} rounds of {block}-step blocks; min (median) ms per step")
    contenders = {"floor": contender(three_products_floor(batch)),
                  "nflows_np relu": contender(numpy_realnvp_step(batch, "relu")),
                  "nflows_np tanh": contender(numpy_realnvp_step(batch, "tanh")),
                  "all 72 products": contender(matmul_floor(batch))}
    for threads in torch_threads:
        if normflows_error is None:
            contenders[f"normflows {threads} thread(s)"] = contender(normflows_realnvp_step(batch), threads)
        contenders[f"PyTorch tanh {threads} thread(s)"] = contender(torch_realnvp_step(batch), threads)
    t = race(contenders, block, rounds)
    single_threads()
    row = table_row(report, t)
    row("floor", "floor: 3 products 512x64x64 per layer (24)")
    row("all 72 products", "  all 72 products of the step (skinny ones included)")
    for act in ("relu", "tanh"):
        row(f"nflows_np {act}", f"nflows_np, {act} conditioners{' (the default)' if act == 'relu' else ''}",
            f"   step / floor = {t[f'nflows_np {act}'][0] / t['floor'][0]:.2f}  (target <= 2.5, stretch 2)")
    with threadpool_limits(limits=os.cpu_count(), user_api="blas"):  # alone: idle BLAS threads spin
        t_threads = timeit(numpy_realnvp_step(batch), steps, repeats)
    report(f"{'  same (relu), BLAS on ' + str(os.cpu_count()) + ' threads, timed alone':58s} {1e3 * t_threads:7.3f} ms"
           f"   ({t_threads / t['nflows_np relu'][1]:.2f}x the one-thread median)")
    for other, mine, label in (("normflows", "nflows_np relu", "normflows RealNVP (ReLU, AffineCouplingBlock)"),
                               ("PyTorch tanh", "nflows_np tanh", "plain PyTorch autograd (tanh, torch_reference)")):
        names = [n for n in t if n.startswith(other)]
        for n in names:
            row(n, f"{label}, {n[len(other) + 1:]}")
        if names:
            best = min(t[n][0] for n in names)
            report(f"  {other} at its best thread count / {mine} = {best / t[mine][0]:.2f}"
                   + ("  (target >= 2.5, stretch 3)" if other == "normflows" else ""))
    if torch is not None and normflows_error is not None:
        report(f"normflows not importable ({normflows_error}): its RealNVP column is skipped")


def table_row(report, t: dict[str, tuple[float, float]]):
    """A function printing one contender's min (median) ms with a label."""
    def row(name: str, label: str, extra: str = "") -> None:
        report(f"{label:58s} {1e3 * t[name][0]:7.3f} ({1e3 * t[name][1]:7.3f}) ms{extra}")
    return row


def planar_section(report, torch_threads, block: int, rounds: int, batch: int = 512) -> None:
    """Section 2: the planar reverse-KL step raced against PyTorch autograd."""
    report("\n## Planar flow reverse-KL step (K = 16, batch 512, target U1, Adam)")
    contenders = {"nflows_np": contender(numpy_planar_step(batch))}
    for threads in torch_threads:
        contenders[f"PyTorch {threads} thread(s)"] = contender(torch_planar_step(batch), threads)
    t = race(contenders, block, rounds)
    single_threads()
    row = table_row(report, t)
    row("nflows_np", "nflows_np")
    names = [n for n in t if n.startswith("PyTorch")]
    for n in names:
        row(n, f"PyTorch autograd, {n[len('PyTorch '):]}")
    if names:
        report(f"  PyTorch at its best thread count / nflows_np = "
               f"{min(t[n][0] for n in names) / t['nflows_np'][0]:.2f}  (target >= 4)")


def families_sections(report, steps: int, repeats: int, batch: int = 512) -> None:
    """Sections 3 and 4: root-finding against closed form; every layer family against batch size."""
    report("\n## Root-finding direction (forward, x → z) against the closed form (inverse, z → x), N = 512, D = 2")
    rng = np.random.default_rng(1)
    for name in ("Planar", "Radial", "Sylvester"):
        layer = layer_families(2, rng)[name]
        z = rng.standard_normal((batch, 2))
        x = layer.inverse(z)[0]
        t_closed = timeit(lambda layer=layer, z=z: layer.inverse(z), steps, repeats)
        t_root = timeit(lambda layer=layer, x=x: layer.forward(x), steps, repeats)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    args = parser.parse_args()
    steps, repeats = (20, 3) if args.quick else (100, 7)
    block, rounds = (10, 4) if args.quick else (30, 12)  # the races: rounds of blocks of steps
    threadpool_limits(limits=1, user_api="blas")  # as nf.train.fit does (see its docstring)
    lines = [(f"# nflows_np speed{' (--quick)' if args.quick else ''}, {time.strftime('%Y-%m-%d %H:%M')}, "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}, "
              f"BLAS {blas_kernels()} limited to 1 thread (as in training); "
              f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
              f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}")]

    def report(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    torch, normflows_error = optional_torch(report)
    torch_threads = sorted({1, torch.get_num_threads()}) if torch is not None else []  # before any race sets them
    realnvp_section(report, torch, normflows_error, torch_threads, block, rounds, steps, repeats)
    planar_section(report, torch_threads, block, rounds)
    families_sections(report, steps, repeats)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
