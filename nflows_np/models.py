"""Named flow architectures, each rebuildable from a JSON-able spec.

Every builder returns a :class:`~nflows_np.composition.FlowModel` with an extra
attribute ``spec``: the builder's name, arguments and seed, e.g.
``{"flow": "realnvp", "dim": 2, "num_layers": 8, "hidden": [64, 64], "seed": 0}``,
so that ``build(model.spec)`` gives the same model as it was built (same
architecture, same initial parameters). A trained model is saved with
:func:`save` (parameters + spec, via :func:`nflows_np.checkpoint.save_params`) and
rebuilt with :func:`load`.

=========  ===============================================================
name       layers, in the order f applies them (x → z)
=========  ===============================================================
realnvp    AffineCoupling, masks alternating [1,0,…] / [0,1,…]
nice       AdditiveCoupling (alternating masks), then one ElementwiseAffine
           (NICE's diagonal scaling)
maf        MaskedAutoregressive, with a Reverse between consecutive ones
glow       (ActNorm → LULinear → AffineCoupling), repeated
glow_image multi-scale Glow on images: per level, Squeeze → K × (ChannelActNorm
           → InvertibleConv1x1 → ConvAffineCoupling), then FactorOut of half
planar     Planar × K          (closed form in the generative direction g)
radial     Radial × K
sylvester  Sylvester(m, variant) × K
=========  ===============================================================
"""
from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nflows_np.base import RngLike, as_generator, check_int
from nflows_np.checkpoint import load_params, read_checkpoint, save_params
from nflows_np.composition import FlowModel
from nflows_np.flows.actnorm import ActNorm
from nflows_np.flows.autoregressive import MaskedAutoregressive
from nflows_np.flows.conv_coupling import ConvAffineCoupling
from nflows_np.flows.coupling import AdditiveCoupling, AffineCoupling
from nflows_np.flows.elementwise import ElementwiseAffine
from nflows_np.flows.emerging import EmergingConv
from nflows_np.flows.linear import LULinear
from nflows_np.flows.multiscale import FactorOut
from nflows_np.flows.permutation import Reverse
from nflows_np.flows.pixelwise import ChannelActNorm, ChannelPermutation, InvertibleConv1x1
from nflows_np.flows.planar import Planar
from nflows_np.flows.radial import Radial
from nflows_np.flows.squeeze import Squeeze
from nflows_np.flows.sylvester import Sylvester
from nflows_np.validation import lookup

__all__ = [
    "BUILDERS",
    "IMAGE_NAMES",
    "NAMES",
    "RUN_KEYS",
    "build",
    "glow",
    "glow_image",
    "load",
    "maf",
    "nice",
    "planar",
    "radial",
    "realnvp",
    "save",
    "sylvester",
]

# Keys a saved spec may carry beside the architecture (what the model was trained on);
# ``build`` ignores them.
RUN_KEYS = ("data", "target")

BUILDERS: dict[str, Callable[..., FlowModel]] = {}


def _json_value(value: Any) -> Any:
    """Tuples as lists, numpy scalars as Python numbers: what ``json`` writes and reads back."""
    if isinstance(value, (tuple, list)):
        return [_json_value(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _seed(rng: RngLike) -> int:
    """An int seed: ``rng`` itself if it is one, else drawn from it (None: from fresh OS entropy)."""
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng: an int seed must be non-negative, got {rng}")
        return int(rng)
    return int(as_generator(rng).integers(2**63))


def _builder(function: Callable[..., FlowModel]) -> Callable[..., FlowModel]:
    """Register ``function`` under its name; the model it returns gets ``spec`` = its arguments and seed.

    The seed is part of the spec because some layers keep fixed, non-trained
    state drawn at construction (LULinear's permutation P and the signs of its
    diagonal), which ``io.save_params`` does not store: rebuilding from the
    same seed restores it.
    """
    signature = inspect.signature(function)

    @functools.wraps(function)
    def build_with_spec(*args: Any, **kwargs: Any) -> FlowModel:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        seed = _seed(arguments.pop("rng"))
        for key in ("dim", "num_layers"):
            if key in arguments:
                check_int(arguments[key], f"{function.__name__}: {key}")
        model = function(**arguments, rng=np.random.default_rng(seed))
        model.spec = {"flow": function.__name__, **{key: _json_value(v) for key, v in arguments.items()}, "seed": seed}
        return model

    BUILDERS[function.__name__] = build_with_spec
    return build_with_spec


def _masks(dim: int, count: int) -> list[np.ndarray]:
    """Alternating binary masks [1,0,1,…], [0,1,0,…], … (1 = the conditioning part)."""
    return [((np.arange(dim) + k) % 2 == 0).astype(int) for k in range(count)]


@_builder
def realnvp(dim: int = 2, num_layers: int = 8, hidden: Sequence[int] = (64, 64), rng: RngLike = None,
            scale: str = "tanh") -> FlowModel:
    """RealNVP: affine couplings with alternating masks; starts as the identity.

    ``scale`` is the couplings' log-scale map (:class:`~nflows_np.flows.coupling.AffineCoupling`).
    """
    return FlowModel([AffineCoupling(mask, tuple(hidden), rng, scale=scale) for mask in _masks(dim, num_layers)])


@_builder
def nice(dim: int = 2, num_layers: int = 4, hidden: Sequence[int] = (64, 64), rng: RngLike = None) -> FlowModel:
    """NICE: additive couplings with alternating masks, then a diagonal scaling.

    The couplings are volume-preserving (log-det 0); the final ElementwiseAffine
    z = h ⊙ exp(s) + t carries all of log|det ∂f/∂x| = Σ_i s_i, as in NICE.
    """
    couplings: list[Any] = [AdditiveCoupling(mask, tuple(hidden), rng) for mask in _masks(dim, num_layers)]
    return FlowModel(couplings + [ElementwiseAffine(dim)])


@_builder
def maf(dim: int = 2, num_layers: int = 5, hidden: Sequence[int] = (64, 64), rng: RngLike = None) -> FlowModel:
    """MAF: masked autoregressive layers with a Reverse between consecutive ones."""
    layers: list[Any] = []
    for k in range(num_layers):
        layers += ([Reverse(dim)] if k else []) + [MaskedAutoregressive(dim, tuple(hidden), rng)]
    return FlowModel(layers)


@_builder
def glow(dim: int = 2, num_layers: int = 4, hidden: Sequence[int] = (64, 64), data_init: bool = True,
         rng: RngLike = None) -> FlowModel:
    """Glow: steps of ActNorm → LULinear → AffineCoupling (alternating masks).

    ``data_init=True``: each ActNorm sets itself from its first ``forward``
    batch (maximum likelihood). Use ``data_init=False`` (ActNorm starts at the
    identity) for reverse KL, which never calls ``forward``, and to rebuild a
    trained model whose parameters are then loaded (:func:`save` records it so).
    """
    layers: list[Any] = []
    for mask in _masks(dim, num_layers):
        layers += [ActNorm(dim, data_init=bool(data_init)), LULinear(dim, rng), AffineCoupling(mask, tuple(hidden), rng)]
    return FlowModel(layers)


MIXINGS = ("conv1x1", "reverse", "shuffle", "emerging")  # what mixes channels between couplings (Glow's Figure 3)


def _mixing(kind: str, shape: tuple[int, int, int], rng: np.random.Generator) -> Any:
    """The channel mixing of a Glow step: the 1×1 convolution, a reversal, or a fixed random shuffle."""
    if kind == "conv1x1":
        return InvertibleConv1x1(shape, rng)
    if kind == "emerging":
        return EmergingConv(shape, 3, rng)
    perm = np.arange(shape[0])[::-1] if kind == "reverse" else rng.permutation(shape[0])
    return ChannelPermutation(shape, perm)


@_builder
def glow_image(shape: Sequence[int] = (1, 8, 8), levels: int = 2, steps: int = 8, hidden: int = 64,
               mixing: str = "conv1x1", activation: str = "relu", split_prior: bool = True,
               data_init: bool = True, rng: RngLike = None) -> FlowModel:
    """Multi-scale Glow on (C, H, W) images (Kingma & Dhariwal 2018), input flattened channel-first.

    Each level: Squeeze → ``steps`` × (ChannelActNorm → mixing → ConvAffineCoupling
    with ``hidden`` channels); every level but the last then factors out half of
    its channels (to the base N(0, I)) and the next level works on the rest.
    ``mixing``: "conv1x1" (Glow), "reverse" or "shuffle" (RealNVP-style fixed
    permutations, for the ablation), or "emerging" (3×3 emerging convolutions);
    ``activation``: the couplings' ReLU (Glow) or tanh. H and W must be divisible by 2^levels.

    Prior of the factored half h₂: with ``split_prior`` (Glow's learned prior), one more
    ConvAffineCoupling before the split maps h₂ to (h₂ − μ(h₁)) ⊙ exp(−log σ(h₁)) ~ N(0, I),
    i.e. p(h₂ | h₁) = N(μ(h₁), diag σ(h₁)²) with μ, σ a CNN of the kept half h₁ (it starts
    at μ = 0, σ = 1); without it, p(h₂) = N(0, I).
    """
    mixing = lookup(mixing, MIXINGS, "glow_image: mixing")
    levels, steps, hidden = (check_int(v, f"glow_image: {k}") for k, v in
                             (("levels", levels), ("steps", steps), ("hidden", hidden)))
    shape = tuple(int(v) for v in shape)
    if len(shape) != 3 or shape[1] % 2 ** levels or shape[2] % 2 ** levels:
        raise ValueError(f"glow_image: shape (C, H, W) needs H and W divisible by 2^levels = {2 ** levels}, "
                         f"got {shape}")
    level_layers, shapes = [], []
    for level in range(levels):
        squeeze = Squeeze(shape)
        shape = squeeze.out_shape
        layers: list[Any] = [squeeze]
        for _ in range(steps):
            layers += [ChannelActNorm(shape, bool(data_init)), _mixing(mixing, shape, rng),
                       ConvAffineCoupling(shape, hidden, rng, activation)]
        level_layers.append(layers)
        shapes.append(shape)
        shape = (shape[0] // 2, shape[1], shape[2])  # the half that goes on
    inner: FlowModel | None = None
    for layers, level_shape in zip(reversed(level_layers), reversed(shapes)):
        if inner is not None:
            prior = [ConvAffineCoupling(level_shape, hidden, rng, activation)] if split_prior else []
            layers = layers + prior + [FactorOut(inner, int(np.prod(level_shape)))]
        inner = FlowModel(layers)
    return inner


@_builder
def planar(dim: int = 2, num_layers: int = 16, rng: RngLike = None) -> FlowModel:
    """Planar flows x = z + û h(wᵀz + b) (Rezende & Mohamed 2015), K = num_layers of them."""
    return FlowModel([Planar(dim, rng) for _ in range(num_layers)])


@_builder
def radial(dim: int = 2, num_layers: int = 16, rng: RngLike = None) -> FlowModel:
    """Radial flows x = z + β h(α, r)(z − z₀), K = num_layers of them."""
    return FlowModel([Radial(dim, rng) for _ in range(num_layers)])


@_builder
def sylvester(dim: int = 2, num_layers: int = 8, m: int | None = None, variant: str = "householder",
              rng: RngLike = None) -> FlowModel:
    """Sylvester flows x = z + Q R h(R̃ Qᵀ z + b) of the given variant, K = num_layers of them."""
    return FlowModel([Sylvester(dim, m, variant, rng) for _ in range(num_layers)])


IMAGE_NAMES: tuple[str, ...] = ("glow_image",)  # builders of image flows (a ``shape``, not a ``dim``)
NAMES: tuple[str, ...] = tuple(name for name in BUILDERS if name not in IMAGE_NAMES)  # the flows on R^dim


def build(spec: dict) -> FlowModel:
    """The model a spec describes: ``BUILDERS[spec["flow"]](**arguments, rng=spec["seed"])``.

    With the spec's ``seed`` the model is the same one, initial parameters and
    fixed state included; without it, it is freshly initialised. Keys in
    ``RUN_KEYS`` (what the model was trained on) are ignored.

    Raises
    ------
    TypeError
        ``spec`` is not a dict.
    ValueError
        ``spec`` names no known flow, or has arguments the builder does not
        take (the message names them).
    """
    if not isinstance(spec, dict):
        raise TypeError(f"build: spec must be a dict, got {type(spec).__name__}")
    arguments = {key: value for key, value in spec.items() if key not in RUN_KEYS}
    name = arguments.pop("flow", None)
    if name not in BUILDERS:
        raise ValueError(f"build: spec names unknown flow {name!r}; known flows: {', '.join(BUILDERS)}")
    seed = arguments.pop("seed", None)
    accepted = set(inspect.signature(BUILDERS[name]).parameters) - {"rng"}
    unknown = sorted(set(arguments) - accepted)
    if unknown:
        raise ValueError(f"build: {name} takes {sorted(accepted | {'seed'})}, the spec also has {unknown}")
    return BUILDERS[name](**arguments, rng=seed)


def save(model: FlowModel, path: str | os.PathLike, **run: str) -> dict:
    """Save a model's parameters and spec (plus ``run`` keys, e.g. ``data="moons"``) to ``path``.

    Any :class:`~nflows_np.composition.FlowModel` can be saved. One made by a
    builder here also stores its spec, so :func:`load` rebuilds it from the
    file alone; a hand-built one (``spec`` None) stores its parameters and the
    ``run`` keys only: rebuild it by hand and call
    :func:`nflows_np.checkpoint.load_params`.

    Data-dependent initialisation is switched off in the stored spec
    (``data_init=False``): the stored parameters replace it, and an ActNorm
    that re-initialised on its first batch would overwrite them. Returns the
    stored spec.
    """
    if not isinstance(getattr(model, "params", None), dict):
        raise TypeError(f"save: model must be a FlowModel (or have a params dict), got {type(model).__name__}")
    unknown = sorted(set(run) - set(RUN_KEYS))
    if unknown:
        raise ValueError(f"save: run keys must be among {RUN_KEYS}, got {unknown}")
    spec = {**(getattr(model, "spec", None) or {}), **run}
    if "data_init" in spec:
        spec["data_init"] = False
    save_params(model, path, spec)
    return spec


def load(path: str | os.PathLike) -> tuple[FlowModel, dict]:
    """Rebuild the model stored by :func:`save` and load its parameters: ``(model, spec)``.

    Raises
    ------
    ValueError
        The file holds no spec naming a builder (it holds a hand-built model's
        parameters: rebuild the model and use
        :func:`nflows_np.checkpoint.load_params`), or a spec or parameters that
        do not match, or it is not a readable ``.npz``.
    OSError
        The file cannot be read (missing).
    """
    _, spec = read_checkpoint(path)
    if spec is None or "flow" not in spec:
        raise ValueError(f"{path} holds parameters but no spec naming a builder (it was saved from a hand-built "
                         "model, or by nflows_np.checkpoint.save_params): build the same model and call "
                         "nflows_np.checkpoint.load_params(model, path)")
    model = build(spec)
    load_params(model, path)
    return model, spec
