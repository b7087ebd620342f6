"""Posterior collapse on the binarised digits, and what KL annealing, free bits and a weaker decoder do.

Five runs of the same VAE (Gaussian encoder, 8 latent dimensions, Bernoulli decoder),
each for three seeds; the first four start from the collapsed state (``start_at_prior``:
q(z | x) = p(z), the decoder ignores z) and show whether training leaves it:

- ``plain``     — strong decoder (autoregressive over the 64 pixels, two hidden layers of
                  256: every conditional sees all previous pixels), plain ELBO;
- ``annealed``  — the same, KL weight β rising linearly from 0 to 1 over the first half;
- ``free bits`` — the same, free bits λ = 0.5 nats per latent dimension;
- ``weakened``  — autoregressive decoder with one hidden layer and window 2: each pixel
                  sees only the previous 3 pixels (PixelVAE's limited receptive field), plain ELBO;
- ``plain, random init`` — the plain run from the usual random initialisation: does it
                  fall into the collapsed state, and how fast?

Measured on the 250 test digits: the ELBO (mean of 10 draws per digit), the KL term,
active units (Burda et al.: Var_x E_q[z_j] > 0.01) and log p(x) estimated by the IWAE
bound with K = 500. Curves (test ELBO, KL, active units every 250 steps) go to a PNG.

Run from the repository root::

    python benchmarks/vae_collapse.py          # 5 runs × 3 seeds × 3000 steps, ~25 min on a busy 2-core machine

Writes ``benchmarks/results/vae_collapse.txt`` and ``vae_collapse.png``, and the seed-0
models to ``lectures/models/vae_<run>.npz`` (loaded by lectures/00_recap.ipynb).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nflows_np import vae
from nflows_np.datasets.digits import load_digits

STEPS = 3000
STRONG = {"decoder": "autoregressive", "decoder_hidden": (256, 256), "window": 2}
WEAK = {"decoder": "autoregressive", "decoder_hidden": (256,), "window": 2}
RUNS = {  # name: (decoder, training options, start at q(z|x) = p(z))
    "plain": (STRONG, {}, True),
    "annealed": (STRONG, {"beta": vae.beta_ramp(STEPS // 2)}, True),
    "free bits": (STRONG, {"free_bits": 0.5}, True),
    "weakened": (WEAK, {}, True),
    "plain, random init": (STRONG, {}, False),
}
METRICS = ("elbo", "kl", "active_units", "log_p")


def train_one(name: str, seed: int, steps: int, x_train: np.ndarray, x_test: np.ndarray) -> tuple[vae.VAE, dict]:
    arch, options, start_at_prior = RUNS[name]
    model = vae.make_vae(latent_dim=8, start_at_prior=start_at_prior, rng=seed, **arch)
    history = vae.fit_vae(model, x_train, steps=steps, batch_size=100, lr=1e-3, eval_data=x_test,
                          eval_every=250, rng=seed, progress=False, **options)
    rng = np.random.default_rng(1000 + seed)
    result = {
        "elbo": float(model.iwae_bounds(x_test, 1, n_rep=10, rng=rng).mean()),
        "kl": float(model.elbo(x_test, rng).kl),
        "active_units": model.active_units(x_test)[0],
        "log_p": float(model.iwae_bounds(x_test, 500, rng=rng).mean()),
        "curves": {"steps": history.eval_steps, **{k: history.eval[k] for k in ("elbo", "kl", "active_units")}},
    }
    return model, result


def table(results: dict) -> list[str]:
    lines = [f"{'run':<19} {'test ELBO':>16} {'KL (nats)':>14} {'active units':>14} {'log p(x), K=500':>18}"]
    for name, per_seed in results.items():
        cells = []
        for metric, width in zip(METRICS, (16, 14, 14, 18)):
            values = np.array([r[metric] for r in per_seed])
            cells.append(f"{values.mean():.3f} ± {values.std(ddof=1):.3f}".rjust(width))
        lines.append(f"{name:<19} " + " ".join(cells))
    return lines


def plot(results: dict, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
    for name, per_seed in results.items():
        steps = per_seed[0]["curves"]["steps"]
        for ax, key, label in zip(axes, ("elbo", "kl", "active_units"),
                                  ("test ELBO (nats)", "KL(q(z|x) ‖ p(z)) (nats)", "active units")):
            values = np.array([r["curves"][key] for r in per_seed])
            ax.plot(steps, values.mean(axis=0), label=name)
            ax.fill_between(steps, values.min(axis=0), values.max(axis=0), alpha=0.2)
            ax.set_xlabel("training step")
            ax.set_ylabel(label)
    axes[0].set_ylim(-22, -16)
    axes[0].legend()
    fig.suptitle("Posterior collapse on binarised digits (mean and range over 3 seeds)")
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", default=str(ROOT / "lectures" / "models"))
    parser.add_argument("--runs", nargs="*", choices=list(RUNS), default=list(RUNS),
                        help="re-measure only these runs; the others are kept from the last results file")
    args = parser.parse_args()
    pathlib.Path(args.models).mkdir(parents=True, exist_ok=True)
    out = ROOT / "benchmarks" / "results"
    previous = json.loads((out / "vae_collapse.json").read_text()) if set(args.runs) != set(RUNS) else {}
    x_train = vae.binarize(load_digits("train").images)
    x_test = vae.binarize(load_digits("test").images)
    results: dict[str, list[dict]] = {}
    start = time.time()
    for name in args.runs:
        for seed in range(args.seeds):
            model, result = train_one(name, seed, args.steps, x_train, x_test)
            results.setdefault(name, []).append(result)
            print(f"{name} seed {seed}: " + ", ".join(f"{m} {result[m]:.3f}" for m in METRICS), flush=True)
            if seed == 0 and RUNS[name][2]:
                vae.save_vae(model, pathlib.Path(args.models) / f"vae_{name.replace(' ', '_')}.npz")
    results = {name: results[name] if name in results else previous[name] for name in RUNS
               if name in results or name in previous}
    lines = [
        "# python benchmarks/vae_collapse.py " + f"(--steps {args.steps} --seeds {args.seeds})",
        f"# {args.steps} Adam steps (lr 1e-3, batch 100), 8 latent dims; all runs but the last start at q(z|x) = p(z);",
        "# test digits (250): ELBO = mean of 10 draws, KL closed form, active units = #{Var_x μ_j(x) > 0.01},",
        "# log p(x) = IWAE bound with K = 500. Mean ± std over seeds.",
        *table(results),
        f"# time of the runs measured last ({', '.join(args.runs)}): {time.time() - start:.0f} s",
    ]
    (out / "vae_collapse.txt").write_text("\n".join(lines) + "\n")
    (out / "vae_collapse.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "vae_collapse.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
