"""Measure the reference normalisers log Z = log ∫ exp(−U) of nflows_np.targets.

Run:  python benchmarks/target_log_z.py
Prints a table and writes benchmarks/results/target_log_z.txt. The values
stored in ``nflows_np/targets.py`` (``_LOG_Z``) are the "adopted" column.

Two independent methods:

1. 2-D composite Simpson of exp(log_prob) on an n × n grid, at two grid sizes;
   the difference between them estimates the error of the finer one.
   Box [−4, 4]² for U1–U4; for U1 also [−8, 8]² ("plane": outside it
   exp(−U1) ≤ 2 exp(−½((8 − 2)/0.4)²) = 2e^{−112.5}).
2. For U2–U4, exp(−U) is, for fixed z₁, a sum of Gaussian bumps in z₂, so the
   z₂-integral over [−4, 4] is exact with the normal CDF Φ:
   ∫ e^{−½((z₂ − m)/s)²} dz₂ = s √(2π) [Φ((4 − m)/s) − Φ((−4 − m)/s)],
   leaving a smooth 1-D integral over z₁ done by adaptive quadrature.

These are the paper's U2–U4 (``targets.get(name, wall=False)``). The walled
U2–U4 (the default, normalisable on the plane) have the closed form
log Z = log(Σ_b s_b √(2π)) + log(8 + σ√(2π)) (``targets.walled_log_z``),
checked here by Simpson on [−10, 10]² at two grid sizes.
"""
from __future__ import annotations

import pathlib
import sys

import numpy as np
from scipy.integrate import quad, simpson
from scipy.special import ndtr

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from anywhere, uninstalled
from nflows_np import targets  # noqa: E402

OUT = pathlib.Path(__file__).parent / "results" / "target_log_z.txt"
ISSUE_REFERENCE = {"U1": 1.87750, "U2": 2.08209, "U3": 2.64171, "U4": 2.68457}  # Simpson on [−4, 4]², from the issue


def simpson_log_z(target: targets.Target, half_width: float, n: int) -> float:
    """log of the 2-D Simpson integral of exp(log_prob) over [−L, L]², n × n grid."""
    t = np.linspace(-half_width, half_width, n)
    rows = np.empty((n, n))
    for i in range(0, n, 256):  # a band of rows at a time keeps memory small
        z1, z2 = np.meshgrid(t[i:i + 256], t, indexing="ij")
        rows[i:i + 256] = np.exp(target.log_prob(np.stack([z1.ravel(), z2.ravel()], 1))).reshape(z1.shape)
    return float(np.log(simpson(simpson(rows, x=t, axis=1), x=t)))


def branch_mass(m: float | np.ndarray, s: float) -> float | np.ndarray:
    """∫_{−4}^{4} exp(−½((z₂ − m)/s)²) dz₂."""
    return s * np.sqrt(2.0 * np.pi) * (ndtr((4.0 - m) / s) - ndtr((-4.0 - m) / s))


def strip_log_z(name: str) -> tuple[float, float]:
    """(log Z on the box, absolute error estimate of Z) by the 1-D method."""
    def marginal(z1: float) -> float:
        w1 = np.sin(2.0 * np.pi * z1 / 4.0)
        w2 = 3.0 * np.exp(-0.5 * ((z1 - 1.0) / 0.6) ** 2)
        w3 = 3.0 / (1.0 + np.exp(-(z1 - 1.0) / 0.3))
        return {"U2": branch_mass(w1, 0.4),
                "U3": branch_mass(w1, 0.35) + branch_mass(w1 - w2, 0.35),
                "U4": branch_mass(w1, 0.4) + branch_mass(w1 - w3, 0.35)}[name]
    z, err = quad(marginal, -4.0, 4.0, epsabs=1e-13, epsrel=1e-13, limit=200)
    return float(np.log(z)), float(err)


def main() -> None:
    lines = [f"{'target':6} {'Simpson box 801²':>18} {'Simpson box 1601²':>18} {'|diff|':>8} "
             f"{'other method':>28} {'adopted':>15} {'issue':>8}"]
    for name in ("U1", "U2", "U3", "U4"):
        target = targets.get(name, wall=False)
        coarse, fine = simpson_log_z(target, 4.0, 801), simpson_log_z(target, 4.0, 1601)
        if name == "U1":
            plane_coarse, plane_fine = simpson_log_z(target, 8.0, 1601), simpson_log_z(target, 8.0, 3201)
            other = f"plane {plane_fine:.12f} (±{abs(plane_fine - plane_coarse):.0e})"
            adopted = plane_fine
            lines.append(f"# U1: mass outside the box, relative: {np.expm1(plane_fine - fine):.2e}")
        else:
            strip, err = strip_log_z(name)
            other = f"1-D CDF {strip:.12f} (±{err / np.exp(strip):.0e})"
            adopted = strip
        lines.append(f"{name:6} {coarse:18.12f} {fine:18.12f} {abs(fine - coarse):8.1e} {other:>28} "
                     f"{adopted:15.12f} {ISSUE_REFERENCE[name]:8.5f}")
        lines.append(f"#   adopted − stored in targets.py: {adopted - target.log_z:.1e}; "
                     f"adopted − issue: {adopted - ISSUE_REFERENCE[name]:.1e}")
    lines.append(f"# Walled U2–U4 (soft wall σ = {targets.WALL_WIDTH} beyond |z₁| = 4), log Z on the plane:")
    lines.append(f"{'target':6} {'closed form':>18} {'Simpson 1001²':>18} {'Simpson 2001²':>18} {'|closed − 2001²|':>17}")
    for name in ("U2", "U3", "U4"):
        walled = targets.get(name)
        coarse, fine = simpson_log_z(walled, 10.0, 1001), simpson_log_z(walled, 10.0, 2001)
        lines.append(f"{name:6} {walled.log_z:18.12f} {coarse:18.12f} {fine:18.12f} {abs(walled.log_z - fine):17.1e}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)


if __name__ == "__main__":
    main()
