"""Real images with no download: the 8×8 handwritten digits shipped inside scikit-learn's wheel.

1797 grey-level images of the digits 0–9 (UCI "optical recognition of handwritten
digits", 8×8 pixels, 17 grey levels 0…16), from ``sklearn.datasets.load_digits``.
Why this set: it is real handwriting, it is inside a registry package (no download
at run time), and it is small enough for NumPy training on a laptop CPU.

The split is fixed (a permutation drawn once from seed 0): 1297 train, 250
validation, 250 test. Pixels are returned as integers in {0, …, 16}; models that
need continuous data dequantise them (see the image flows' pre-processing).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from nflows_np.validation import lookup

LEVELS = 17                 # grey levels 0 … 16
SHAPE = (1, 8, 8)           # (C, H, W)
SPLIT_SIZES = {"train": 1297, "validation": 250, "test": 250}
SPLIT_SEED = 0


class Digits(NamedTuple):
    """One split: ``images`` (N, 64) integers in {0, …, 16} (rows are flattened 8×8 images) and ``labels`` (N,)."""

    images: np.ndarray
    labels: np.ndarray


@functools.cache
def _all() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - scikit-learn is in requirements.txt
        raise ImportError("the digits dataset needs scikit-learn (pip install scikit-learn)") from err
    bunch = load_digits()
    images = bunch.images.reshape(len(bunch.images), -1).astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    return images[order], bunch.target.astype(np.int64)[order]


def load_digits(split: str = "train") -> Digits:
    """The ``split`` ("train", "validation" or "test") of the digits, a fixed partition of all 1797 images."""
    split = lookup(split, SPLIT_SIZES, "digits split")
    images, labels = _all()
    start = 0
    for name, size in SPLIT_SIZES.items():
        if name == split:
            return Digits(images[start:start + size].copy(), labels[start:start + size].copy())
        start += size
    raise AssertionError("unreachable")
