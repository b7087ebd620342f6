"""The assignments: one module each, found by name.

A module ``<name>.py`` in this package is an assignment if it defines
``ASSIGNMENT``, an :class:`nflows_np.grading.cases.Assignment` whose ``name``
equals the module name.  Adding a module is all it takes to add an assignment
(modules whose name starts with ``_`` are helpers, not assignments).
"""
from __future__ import annotations

import importlib
import pkgutil

from nflows_np.grading.cases import Assignment


def names() -> list[str]:
    """Names of the available assignments, sorted."""
    return sorted(module.name for module in pkgutil.iter_modules(__path__)
                  if not module.name.startswith("_"))


def load(name: str) -> Assignment:
    """The assignment called ``name``.

    Raises
    ------
    KeyError
        If there is no such assignment (the message lists the available ones).
    """
    if name not in names():
        raise KeyError(f"unknown assignment {name!r} (available: {', '.join(names()) or 'none'})")
    assignment = importlib.import_module(f"{__name__}.{name}").ASSIGNMENT
    if assignment.name != name:
        raise RuntimeError(f"module {name} defines assignment {assignment.name!r}")
    return assignment
