"""Squeeze (space-to-depth): each 2×2 block of pixels becomes four channels (RealNVP, Glow).

On an image of shape (C, H, W) (flattened in C order: channel, row, column),

    z[4c + 2a + b, i, j] = x[c, 2i + a, 2j + b],   a, b ∈ {0, 1},

giving shape (4C, H/2, W/2). It only reorders the coordinates, so it is a fixed
permutation: log|det ∂z/∂x| = 0, inverse the reverse reordering. It lets the
channel-wise layers that follow mix neighbouring pixels, and halves the
spatial size at each level of a multi-scale flow.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nflows_np.conv import check_shape
from nflows_np.flows.permutation import Permutation

__all__ = ["Squeeze"]


class Squeeze(Permutation):
    """Space-to-depth  (C, H, W) → (4C, H/2, W/2):  z[4c + 2a + b, i, j] = x[c, 2i + a, 2j + b].

    Inverse: depth-to-space, the inverse permutation.  log|det| = 0 both ways.
    Cost: O(N·D) (one gather).

    Parameters
    ----------
    shape : (C, H, W)
        The input image shape; H and W must be even.

    Attributes
    ----------
    shape, out_shape : (C, H, W) and (4C, H/2, W/2)
    """

    def __init__(self, shape: Any):
        c, h, w = check_shape(shape, "Squeeze")
        if h % 2 or w % 2:
            raise ValueError(f"Squeeze: H and W must be even to squeeze 2×2 blocks, got shape {(c, h, w)}")
        # Source index of every output coordinate: x viewed as (c, i, a, j, b), read in the order (c, a, b, i, j).
        perm = np.arange(c * h * w).reshape(c, h // 2, 2, w // 2, 2).transpose(0, 2, 4, 1, 3).reshape(-1)
        super().__init__(perm)
        self.shape = (c, h, w)
        self.out_shape = (4 * c, h // 2, w // 2)

    def __repr__(self) -> str:
        return f"{self.name}(shape={self.shape} → {self.out_shape})"
