"""The IWAE theorem on a trained VAE: L_1 ≤ L_5 ≤ L_50 ≤ L_500 ≤ log p(x), the gap ~ C/K, and training by L_5.

A VAE with a factorised Bernoulli decoder (8 latent dimensions, one hidden layer of 128
on each side) is trained on the binarised digits by the ELBO (K = 1) and by the IWAE
bound L_5 (K = 5), three seeds each, 3000 Adam steps. On the 250 test digits:

- L_K for K = 1, 5, 10, 50, 100, 500, 1000, all from the same 1000 log-weights per
  digit (disjoint groups of K), three independent repetitions for the Monte Carlo
  standard errors (the spread between digits is not Monte Carlo error); the order is
  checked on paired differences;
- the rate of the gap: a least-squares fit L_K = log p − C K^(−α) over K ≥ 5 (the
  theory's C/K is the large-K limit, α = 1, when the weights have finite variance);
- the active units of both trainings.

Run from the repository root::

    python benchmarks/vae_iwae.py        # ~3 min on this machine

Writes ``benchmarks/results/vae_iwae.txt`` and the seed-0 models to
``lectures/models/vae_iwae_k1.npz`` and ``vae_iwae_k5.npz``.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nflows_np import vae
from nflows_np.datasets.digits import load_digits

KS = (1, 5, 10, 50, 100, 500, 1000)
M = KS[-1]          # log-weights per digit and repetition
REPS = 3            # independent repetitions: the Monte Carlo standard errors
ALPHAS = np.linspace(0.3, 1.5, 121)


def bounds(model: vae.VAE, x: np.ndarray, seed: int) -> np.ndarray:
    """L_K (mean over digits) for each K and repetition, shape (REPS, len(KS)), all K from the same M draws."""
    rng = np.random.default_rng(seed)
    out = np.zeros((REPS, len(KS), x.shape[0]))
    for r in range(REPS):
        for start in range(0, x.shape[0], 25):
            part = x[start:start + 25]
            log_w = model.log_weights(part, vae.draw_eps(part.shape[0], model.latent_dim, M, rng))
            for j, k in enumerate(KS):
                out[r, j, start:start + 25] = vae.iwae_from_log_weights(log_w, k)
    return out.mean(axis=2)


def fit_rate(values: np.ndarray) -> tuple[float, float, float, float]:
    """Least squares L_K = log p − C K^(−α) over K ≥ 5 (α on a grid): (log p, C, α, rms residual)."""
    ks = np.array(KS, dtype=float)[1:]
    best = None
    for alpha in ALPHAS:
        design = np.column_stack([np.ones(ks.size), -ks ** -alpha])
        coef, *_ = np.linalg.lstsq(design, values[1:], rcond=None)
        rms = float(np.sqrt(np.mean((design @ coef - values[1:]) ** 2)))
        if best is None or rms < best[3]:
            best = (float(coef[0]), float(coef[1]), float(alpha), rms)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", default=str(ROOT / "lectures" / "models"))
    args = parser.parse_args()
    pathlib.Path(args.models).mkdir(parents=True, exist_ok=True)
    x_train = vae.binarize(load_digits("train").images)
    x_test = vae.binarize(load_digits("test").images)
    start = time.time()
    threadpool_limits(1)  # one BLAS thread: faster for these small products on a shared machine
    lines = [f"# python benchmarks/vae_iwae.py (--steps {args.steps} --seeds {args.seeds})",
             "# factorised Bernoulli decoder, 8 latent dims, Adam lr 1e-3, batch 100; test digits (250).",
             (f"# L_K = mean over digits; all K from the same {M} log-weights per digit; ± = Monte Carlo "
              f"standard error over {REPS} independent repetitions.")]
    summary: dict[int, list] = {1: [], 5: []}
    for train_k in (1, 5):
        for seed in range(args.seeds):
            model = vae.make_vae("factorised", latent_dim=8, rng=seed)
            vae.fit_vae(model, x_train, steps=args.steps, k=train_k, rng=seed, progress=False)
            if seed == 0:
                vae.save_vae(model, pathlib.Path(args.models) / f"vae_iwae_k{train_k}.npz")
            per_rep = bounds(model, x_test, 100 + seed)
            values, stderr = per_rep.mean(axis=0), per_rep.std(axis=0, ddof=1) / np.sqrt(REPS)
            # paired differences L_K' − L_K from the same draws: their own standard errors
            steps = np.diff(per_rep, axis=1)
            step_se = steps.std(axis=0, ddof=1) / np.sqrt(REPS)
            ordered = bool(np.all(steps.mean(axis=0) > 3 * step_se))
            log_p, c, alpha, rms = fit_rate(values)
            active = model.active_units(x_test)[0]
            summary[train_k].append((values, active, alpha))
            lines.append(f"trained with K={train_k}, seed {seed}: "
                         + "  ".join(f"L_{k} {v:.4f}±{e:.4f}" for k, v, e in zip(KS, values, stderr))
                         + f"\n    each L_K above the previous by > 3 s.e. (paired): {ordered}; "
                         + f"fit L_K = log p − C K^-α (K ≥ 5): log p {log_p:.4f}, C {c:.3f}, α {alpha:.2f}, "
                         + f"rms residual {rms:.1e}; active units {active}")
            print(lines[-1], flush=True)
    for train_k, rows in summary.items():
        elbo = np.array([r[0][0] for r in rows])
        log_p = np.array([r[0][-1] for r in rows])
        active = np.array([r[1] for r in rows])
        lines.append(f"mean over seeds, trained with K={train_k}: "
                     f"test ELBO (L_1) {elbo.mean():.3f} ± {elbo.std(ddof=1):.3f}, "
                     f"log p(x) (L_{M}) {log_p.mean():.3f} ± {log_p.std(ddof=1):.3f}, "
                     f"active units {active.mean():.1f}, α {np.mean([r[2] for r in rows]):.2f}")
    lines.append(f"# total time {time.time() - start:.0f} s")
    (ROOT / "benchmarks" / "results" / "vae_iwae.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-3:]))


if __name__ == "__main__":
    main()
