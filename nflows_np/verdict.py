"""What a training run measured, and whether to trust it.

:class:`History` records a run of :mod:`nflows_np.train`; the checks here judge
it when it ends and say why not to trust it: a model that ended worse than it
began (divergence without infinities, :class:`DivergenceWarning`), or a KL
estimate below zero beyond its Monte Carlo error (:class:`KLEstimateWarning`).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["History", "DivergenceWarning", "KLEstimateWarning", "DIVERGENCE_SLACK",
           "mean_and_se", "ended_worse", "loss_trend", "negative_kl"]


class DivergenceWarning(UserWarning):
    """Training diverged: a non-finite loss or gradient (it stopped and kept the last good
    parameters), or a model that ended worse than it began."""


class KLEstimateWarning(UserWarning):
    """The Monte Carlo estimate of KL(p‖π) = F + log Z is below zero beyond its standard error."""


@dataclass
class History:
    """What a training run measured, and whether it can be trusted.

    ``loss[t]`` is the minibatch loss at step t (for reverse KL: F_β with that
    step's β); ``eval_steps`` / ``eval`` hold the periodic evaluations (test NLL
    for MLE; F, KL and the IWAE log Z estimate for reverse KL; ``*_se`` their
    Monte Carlo standard errors). ``steps`` is the number of steps asked for;
    ``len(loss)`` the number done. ``diverged`` and ``message`` say whether and
    how training diverged; ``interrupted`` that a signal (Ctrl-C) ended it
    early; ``warnings`` holds every other doubt about the result.
    """

    objective: str
    loss: list[float] = field(default_factory=list)
    beta: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval: dict[str, list[float]] = field(default_factory=dict)
    diverged: bool = False
    message: str = ""
    steps: int = 0
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        parts = [repr(self.objective), f"{len(self.loss)}/{self.steps} steps"]
        if self.loss:
            parts.append(f"last loss {self.loss[-1]:.4g}")
        parts += [f"{key} {values[-1]:.4g}" for key, values in self.eval.items() if not key.endswith("_se")]
        parts += [flag for flag in ("diverged", "interrupted") if getattr(self, flag)]
        if self.warnings:
            parts.append(f"{len(self.warnings)} warning{'s' * (len(self.warnings) > 1)}")
        return f"History({', '.join(parts)})"

    @property
    def trustworthy(self) -> bool:
        """Finished every step, did not diverge, and raised no warning."""
        return not (self.diverged or self.interrupted or self.warnings)

    def record(self, step: int, **values: float) -> None:
        self.eval_steps.append(step)
        for key, value in values.items():
            self.eval.setdefault(key, []).append(float(value))

    def last(self, key: str) -> float:
        """The latest evaluation of ``key`` (e.g. ``"test_nll"``, ``"kl"``)."""
        return self.eval[key][-1]

    def to_dict(self) -> dict:
        return {"objective": self.objective, "loss": self.loss, "beta": self.beta,
                "eval_steps": self.eval_steps, "eval": self.eval,
                "diverged": self.diverged, "message": self.message, "steps": self.steps,
                "interrupted": self.interrupted, "warnings": self.warnings}


def mean_and_se(values: np.ndarray) -> tuple[float, float]:
    """The mean of ``values`` and its standard error std / √n."""
    return float(np.mean(values)), float(np.std(values) / math.sqrt(values.size))


# Worse than the start by less than this (beyond the Monte Carlo error) is not called divergence: a model
# that starts close to its optimum may end a little above it from the noise of stochastic gradients alone.
# Runs that diverge end orders of magnitude worse (e.g. a test NLL of 1e8 nats at lr = 10).
DIVERGENCE_SLACK = 0.1  # nats


def ended_worse(history: History, what: str, start: float, end: float, error: float, lr: float) -> None:
    """Report a run whose ``what`` ended above its value before training by more than ``error`` + the slack.

    Training minimises ``what`` (or a β-weighted version of it that reaches it at
    β = 1), so ending worse than the initial model means the steps were too
    large: the loss diverged without becoming infinite.
    """
    if history.diverged or not end > start + error + DIVERGENCE_SLACK:
        return
    history.diverged = True
    history.message = (f"training diverged: {what} ended at {end:.6g}, worse than {start:.6g} before training "
                       f"(the minibatch loss peaked at {max(history.loss):.4g}); try a smaller learning rate "
                       f"than {lr:g}")
    warnings.warn(history.message, DivergenceWarning, stacklevel=3)


def loss_trend(history: History, lr: float) -> None:
    """Without evaluations: compare the mean minibatch loss of the last steps with the loss of the first.

    The last window is a tenth of the run (10 to 100 steps). The first loss is
    one minibatch of the initial model (a blow-up may start at step 1, so no
    window of early steps is safe); the spread of single minibatch losses in the
    last window stands for its error: "worse" means by more than three of those
    standard deviations plus the slack.
    """
    window = min(100, len(history.loss) // 10)
    if window < 10:
        return
    last = np.asarray(history.loss[-window:])
    ended_worse(history, f"the mean minibatch loss of the last {window} steps", history.loss[0], float(np.mean(last)),
                 3.0 * float(np.std(last)), lr)


def negative_kl(history: History, target: Any) -> None:
    """Warn when the final KL = F + log Z is below zero by more than three standard errors of F."""
    if "kl" not in history.eval:
        return
    kl, se = history.last("kl"), history.last("free_energy_se")
    if kl >= -3.0 * se:
        return
    domain = getattr(target, "log_z_domain", "plane")
    cause = ("the model puts mass outside the " + domain + " over which log Z is computed, where the target "
             "is not normalised, so F + log Z is no longer a KL" if domain != "plane" else
             "the importance weights are heavy-tailed: more samples, or a model with wider tails, are needed")
    message = (f"KL(p‖π) = F + log Z estimated at {kl:.4f} ± {se:.4f} nats, below zero beyond its Monte Carlo "
               f"error; likely cause: {cause}")
    history.warnings.append(message)
    warnings.warn(message, KLEstimateWarning, stacklevel=3)
