"""What each initialisation choice buys on the lecture's two recipes, measured over seeds.

Run:  python benchmarks/recipes.py realnvp VARIANT [SEEDS...]
      python benchmarks/recipes.py planar VARIANT [SEEDS...] [--estimator E]
      python benchmarks/recipes.py planar-10k VARIANT [SEEDS...]   (the planar recipe continued to 10 000 steps)
      python benchmarks/recipes.py list

Planar VARIANT is a name of ``PLANAR`` or "identity-wW-bB[-uU]" (û = 0, or û ~ N(0, U²I) with
``-uU``; w ~ N(0, W²I), b ~ N(0, B²)); ``--estimator`` one of ``ESTIMATORS`` (fit_reverse_kl's
antithetic / path-gradient options). ``redraw`` also serves benchmarks/residual_grid.py,
for planar and radial (``RADIAL``) on the leaderboard's reverse-KL grid.

The recipes are fixed (the issue's text): RealNVP, 8 AffineCoupling, masks [1,0]/[0,1],
hidden (64, 64), Adam lr 1e-3, batch 512, 3000 steps on fresh moons samples, test NLL on
20 000 held-out points; planar K = 16, reverse KL on U1, Adam lr 1e-3, batch 512,
5000 steps, β from 0.01 to 1 over the first half, KL on 50 000 samples. A variant
changes only the layers' initialisation or the conditioner's activation: the model is
built by the library, then its parameters are redrawn as the variant says (from a
generator seeded 1000 + seed, so a variant's draws do not depend on the library's
current choice). "library" keeps the library's own initialisation, seeded by the seed.

Each run prints its learning curve (every 500 / 2500 steps) and the final figure;
the summary line gives the median and the worst seed. The figures that chose the
library's defaults are collected in benchmarks/results/recipes.md.
"""
from __future__ import annotations

import sys
import time
import os

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nflows_np as nf  # noqa: E402

# RealNVP conditioner variants: (activation, how hidden-layer weights and biases are drawn)
REALNVP = {
    "library": ("relu", None),
    "he-normal": ("relu", "he"),              # W ~ N(0, 2/fan_in), b = 0 (the previous default for relu)
    "he-normal+bias1": ("relu", "he-b1"),     # the same, first-layer biases ~ N(0, 1)
    "uniform": ("relu", "uniform"),           # W, b ~ U(±1/√fan_in) (PyTorch's nn.Linear default)
    "tanh-glorot": ("tanh", "glorot"),        # W ~ N(0, 2/(fan_in + fan_out)), b = 0 (the previous default)
    "tanh-uniform": ("tanh", "uniform"),
}
# Planar variants: how u, w, b are drawn per layer
PLANAR = {
    "library": None,
    "u0.3-w1-b2": ("normal", 0.3, 1.0, 2.0),   # the previous default
    "u1-w1-b0.5": ("normal", 1.0, 1.0, 0.5),
    "u1-w1-b1": ("normal", 1.0, 1.0, 1.0),
    "u1-w1-b0.25": ("normal", 1.0, 1.0, 0.25),
    "u0.5-w1-b1": ("normal", 0.5, 1.0, 1.0),
    "u1-w2-b1": ("normal", 1.0, 2.0, 1.0),
    "u1-w0.5-b0.5": ("normal", 1.0, 0.5, 0.5),
    "u2-w1-b1": ("normal", 2.0, 1.0, 1.0),
    "normflows": ("uniform", np.sqrt(2.0), 1.0, 0.0),  # u ~ U(±√2), w ~ U(±√(2/D)) = U(±1), b = 0
    # û = 0 (each layer the identity): u = log(e − 1) w/‖w‖², so wᵀu = log(e − 1) and m(wᵀu) = 0
    "identity-w1-b0.5": ("identity", 0.0, 1.0, 0.5),
    "identity-w1-b1": ("identity", 0.0, 1.0, 1.0),
    "identity-w1-b2": ("identity", 0.0, 1.0, 2.0),
}


def _redraw_mlp(net, scheme: str, rng: np.random.Generator) -> None:
    n_layers = len(net.sizes) - 1
    for k in range(1, n_layers):  # the last layer stays at 0: the coupling starts as the identity
        weight, bias = net.params[f"W{k}"], net.params[f"b{k}"]
        fan_in, fan_out = weight.shape
        if scheme == "uniform":
            limit = 1.0 / np.sqrt(fan_in)
            weight[...], bias[...] = rng.uniform(-limit, limit, weight.shape), rng.uniform(-limit, limit, bias.shape)
        else:
            std = np.sqrt(2.0 / (fan_in + fan_out)) if scheme == "glorot" else np.sqrt(2.0 / fan_in)
            weight[...] = std * rng.standard_normal(weight.shape)
            bias[...] = rng.standard_normal(bias.shape) if (scheme == "he-b1" and k == 1) else 0.0


def realnvp_run(variant: str, seed: int) -> list[float]:
    activation, scheme = REALNVP[variant]
    rng = np.random.default_rng(seed)
    model = nf.FlowModel([nf.AffineCoupling([1, 0] if k % 2 == 0 else [0, 1], hidden=(64, 64), rng=rng,
                                            activation=activation) for k in range(8)])
    if scheme is not None:
        redraw = np.random.default_rng(1000 + seed)
        for layer in model.layers:
            _redraw_mlp(layer.net, scheme, redraw)
    test = nf.datasets.sample("moons", 20_000, rng=10_000 + seed)
    history = nf.train.fit_mle(model, lambda n, r: nf.datasets.sample("moons", n, r), steps=3000, batch_size=512,
                               lr=1e-3, test_data=test, eval_every=500, rng=seed, progress=False)
    return [nll - nf.datasets.ENTROPY["moons"] for nll in history.eval["test_nll"]]


RADIAL = {  # (how α is drawn, how p = α + β is drawn); z₀ ~ N(0, I) in every variant
    "library": None,
    # α = |U(±1/2)| (as softplus(α̂)), p = α + β = softplus(U(−3/2, −1/2)): normflows' Radial
    "normflows": ("uniform", "normflows"),
    "identity": ("softplus-normal", "identity"),     # α = softplus(N(0, 1)), β = 0 (p = α): the identity
    "identity-sharp": ("uniform", "identity"),       # α = |U(±1/2)| as normflows', β = 0
    "normflows-z2": ("uniform", "normflows", 2.0),   # normflows' α, β; z₀ ~ N(0, 2²I)
    "identity-z2": ("softplus-normal", "identity", 2.0),
}
ESTIMATORS = {  # fit_reverse_kl's options for each gradient estimator
    "plain": {"antithetic": False, "path_gradient": False},
    "antithetic": {"antithetic": True, "path_gradient": False},
    "stl": {"antithetic": False, "path_gradient": True},
    "antithetic+stl": {"antithetic": True, "path_gradient": True},
}


def _u_for_u_hat(u_hat: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The raw u whose reparametrised û is ``u_hat``: wᵀû = m(wᵀu) fixes s = wᵀu = m⁻¹(wᵀû)."""
    s = np.log(np.expm1(1.0 + max(float(w @ u_hat), -1.0 + 1e-6)))  # m⁻¹(t) = softplus⁻¹(1 + t)
    return u_hat + (s - float(w @ u_hat)) * w / float(w @ w)


def _spec(flow: str, variant: str):
    """The variant's spec; planar "identity-wW-bB" (û = 0, w ~ N(0, W²I), b ~ N(0, B²)) for any W, B."""
    table = PLANAR if flow == "planar" else RADIAL
    if variant not in table and flow == "planar" and variant.startswith("identity-w"):
        w, b = variant[len("identity-w"):].split("-b")
        b, _, u = b.partition("-u")  # "identity-w1-b0.5-u0.3": û ~ N(0, 0.3²I) instead of 0
        return ("identity", float(u or 0.0), float(w), float(b))
    return table[variant]


def redraw(model, flow: str, variant: str, rng: np.random.Generator) -> None:
    """Redraw every layer's initial parameters as the planar / radial ``variant`` says."""
    spec = _spec(flow, variant)
    if spec is None:
        return
    for layer in model.layers:
        dim = layer.dim
        if flow == "radial":
            alpha_kind, beta_kind, z0_scale = (*spec, 1.0)[:3]
            if alpha_kind == "uniform":
                alpha = max(np.abs(rng.uniform(-0.5, 0.5)), 1e-12)
                layer.params["alpha_raw"][...] = np.log(np.expm1(alpha))  # softplus⁻¹
            else:
                layer.params["alpha_raw"][...] = rng.standard_normal()
            layer.params["beta_raw"][...] = (rng.uniform(-1.5, -0.5) if beta_kind == "normflows"
                                             else layer.params["alpha_raw"])
            layer.params["z0"][...] = z0_scale * rng.standard_normal(dim)
            continue
        kind, u, w, b = spec
        if kind == "identity":  # û = u_scale · N(0, I) (0: the identity)
            layer.params["w"][...] = w * rng.standard_normal(dim)
            layer.params["u"][...] = np.log(np.e - 1.0) * layer.params["w"] / (layer.params["w"] @ layer.params["w"])
            layer.params["b"][...] = b * rng.standard_normal()
            if u:
                layer.params["u"][...] = _u_for_u_hat(u * rng.standard_normal(dim), layer.params["w"])
        elif kind == "normal":
            layer.params["u"][...] = u * rng.standard_normal(dim)
            layer.params["w"][...] = w * rng.standard_normal(dim)
            layer.params["b"][...] = b * rng.standard_normal()
        else:
            layer.params["u"][...] = rng.uniform(-u, u, dim)
            layer.params["w"][...] = rng.uniform(-w, w, dim)
            layer.params["b"][...] = b


def planar_run(variant: str, seed: int, steps: int = 5000, estimator: str = "plain") -> list[float]:
    """KL every 2500 steps; ``steps`` > 5000 continues the recipe at β = 1 (the budget that would reach the bar)."""
    rng = np.random.default_rng(seed)
    model = nf.FlowModel([nf.Planar(2, rng=rng) for _ in range(16)])
    redraw(model, "planar", variant, np.random.default_rng(1000 + seed))
    history = nf.train.fit_reverse_kl(model, nf.targets.get("U1"), steps=steps, batch_size=512, lr=1e-3,
                                      beta=nf.train.linear_beta(0.01, 1.0, 2500), eval_samples=50_000,
                                      eval_every=2500, rng=seed, progress=False, **ESTIMATORS[estimator])
    return history.eval["kl"]


def main(argv: list[str]) -> None:
    if not argv or argv[0] == "list":
        print("realnvp variants:", ", ".join(REALNVP))
        print("planar variants:", ", ".join(PLANAR))
        print("reverse-KL estimators (--estimator NAME):", ", ".join(ESTIMATORS))
        return
    estimator = "plain"
    if "--estimator" in argv:
        at = argv.index("--estimator")
        estimator, argv = argv[at + 1], argv[:at] + argv[at + 2:]
    recipe, variant, seeds = argv[0], argv[1], [int(s) for s in argv[2:]] or [0, 1, 2, 3, 4]
    run = {"realnvp": realnvp_run,
           "planar": lambda variant, seed: planar_run(variant, seed, estimator=estimator),
           "planar-10k": lambda variant, seed: planar_run(variant, seed, steps=10_000, estimator=estimator)}[recipe]
    name = recipe + " " + variant + ("" if recipe == "realnvp" else f" [{estimator}]")
    finals = []
    with threadpool_limits(limits=1, user_api="blas"):
        for seed in seeds:
            start = time.perf_counter()
            curve = run(variant, seed)
            finals.append(curve[-1])
            print(f"{name} seed {seed}: curve {np.round(curve, 4).tolist()} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"{name} seeds {seeds}: final {np.round(finals, 4).tolist()} "
          f"median {np.median(finals):.4f} max {max(finals):.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
