"""The registry of layers for the one contract test (DESIGN §5).

A layer family joins the contract test by adding a module ``tests/cases_<family>.py``
that defines ``CASES``: a list of :class:`FlowCase`, and, where its layers act on flat
(N, D) arrays of any D, ``family_examples(dim, rng)``: one layer of each of its families,
which the tests of compositions use (:func:`one_of_every_family`). Nothing else is copied.
"""
from __future__ import annotations

import importlib
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class FlowCase:
    """How to build one layer at random, non-trivial parameters, and feed it.

    Attributes
    ----------
    name : str
        Test id, e.g. ``"LULinear-D3"``.
    make : callable(rng) -> Flow
        A fresh layer with random parameters (away from the identity).
    dim : int
        D.
    sample_x : callable(rng, n) -> (n, D) array
        Points of the layer's data domain (default: standard normal).
    check_kwargs : dict
        Extra keyword arguments for ``gradcheck.check_flow`` (e.g. the
        root-finder's stated ``inverse_tol``), each with a reason in the case module.
    """

    name: str
    make: Callable[[np.random.Generator], object]
    dim: int
    sample_x: Callable[[np.random.Generator, int], np.ndarray] | None = None
    check_kwargs: dict = field(default_factory=dict)

    def inputs(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.sample_x is not None:
            return self.sample_x(rng, n)
        return rng.standard_normal((n, self.dim))


def _case_modules() -> list:
    return [importlib.import_module(path.stem) for path in sorted(pathlib.Path(__file__).parent.glob("cases_*.py"))]


def all_cases() -> list[FlowCase]:
    """Every ``CASES`` of every ``tests/cases_*.py`` module."""
    return [case for module in _case_modules() for case in module.CASES]


def one_of_every_family(dim: int, rng: np.random.Generator) -> list:
    """One layer of every family on (N, dim) arrays, from each case module's ``family_examples(dim, rng)``.

    A case module whose layers need more than a flat dimension (e.g. images) defines none.
    """
    return [layer for module in _case_modules() if hasattr(module, "family_examples")
            for layer in module.family_examples(dim, rng)]
