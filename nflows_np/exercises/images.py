"""Exercises of notebook 08 (Glow on the digits): squeeze, the 1×1 convolution's log-det, bits per dimension.

Each reference is computed with the library (:class:`~nflows_np.flows.squeeze.Squeeze`,
:class:`~nflows_np.flows.pixelwise.PerPixel` of an LU-parametrised linear flow,
:class:`~nflows_np.images.LogitTransform` and :func:`~nflows_np.images.bits_per_dim`);
each diagnosis recomputes the answer with one known mistake, so the check can name it.
"""
from __future__ import annotations

import math

import numpy as np

from nflows_np import flows, models
from nflows_np.exercises.core import Diagnosis, Exercise
from nflows_np.gradcheck import randomize_params
from nflows_np.images import LogitTransform, bits_per_dim

# -- 08.1 · squeeze ------------------------------------------------------------------------

SQUEEZE_SHAPE = (2, 4, 6)  # C > 1 and H ≠ W, so that a wrong channel or axis order shows


def _squeeze_inputs(rng):
    return {"x": rng.standard_normal((3, int(np.prod(SQUEEZE_SHAPE)))), "shape": SQUEEZE_SHAPE}


def _squeeze_with(i, order):
    """x viewed as (n, c, i, a, j, b), read in ``order`` (axes 1..5 of that view), flattened per image."""
    c, h, w = i["shape"]
    n = i["x"].shape[0]
    return i["x"].reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, *order).reshape(n, -1)


# -- 08.2 · log-det of the invertible 1×1 convolution -------------------------------------

CONV_SHAPE = (4, 3, 5)


def _conv_inputs(rng):
    conv = randomize_params(flows.InvertibleConv1x1(CONV_SHAPE, rng), rng, scale=0.8)
    P, L, U = conv.layer.factors()
    return {"P": P, "L": L, "U": U, "shape": CONV_SHAPE}


def _conv_reference(i):
    # The library's 1×1 convolution is LULinear(C) run at every pixel (PerPixel); rebuild it from W = P L U.
    conv = flows.PerPixel(flows.LULinear(i["shape"][0], weight=i["P"] @ i["L"] @ i["U"]), i["shape"])
    return {"log_det": conv.forward(np.zeros((1, int(np.prod(i["shape"])))))[1][0]}


def _sum_log_s(i):
    return np.sum(np.log(np.abs(np.diag(i["U"]))))


# -- 08.3 · bits per dimension ------------------------------------------------------------

IMAGE_SHAPE, LEVELS, ALPHA = (1, 4, 4), 17, 0.05


def _bpd_inputs(rng):
    model = models.glow_image(IMAGE_SHAPE, levels=2, steps=1, hidden=4, data_init=False, rng=21)
    dim = int(np.prod(IMAGE_SHAPE))
    return {"images": rng.integers(0, LEVELS, (6, dim)), "u": rng.random((6, dim)),
            "model": randomize_params(model, rng, scale=0.3), "levels": LEVELS, "alpha": ALPHA}


def _bpd_terms(i):
    """(log p_X(x), log|det ∂x/∂y|, D) from the library's LogitTransform."""
    x, log_det = LogitTransform(i["levels"], i["alpha"]).to_logit((i["images"] + i["u"]) / i["levels"])
    return i["model"].log_prob(x), log_det, i["images"].shape[1]


def _bpd_reference(i):
    log_px, log_det, dim = _bpd_terms(i)
    return {"bpd": bits_per_dim(log_px, log_det, dim, i["levels"])}


def _bpd_without(i, logit=True, rescale=True):
    log_px, log_det, dim = _bpd_terms(i)
    return -(log_px + logit * log_det - rescale * dim * math.log(i["levels"])) / (dim * math.log(2.0))


IMAGES = (
    Exercise(
        "08.1", "squeeze, space to depth", _squeeze_inputs,
        lambda i: {"z": flows.Squeeze(i["shape"]).forward(i["x"])[0]},
        {"z": "z[4c + 2a + b, i, j] = x[c, 2i + a, 2j + b], each image flattened (channel, row, column)"},
        (Diagnosis("z", lambda i: _squeeze_with(i, (1, 5, 3, 2, 4)),
                   "a and b swapped (channel 4c + 2b + a): a is the row offset, b the column offset, "
                   "z[4c + 2a + b, i, j] = x[c, 2i + a, 2j + b]"),
         Diagnosis("z", lambda i: _squeeze_with(i, (3, 5, 1, 2, 4)),
                   "the block offset before the channel (channel C·(2a + b) + c): the library keeps the four "
                   "sub-images of each input channel together, channel 4c + 2a + b"),
         Diagnosis("z", lambda i: i["x"],
                   "a reshape alone moves no pixel: split the rows into (i, a) and the columns into (j, b), "
                   "then bring a and b next to the channel")),
        batch_key="x"),
    Exercise(
        "08.2", "log-det of the invertible 1×1 convolution", _conv_inputs, _conv_reference,
        {"log_det": "log|det ∂z/∂x| = H·W·Σ_c log|s_c| for W = P L (U + diag s) at every pixel"},
        (Diagnosis("log_det", _sum_log_s,
                   "the factor H·W is missing: the same C×C matrix W acts at each of the H·W pixels, so the "
                   "Jacobian is block-diagonal with H·W copies of W"),
         Diagnosis("log_det", lambda i: int(np.prod(i["shape"])) * _sum_log_s(i),
                   "multiplied by D = C·H·W: the Jacobian holds H·W blocks of size C×C, not D"))),
    Exercise(
        "08.3", "bits per dimension of discrete images", _bpd_inputs, _bpd_reference,
        {"bpd": "−[log p_X(x) + log|det ∂x/∂y| − D log L] / (D log 2), one value per image"},
        (Diagnosis("bpd", lambda i: math.log(2.0) * _bpd_reference(i)["bpd"],
                   "the log 2 is missing: that is nats per dimension; bits = nats / log 2"),
         Diagnosis("bpd", lambda i: i["images"].shape[1] * _bpd_reference(i)["bpd"],
                   "no division by D: that is bits per image; bits per dimension divide by D = C·H·W"),
         Diagnosis("bpd", lambda i: _bpd_without(i, logit=False),
                   "the logit's log-det log|det ∂x/∂y| = Σ_i [log(1 − 2α) − log p_i − log(1 − p_i)] is missing: "
                   "the model's density is on x, the data are y"),
         Diagnosis("bpd", lambda i: _bpd_without(i, rescale=False),
                   "the rescaling y = v/L is missing: log p_v(v) = log p_y(y) − D log L")),
        batch_key="images"),
)
