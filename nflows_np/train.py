"""Training a flow: forward KL (maximum likelihood) and reverse KL.

Forward KL, the MLE problem of the slides, trains through ``forward`` (x → z)::

    KL(π‖p) = −E_π log p(x|θ) + const,  log p(x|θ) = log p_Z(f(x)) + log|det ∂f/∂x|.

Reverse KL against an unnormalised target π̃ = Z·π trains through ``inverse``
(z → x), with an annealing weight β on the target::

    F_β(θ) = E_{p(z)} [log p(z) − log|det ∂g/∂z| − β log π̃(g(z))],
    KL(p(x|θ)‖π) = F_1 + log Z ≥ 0.

Both losses are minimised by hand-written gradients: the loss's derivative
with respect to the layer outputs is fed to ``model.backward``.

A run is judged as well as recorded: a non-finite loss stops it (keeping the
last good parameters), a model that ends worse than it began is reported as
diverged (with the hint to lower the learning rate), a KL estimate below zero
beyond its Monte Carlo error is reported with its likely cause, and Ctrl-C
(SIGINT) ends it at the end of the current step, returning what was trained.
"""
from __future__ import annotations

import math
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from nflows_np import optim as optim_module
from nflows_np.base import NonFiniteError, RngLike, as_generator, check_array, check_int
from nflows_np.checkpoint import load_params, save_params  # re-exported: nf.train.save_params / load_params
from nflows_np.estimators import antithetic_sample, reflection_centre, subtract_score
from nflows_np.schedules import linear_beta, warmup_cosine  # re-exported: nf.train.linear_beta / warmup_cosine
from nflows_np.validation import check_bool, check_real
from nflows_np.verdict import (
    DivergenceWarning,
    History,
    KLEstimateWarning,
    ended_worse,
    loss_trend,
    mean_and_se,
    negative_kl,
)

__all__ = [
    "History", "DivergenceWarning", "KLEstimateWarning", "fit", "fit_mle", "fit_reverse_kl", "mle_step", "reverse_kl_step",
    "test_nll", "free_energy", "log_z_iwae", "linear_beta", "warmup_cosine", "save_params", "load_params",
]


# -- one step of each objective ---------------------------------------------------

def mle_step(model: Any, x: np.ndarray) -> float:
    """Loss −(1/N) Σ log p(x_n|θ); adds its gradient into ``model.grads``.

    ∂L/∂z_n = −(1/N) ∇ log p_Z(z_n),   ∂L/∂log_det_n = −1/N.
    """
    n = x.shape[0]
    z, log_det = model.forward(x)
    loss = -(np.sum(model.base.log_prob(z)) + np.sum(log_det)) / n
    model.backward(model.base.grad_log_prob(z) * (-1.0 / n), np.full(n, -1.0 / n))
    return float(loss)


def reverse_kl_step(model: Any, target: Any, z: np.ndarray, beta: float = 1.0) -> float:
    """Loss (1/N) Σ [log p(z_n) − log|det ∂g/∂z_n| − β log π̃(g(z_n))]; adds its gradient.

    ∂L/∂x_n = −(β/N) ∇ log π̃(x_n),   ∂L/∂log_det_n = −1/N   (log p(z) has no θ).
    """
    return _reverse_kl_step(model, target, z, beta)[0]


def _reverse_kl_step(model: Any, target: Any, z: np.ndarray, beta: float) -> tuple[float, np.ndarray]:
    """:func:`reverse_kl_step`, also returning the samples x = g(z)."""
    n = z.shape[0]
    x, log_det = model.inverse(z)
    if hasattr(target, "log_prob_and_grad"):  # one pass through the energy instead of two
        log_target, grad_log_target = target.log_prob_and_grad(x)
    else:
        log_target, grad_log_target = target.log_prob(x), target.grad_log_prob(x)
    loss = (np.sum(model.base.log_prob(z)) - np.sum(log_det) - beta * np.sum(log_target)) / n
    model.backward(grad_log_target * (-beta / n), np.full(n, -1.0 / n))
    return float(loss), x


# -- evaluation -------------------------------------------------------------------

def test_nll(model: Any, x: Any, batch_size: int = 4096) -> float:
    """Mean negative log-likelihood −(1/N) Σ log p(x_n|θ) in nats, in batches."""
    return float(np.mean(_nll_per_point(model, x, batch_size)))


def _nll_per_point(model: Any, x: Any, batch_size: int = 4096) -> np.ndarray:
    """−log p(x_n|θ) for every row of ``x``, in batches."""
    x = check_array(x, model.dim, "test_nll", "x")
    if x.shape[0] == 0:
        raise ValueError("test_nll: x is empty")
    return -np.concatenate([model.log_prob(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def _log_weights(model: Any, target: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """log w = log π̃(x) − log p(x|θ) for x ~ p(x|θ)."""
    x, log_q = model.sample_with_log_prob(n, rng)
    return target.log_prob(x) - log_q


def free_energy(model: Any, target: Any, n: int = 10_000, rng: RngLike = None) -> float:
    """F = E_p(x|θ)[log p(x|θ) − log π̃(x)] by Monte Carlo; KL(p‖π) = F + log Z, and −F ≤ log Z (ELBO)."""
    return _free_energy_and_se(model, target, n, as_generator(rng))[0]


def _free_energy_and_se(model: Any, target: Any, n: int, rng: np.random.Generator) -> tuple[float, float]:
    """F by Monte Carlo and its standard error (also the standard error of KL = F + log Z)."""
    return mean_and_se(-_log_weights(model, target, n, rng))


def log_z_iwae(model: Any, target: Any, n: int = 10_000, k: int = 100, rng: RngLike = None) -> float:
    """Importance-weighted (IWAE) estimate of log Z: mean over groups of log (1/K) Σ_k w_k.

    Each group is the bound L_K ≤ log Z (Burda et al. 2016), tighter as K grows;
    ``n`` samples are split into n // K groups of K.
    """
    if k < 1 or n < k:
        raise ValueError(f"log_z_iwae: need 1 <= k <= n, got k={k}, n={n}")
    log_w = _log_weights(model, target, (n // k) * k, as_generator(rng)).reshape(-1, k)
    peak = log_w.max(axis=1, keepdims=True)  # log-mean-exp, shifted so exp cannot overflow
    return float(np.mean(peak[:, 0] + np.log(np.mean(np.exp(log_w - peak), axis=1))))


# -- the loop -----------------------------------------------------------------------

def _make_optimizer(model: Any, optimizer: Any, lr: float) -> optim_module.Optimizer:
    if isinstance(optimizer, optim_module.Optimizer):
        return optimizer
    choices = {"adam": optim_module.Adam, "sgd": optim_module.SGD}
    if optimizer not in choices:
        raise ValueError(f"optimizer must be 'adam', 'sgd' or an Optimizer, got {optimizer!r}")
    return choices[optimizer](model, lr=lr)


def _progress_bar(steps: int, progress: bool | None, desc: str) -> Any:
    if progress is None:
        progress = sys.stderr.isatty() and steps >= 200
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=steps, desc=desc, leave=False)


def _finite_grads(grads: dict[str, np.ndarray]) -> bool:
    return all(np.isfinite(g).all() for g in grads.values())


class _StopOnSignals:
    """While active, the given signals ask the loop to stop at the end of the current step.

    A second signal of the same kind raises ``KeyboardInterrupt`` at once (the
    way out of a step that hangs). Python only lets the main thread install
    handlers; elsewhere this does nothing and the signals keep their usual effect.
    """

    def __init__(self, signals: Sequence[int]):
        self.signals = tuple(signals)
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum

    def __enter__(self) -> _StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


class _Scheduled:
    """An optimiser whose lr at its t-th step is the base lr times ``schedule(t)``."""

    def __init__(self, opt: optim_module.Optimizer, schedule: Callable[[int], float]):
        self.opt, self.schedule, self.base_lr, self.t = opt, schedule, opt.lr, 0

    def step(self) -> None:
        factor = check_real(self.schedule(self.t), f"schedule({self.t})", minimum=0.0)
        self.opt.lr = self.base_lr * factor
        self.t += 1
        self.opt.step()


def fit(model: Any, step_fn: Callable[[int], float], evaluate: Callable[[], dict[str, float]] | None, *,
        objective: str, steps: int, optimizer: Any = "adam", lr: float = 1e-3, clip_norm: float | None = None,
        eval_every: int = 0, progress: bool | None = None,
        beta: Callable[[int], float] | None = None, blas_threads: int | None = 1,
        stop_signals: Sequence[int] = (signal.SIGINT,), schedule: Callable[[int], float] | None = None) -> History:
    """The loop shared by both objectives: zero_grad → step_fn(t) → check → clip → update.

    ``step_fn(t)`` computes the step-t loss and adds its gradient into
    ``model.grads``. On a non-finite loss or gradient, the parameters are
    restored to those of the last finite step, a :class:`DivergenceWarning`
    says so, and the history records ``diverged`` and the message.

    One of ``stop_signals`` (default: Ctrl-C) ends the run at the end of the
    current step: the history records ``interrupted`` and the steps done, and
    the final evaluation still runs. A second one interrupts at once.

    ``blas_threads`` caps BLAS threads during the loop (None: leave as is). The
    default 1 is measured to be faster for these small matrix products, and
    much faster on a busy machine (``benchmarks/speed.py``).

    ``schedule(t)``, if given, is the factor of the optimiser's lr at step t
    (e.g. :func:`warmup_cosine`); None keeps the lr constant.
    """
    steps = check_int(steps, "steps")
    if schedule is not None and not callable(schedule):
        raise TypeError(f"schedule must be None or a callable step -> lr factor, got {type(schedule).__name__}")
    opt = _make_optimizer(model, optimizer, lr)
    if schedule is not None:
        opt = _Scheduled(opt, schedule)
    history = History(objective, steps=steps)
    last_good = {key: value.copy() for key, value in model.params.items()}
    bar = _progress_bar(steps, progress, objective)
    limits = threadpool_limits(limits=blas_threads, user_api="blas") if blas_threads else None
    try:
        with _StopOnSignals(stop_signals) as stop:
            for t in range(steps):
                if not _one_step(model, step_fn, opt, t, history, last_good, beta, clip_norm):
                    break
                if evaluate is not None and eval_every and (t + 1) % eval_every == 0 and t + 1 < steps:
                    history.record(t + 1, **evaluate())
                if bar is not None:
                    bar.update(1)
                    if t % 50 == 0:
                        bar.set_postfix(loss=f"{history.loss[-1]:.4f}")
                if stop.received is not None:
                    history.interrupted = True
                    break
    finally:
        if bar is not None:
            bar.close()
        if limits is not None:
            limits.restore_original_limits()
    if evaluate is not None:
        history.record(len(history.loss), **evaluate())
    return history


def _one_step(model: Any, step_fn: Callable[[int], float], opt: optim_module.Optimizer, t: int, history: History,
              last_good: dict[str, np.ndarray], beta: Callable[[int], float] | None, clip_norm: float | None) -> bool:
    """Step ``t`` of :func:`fit`; False (parameters restored, history told why) when it was not finite."""
    model.zero_grad()
    where = ""
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            loss = step_fn(t)
    except NonFiniteError as err:  # a layer met or made NaN / inf; its message names it
        loss, where = math.nan, str(err)
    if not (math.isfinite(loss) and _finite_grads(model.grads)):
        for key, value in model.params.items():
            value[...] = last_good[key]
        what = "loss" if not math.isfinite(loss) else "gradient"
        history.diverged = True
        history.message = (f"training diverged at step {t}: non-finite {what} ({where or loss}); "
                           + ("stopped and kept the initial parameters" if t == 0 else
                              f"stopped and kept the parameters of step {t - 1}")
                           + ". Try a smaller learning rate or clip_norm.")
        warnings.warn(history.message, DivergenceWarning, stacklevel=4)
        return False
    history.loss.append(loss)
    if beta is not None:
        history.beta.append(float(beta(t)))
    for key, value in model.params.items():
        np.copyto(last_good[key], value)
    if clip_norm is not None:
        optim_module.clip_grad_norm(model.grads, clip_norm)
    opt.step()
    return True


def epoch_sampler(array: np.ndarray) -> Callable[[int, np.random.Generator], np.ndarray]:
    """``sample(n, rng)``: n rows of ``array`` drawn without replacement, epoch by epoch.

    Every row is seen once per epoch, in a fresh random order each epoch; a batch that
    crosses the end of an epoch takes the rest from the next one.
    """
    order: list[np.ndarray] = []

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        chunks, needed = [], n
        while needed > 0:
            if not order or order[0].size == 0:
                order[:] = [rng.permutation(array.shape[0])]
            take, order[0] = order[0][:needed], order[0][needed:]
            chunks.append(array[take])
            needed -= take.size
        return np.concatenate(chunks)

    return sample


def _as_sampler(data: Any, dim: int) -> Callable[[int, np.random.Generator], np.ndarray]:
    """A minibatch sampler from an array (shuffled epochs) or a callable ``sampler(n, rng)``."""
    if callable(data):
        return data
    array = check_array(data, dim, "fit_mle", "data")
    if array.shape[0] == 0:
        raise ValueError("fit_mle: data is empty")
    return epoch_sampler(array)


def fit_mle(model: Any, data: Any, *, steps: int = 3000, batch_size: int = 512, lr: float = 1e-3,
            optimizer: Any = "adam", test_data: Any = None, eval_every: int = 0, clip_norm: float | None = None,
            rng: RngLike = None, progress: bool | None = None,
            stop_signals: Sequence[int] = (signal.SIGINT,), schedule: Callable[[int], float] | None = None) -> History:
    """Fit ``model`` by maximum likelihood (forward KL) on an array or a sampler.

    The defaults are the lecture's RealNVP recipe (Adam, lr 1e-3, batch 512,
    3000 steps), whose results over seeds are asserted in tests/test_quality.py.

    Parameters
    ----------
    data : (N, D) array, or callable ``sampler(n, rng) -> (n, D) array``
        Training points (minibatches are drawn epoch by epoch), or a fresh
        sample for every step (e.g. ``lambda n, rng: nf.datasets.sample("moons", n, rng)``).
    test_data : (M, D) array, optional
        Held-out points; the history records their NLL (``"test_nll"``, with
        its standard error ``"test_nll_se"``) every ``eval_every`` steps and at the end.
    rng : None, int or Generator
        The only source of randomness (minibatch order / fresh samples).
    stop_signals : signal numbers
        Signals that end the run at the end of the current step (default Ctrl-C); see :func:`fit`.
    schedule : callable(step) -> float, optional
        The lr of step t is ``lr · schedule(t)``, e.g. ``warmup_cosine(steps, 200, 0.01)``;
        None (the default) keeps ``lr`` constant, as the lecture's recipe does.

    Returns
    -------
    History
        ``history.loss`` (train NLL per step), ``history.eval["test_nll"]``.
        ``history.diverged`` also when the test NLL (or, without test data, the
        minibatch loss) ended above its start by more than three standard errors + ``DIVERGENCE_SLACK``.
    """
    batch_size = check_int(batch_size, "batch_size")
    rng = as_generator(rng)
    sampler = _as_sampler(data, model.dim)
    evaluate = start = None
    if test_data is not None:
        test_data = check_array(test_data, model.dim, "fit_mle", "test_data")

        def evaluate() -> dict[str, float]:
            nll, se = mean_and_se(_nll_per_point(model, test_data))
            return {"test_nll": nll, "test_nll_se": se}

    def step(t: int) -> float:
        try:
            batch = check_array(sampler(batch_size, rng), model.dim, "fit_mle", "minibatch from the sampler")
        except NonFiniteError as err:  # bad data is the caller's error, not a divergence of training
            raise ValueError(str(err)) from None
        return mle_step(model, batch)

    if evaluate is not None and not any(_needs_data_init(layer) for layer in getattr(model, "layers", ())):
        start = evaluate()["test_nll"]  # the yardstick of divergence: the initial model's test NLL
    history = fit(model, step, evaluate, objective="forward KL (MLE)", steps=steps, optimizer=optimizer, lr=lr,
                  clip_norm=clip_norm, eval_every=eval_every, progress=progress, stop_signals=stop_signals,
                  schedule=schedule)
    if start is not None and history.loss:
        ended_worse(history, "the test NLL", start, history.last("test_nll"), 3.0 * history.last("test_nll_se"), lr)
    else:  # no test data, or an ActNorm still to initialise from the first batch
        loss_trend(history, lr)
    return history


def _needs_data_init(layer: Any) -> bool:
    """A layer that initialises itself from its first batch (ActNorm): evaluating first would consume that."""
    return getattr(layer, "initialized", True) is False


def fit_reverse_kl(model: Any, target: Any, *, steps: int = 5000, batch_size: int = 512, lr: float = 1e-3,
                   optimizer: Any = "adam", beta: float | Callable[[int], float] = 1.0, eval_every: int = 0,
                   eval_samples: int = 20_000, iwae_k: int = 100, clip_norm: float | None = None,
                   rng: RngLike = None, progress: bool | None = None,
                   stop_signals: Sequence[int] = (signal.SIGINT,),
                   schedule: Callable[[int], float] | None = None, antithetic: bool = False,
                   path_gradient: bool = False) -> History:
    """Fit ``model`` to an unnormalised target π̃ by reverse KL, through ``inverse``.

    Parameters
    ----------
    target : str, or object with ``log_prob(x)`` (= log π̃, unnormalised), ``grad_log_prob(x)``
        and ``log_z`` (float or None): a name of :data:`nflows_np.targets.NAMES`
        (e.g. ``"U1"``) or an object such as ``nf.targets.get("U1")``.
    beta : float or callable(step) -> float
        Annealing weight on log π̃, e.g. ``linear_beta(0.01, 1.0, steps // 2)`` (the
        lecture's planar recipe: that, Adam lr 1e-3, batch 512, 5000 steps, which are
        the other defaults; tests/test_quality.py runs it). The default 1.0 is the plain
        reverse KL, which the notebooks contrast with forward KL.
    stop_signals : signal numbers
        Signals that end the run at the end of the current step (default Ctrl-C); see :func:`fit`.
    schedule : callable(step) -> float, optional
        Factor of ``lr`` at step t (e.g. :func:`warmup_cosine`); None (the default): constant.
    antithetic : bool
        Draw the batch as antithetic pairs z, 2c − z (c the base's centre of symmetry:
        :func:`antithetic_sample`). Unbiased; False (the default) draws it i.i.d.
    path_gradient : bool
        "Sticking the landing" (Roeder, Wu & Duvenaud 2017): subtract the score
        (1/N) Σ ∂/∂θ log p(x_n|θ) at fixed x (:func:`subtract_score`, whose expectation is 0)
        from the gradient, which leaves only the path through x = g(z); its variance
        vanishes as p(x|θ) → π. Unbiased; costs a ``forward`` pass (x → z) per step.
        False (the default) keeps the plain reparametrised gradient.
        Neither option is the default: on the planar recipe and the leaderboard's
        reverse-KL grid they did not train better (benchmarks/results/recipes.md).

    Returns
    -------
    History
        ``history.loss`` (F_β per step); evaluations ``"free_energy"`` (F at
        β = 1, with its standard error ``"free_energy_se"``), ``"log_z_iwae"``
        (the IWAE estimate, a lower bound on log Z), and ``"kl"`` = F + log Z
        where the target knows log Z. ``history.diverged`` also when F ended
        above its value before training by more than three standard errors + ``DIVERGENCE_SLACK``;
        ``history.warnings`` holds a KL estimate below zero beyond three
        standard errors (:class:`KLEstimateWarning`).
    """
    if isinstance(target, str):
        from nflows_np import targets  # imported here: targets is not needed by MLE users

        target = targets.get(target)
    if not callable(getattr(target, "log_prob", None)):
        raise TypeError(f"fit_reverse_kl: target must be a target name or have log_prob(x), got {type(target).__name__}")
    batch_size = check_int(batch_size, "batch_size")
    rng = as_generator(rng)
    eval_seed = int(rng.integers(2**63))
    eval_rng = as_generator(eval_seed)
    beta_fn = beta if callable(beta) else (lambda t, b=float(beta): b)

    def evaluate() -> dict[str, float]:
        f, se = _free_energy_and_se(model, target, eval_samples, eval_rng)
        values = {"free_energy": f, "free_energy_se": se,
                  "log_z_iwae": log_z_iwae(model, target, eval_samples, iwae_k, eval_rng)}
        if getattr(target, "log_z", None) is not None:
            values["kl"] = f + target.log_z
        return values

    antithetic, path_gradient = check_bool(antithetic, "antithetic"), check_bool(path_gradient, "path_gradient")
    centre = reflection_centre(model.base) if antithetic else None
    if antithetic and centre is None:
        raise ValueError(f"fit_reverse_kl: antithetic=True needs a base symmetric about a point "
                         f"(StandardNormal, Uniform), got {type(model.base).__name__}; pass antithetic=False")

    def step(t: int) -> float:
        z = (antithetic_sample(model.base, batch_size, rng, centre) if centre is not None
             else model.base.sample(batch_size, rng))
        loss, x = _reverse_kl_step(model, target, z, beta_fn(t))
        if path_gradient:  # the gradient of the path alone: minus the score at fixed x
            subtract_score(model, x)
        return loss

    # F of the initial model, from its own random stream (the evaluations' stream is left as it was).
    start, start_se = _free_energy_and_se(model, target, eval_samples, np.random.default_rng([eval_seed, 1]))
    history = fit(model, step, evaluate, objective="reverse KL", steps=steps, optimizer=optimizer, lr=lr,
                  clip_norm=clip_norm, eval_every=eval_every, progress=progress, beta=beta_fn,
                  stop_signals=stop_signals, schedule=schedule)
    if history.loss:
        ended_worse(history, "F (β = 1)", start, history.last("free_energy"),
                     3.0 * math.hypot(start_se, history.last("free_energy_se")), lr)
    negative_kl(history, target)
    return history
