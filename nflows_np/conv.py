"""2-D convolutions with their backward, by im2col or by their dense matrix (written by hand, no autograd).

Layout: images are channels-last inside the convolutions, ``(N, H, W, C)``;
a k×k kernel is ``(k, k, C_in, C_out)``. With "same" zero padding p = (k − 1)/2,

    y[n, i, j, o] = b[o] + Σ_{a, b < k} Σ_c  x_pad[n, i + a, j + b, c] · w[a, b, c, o].

im2col gathers the k·k·C_in values under the kernel at every output pixel
into one row, so the convolution is one matrix product

    Y = X_col W_col,   X_col: (N·H·W, k²·C_in),   W_col: (k²·C_in, C_out),

and its backward is two more (the products are the unavoidable cost):

    ∂L/∂W_col = X_colᵀ ∂L/∂Y,   ∂L/∂X_col = ∂L/∂Y W_colᵀ,   ∂L/∂b = Σ_rows ∂L/∂Y,

with ∂L/∂x the sum of ∂L/∂X_col back over the k² shifted windows (col2im).
Cost: O(N·H·W·k²·C_in·C_out) each way. On an image of at most k² pixels most
of X_col is padding; there the convolution is done as the dense matrix it is,
y_n = x_n M with M: (H·W·C_in, H·W·C_out), which multiplies only pixel pairs
that a tap joins (see :func:`conv2d`).

Buffers: a caller that convolves arrays of the same shapes again and again (a
training step) can pass a dict ``buffers`` that it keeps; the large (N·H·W, ·)
arrays are then written into arrays kept in that dict instead of fresh ones.
Freshly allocated large arrays cost page faults on every step (the allocator
returns freed memory to the system and takes it back). A cache made with
``buffers`` is valid until the next call that uses the same dict.

The flows keep (N, D) arrays with D = C·H·W flattened in C order (channel,
row, column); :func:`to_nhwc` and :func:`from_nhwc` convert.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from nflows_np.validation import check_int, lookup

__all__ = ["check_shape", "conv2d", "conv2d_vjp", "from_nhwc", "to_nhwc"]


def check_shape(shape: Any, who: str) -> tuple[int, int, int]:
    """An image shape (C, H, W) of positive ints, or a clear error naming ``who``."""
    try:
        values = tuple(shape)
    except TypeError:
        raise TypeError(f"{who}: shape must be a (C, H, W) tuple of positive ints, got {shape!r}") from None
    if len(values) != 3:
        raise ValueError(f"{who}: shape must be (C, H, W), got {shape!r}")
    c, h, w = (check_int(v, f"{who}: shape entry") for v in values)
    return c, h, w


def to_nhwc(x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """(N, C·H·W) rows in C order → a contiguous (N, H, W, C) array."""
    c, h, w = shape
    return np.ascontiguousarray(x.reshape(x.shape[0], c, h, w).transpose(0, 2, 3, 1))


def from_nhwc(y: np.ndarray) -> np.ndarray:
    """(N, H, W, C) → (N, C·H·W) rows in C order."""
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2)).reshape(y.shape[0], int(np.prod(y.shape[1:])))


def _buffer(buffers: dict | None, key: str, shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float64 array of ``shape``: ``buffers[key]``, kept between calls, or a fresh one."""
    if buffers is None:
        return np.empty(shape)
    array = buffers.get(key)
    if array is None or array.shape != shape:
        array = buffers[key] = np.empty(shape)
    return array


@lru_cache(maxsize=32)
def _scatter_index(n: int, h: int, w: int, k: int, c: int, sign: int) -> np.ndarray:
    """Where each entry (n, i, j, a, b, c) of a (N·H·W, k²·C) array lands in an (N, H, W, C) one.

    Pixel (i + sign·(a − p), j + sign·(b − p)); entries that land outside the image go to one
    extra slot, index N·H·W·C. sign = +1: col2im (∂L/∂x from ∂L/∂X_col); sign = −1: the
    output-side sum y[i, j] = Σ_{a,b} P[i + a − p, j + b − p, a, b], read from P's side.
    """
    p = k // 2
    shift = sign * (np.arange(k) - p)
    u = np.arange(h)[:, None] + shift[None, :]  # (i, a)
    v = np.arange(w)[:, None] + shift[None, :]  # (j, b)
    inside = (((u >= 0) & (u < h))[:, None, :, None] & ((v >= 0) & (v < w))[None, :, None, :])  # (i, j, a, b)
    pixel = np.clip(u, 0, h - 1)[:, None, :, None] * w + np.clip(v, 0, w - 1)[None, :, None, :]
    index = (np.arange(n)[:, None, None, None, None, None] * (h * w) + pixel[None, ..., None]) * c + np.arange(c)
    index = np.where(inside[None, ..., None], index, n * h * w * c)
    index.flags.writeable = False
    return index.reshape(-1)


def _im2col(x: np.ndarray, k: int, flip: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Rows (n, i, j) of the k×k windows of x (N, H, W, C), zero outside: cols[n, i, j, a, b] = x[n, i + a − p, j + b − p].

    ``flip``: the windows read backwards, cols[n, i, j, a, b] = x[n, i − a + p, j − b + p].
    One gather by the indices of :func:`_scatter_index` (im2col is the adjoint of col2im),
    from x followed by one zero for the taps outside the image; into ``out`` (N·H·W, k²·C).
    """
    n, h, w, c = x.shape
    if out is None:
        out = np.empty((n * h * w, k * k * c))
    source = np.concatenate((x.reshape(-1), np.zeros(1)))
    np.take(source, _scatter_index(n, h, w, k, c, -1 if flip else 1), out=out.reshape(-1))
    return out


def _scatter_add(values: np.ndarray, n: int, h: int, w: int, k: int, c: int, sign: int) -> np.ndarray:
    """The (N, H, W, C) sums of the (N·H·W, k²·C) ``values`` by :func:`_scatter_index` (one bincount)."""
    size = n * h * w * c
    sums = np.bincount(_scatter_index(n, h, w, k, c, sign), values.reshape(-1), minlength=size + 1)
    return sums[:size].astype(np.float64, copy=False).reshape(n, h, w, c)  # (an empty bincount is int)


def _column_sums(g: np.ndarray) -> np.ndarray:
    """Σ_rows g of a (rows, C) array, as one matrix-vector product (faster than a reduction over axis 0)."""
    return np.ones(g.shape[0]) @ g


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
           buffers: dict | None = None, method: str = "auto") -> tuple[np.ndarray, Any]:
    """"Same" convolution y = x ⋆ w + b of channels-last images, and the cache for :func:`conv2d_vjp`.

    Three equal ways (the result is the same):
    im2col, C_in ≤ C_out: Y = X_col W_col (the big matrix has k²·C_in columns);
    im2col, C_in > C_out: product first, P = X W_all with W_all: (C_in, k²·C_out), then each pixel
    adds the k² shifted slices of P (col2im of the output; the big matrix has k²·C_out columns);
    dense, for images of at most k² pixels: the convolution as the (H·W·C_in, H·W·C_out) matrix M
    it is, y_n = x_n M — no more multiplications than im2col, whose rows there are mostly padding.

    Parameters
    ----------
    x : (N, H, W, C_in) array
    weight : (k, k, C_in, C_out) array, k odd
    bias : (C_out,) array, optional
    buffers : dict, optional
        Kept by the caller between calls: y and the large intermediate arrays are written
        into arrays stored there (y and the cache are then overwritten by the next call).
    method : {"auto", "im2col", "dense"}
        "auto": dense when k > 1 and H·W ≤ k², im2col otherwise.

    Returns
    -------
    y : (N, H, W, C_out) array
    cache : what :func:`conv2d_vjp` needs
    """
    c_in = x.shape[3]
    k, c_out = weight.shape[0], weight.shape[3]
    if weight.shape[:3] != (k, k, c_in) or k % 2 == 0:
        raise ValueError(f"conv2d: weight must be (k, k, {c_in}, C_out) with k odd, got {weight.shape}")
    method = lookup(method, ("auto", "im2col", "dense"), "conv2d: method")
    if method == "dense" or (method == "auto" and k > 1 and x.shape[1] * x.shape[2] <= k * k):
        y, cache = _conv2d_dense(x, weight, buffers)
    elif k > 1 and c_in > c_out:
        y, cache = _conv2d_output_side(x, weight, buffers)
    else:
        y, cache = _conv2d_input_side(x, weight, buffers)
    if bias is not None:
        y += bias
    return y, cache


def _conv2d_input_side(x: np.ndarray, weight: np.ndarray, buffers: dict | None) -> tuple[np.ndarray, Any]:
    n, h, w, c_in = x.shape
    k, c_out = weight.shape[0], weight.shape[3]
    w_col = weight.reshape(k * k * c_in, c_out)
    if k == 1:  # a 1×1 convolution is a product at every pixel: no patches to gather
        cols = x.reshape(n * h * w, c_in)
    else:  # rows ordered (a, b, c), like w_col
        cols = _im2col(x, k, out=_buffer(buffers, "cols", (n * h * w, k * k * c_in)))
    y = np.matmul(cols, w_col, out=_buffer(buffers, "y", (n * h * w, c_out)))
    return y.reshape(n, h, w, c_out), ("input", cols, x.shape, weight)


def _conv2d_output_side(x: np.ndarray, weight: np.ndarray, buffers: dict | None) -> tuple[np.ndarray, Any]:
    n, h, w, c_in = x.shape
    k, c_out = weight.shape[0], weight.shape[3]
    w_all = weight.transpose(2, 0, 1, 3).reshape(c_in, k * k * c_out)
    # P[n, u, v, a, b] = w[a, b]ᵀ x[n, u, v]; y[i, j] = Σ_{a,b} P[i + a − p, j + b − p, a, b] (zero outside)
    products = np.matmul(x.reshape(n * h * w, c_in), w_all, out=_buffer(buffers, "products", (n * h * w, k * k * c_out)))
    y = _scatter_add(products, n, h, w, k, c_out, -1)
    return y, ("output", x, w_all, weight.shape)


@lru_cache(maxsize=32)
def _dense_index(h: int, w: int, k: int, c_in: int, c_out: int) -> np.ndarray:
    """Where each entry of the dense matrix M[(pixel_in, c), (pixel_out, o)] is read from w.ravel() (+ a zero).

    M[(i + a − p, j + b − p, c), (i, j, o)] = w[a, b, c, o]; pairs of pixels no tap joins read the zero
    at index k²·C_in·C_out. Shape (H·W·C_in, H·W·C_out).
    """
    p, pixels = k // 2, h * w
    row, col = np.divmod(np.arange(pixels), w)
    a = row[:, None] - row[None, :] + p  # (pixel_in, pixel_out) → kernel row a, column b
    b = col[:, None] - col[None, :] + p
    joined = (a >= 0) & (a < k) & (b >= 0) & (b < k)
    tap = np.where(joined, a * k + b, 0)
    index = (tap[:, None, :, None] * c_in + np.arange(c_in)[None, :, None, None]) * c_out + np.arange(c_out)
    index = np.where(joined[:, None, :, None], index, k * k * c_in * c_out)
    index.flags.writeable = False
    return index.reshape(pixels * c_in, pixels * c_out)


def _conv2d_dense(x: np.ndarray, weight: np.ndarray, buffers: dict | None) -> tuple[np.ndarray, Any]:
    n, h, w, c_in = x.shape
    k, c_out = weight.shape[0], weight.shape[3]
    index = _dense_index(h, w, k, c_in, c_out)
    dense = np.take(np.concatenate((weight.reshape(-1), np.zeros(1))), index)
    rows = x.reshape(n, h * w * c_in)  # (N, H, W, C) rows are already (pixel, channel) vectors
    y = np.matmul(rows, dense, out=_buffer(buffers, "y", (n, h * w * c_out)))
    return y.reshape(n, h, w, c_out), ("dense", rows, dense, index, weight.shape)


def _dense_vjp(cache: Any, grad_y: np.ndarray, need_x: bool,
               buffers: dict | None) -> tuple[np.ndarray | None, np.ndarray]:
    _, rows, dense, index, shape = cache
    g = grad_y.reshape(rows.shape[0], dense.shape[1])
    # Y = X M ⇒ ∂L/∂M = Xᵀ ∂L/∂Y; M copies w into the entries of index ⇒ ∂L/∂w sums ∂L/∂M over them
    grad_dense = rows.T @ g
    size = int(np.prod(shape))
    grad_w = np.bincount(index.reshape(-1), grad_dense.reshape(-1), minlength=size + 1)[:size].reshape(shape)
    if not need_x:
        return None, grad_w
    grad_x = np.matmul(g, dense.T, out=_buffer(buffers, "grad_x", rows.shape))  # ∂L/∂X = ∂L/∂Y Mᵀ
    return grad_x.reshape(grad_y.shape[:3] + (shape[2],)), grad_w


def conv2d_vjp(cache: Any, grad_y: np.ndarray, need_x: bool = True,
               buffers: dict | None = None) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(∂L/∂x, ∂L/∂w, ∂L/∂b) of :func:`conv2d` from ∂L/∂y (N, H, W, C_out).

    With ``need_x=False`` the input gradient is skipped (returned as None):
    a network's first layer reads data, whose gradient nobody needs.
    ``buffers``: as in :func:`conv2d` (∂L/∂x is then overwritten by the next call).
    """
    grad_b = _column_sums(grad_y.reshape(-1, grad_y.shape[3]))
    if cache[0] == "output":
        return (*_output_side_vjp(cache, grad_y, need_x, buffers), grad_b)
    if cache[0] == "dense":
        return (*_dense_vjp(cache, grad_y, need_x, buffers), grad_b)
    _, cols, (n, h, w, c_in), weight = cache
    k, c_out = weight.shape[0], weight.shape[3]
    g = grad_y.reshape(n * h * w, c_out)
    grad_w = (cols.T @ g).reshape(weight.shape)  # Y = X_col W_col ⇒ ∂L/∂W_col = X_colᵀ ∂L/∂Y
    if not need_x:
        return None, grad_w, grad_b
    # ∂L/∂X_col = ∂L/∂Y W_colᵀ
    grad_cols = np.matmul(g, weight.reshape(k * k * c_in, c_out).T, out=_buffer(buffers, "grad_cols", cols.shape))
    if k == 1:
        return grad_cols.reshape(n, h, w, c_in), grad_w, grad_b
    # col2im: x_pad[i + a, j + b] fed row (i, j) at kernel offset (a, b); add those contributions back.
    return _scatter_add(grad_cols, n, h, w, k, c_in, +1), grad_w, grad_b


def _output_side_vjp(cache: Any, grad_y: np.ndarray, need_x: bool,
                     buffers: dict | None) -> tuple[np.ndarray | None, np.ndarray]:
    _, x, w_all, (k, _, c_in, c_out) = cache
    n, h, w, _ = x.shape
    # y[i, j] += P[i + a − p, j + b − p, a, b] ⇒ ∂L/∂P[u, v, a, b] = ∂L/∂y[u − a + p, v − b + p] (0 outside)
    grad_p = _im2col(grad_y, k, flip=True, out=_buffer(buffers, "grad_p", (n * h * w, k * k * c_out)))
    rows = x.reshape(n * h * w, c_in)
    # P = X W_all ⇒ ∂L/∂W_all = Xᵀ ∂L/∂P, ∂L/∂X = ∂L/∂P W_allᵀ
    grad_w = (rows.T @ grad_p).reshape(c_in, k, k, c_out).transpose(1, 2, 0, 3)
    if not need_x:
        return None, np.ascontiguousarray(grad_w)
    grad_x = np.matmul(grad_p, w_all.T, out=_buffer(buffers, "grad_x", (n * h * w, c_in)))
    return grad_x.reshape(n, h, w, c_in), np.ascontiguousarray(grad_w)
