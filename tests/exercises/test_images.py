"""The references of exercises 08.1-08.3 (nflows_np/exercises/images.py) against independent computations.

tests/test_exercises.py checks that the notebook's solutions pass and every diagnosis is named; here each
reference itself is checked: the squeeze by its index formula, the 1×1 convolution's log-det against the
layer the factors came from and against slogdet, bits/dim against LogitTransform.bits_per_dim.
"""
import itertools

import numpy as np

import nflows_np as nf
from nflows_np import exercises
from nflows_np.exercises import images
from nflows_np.images import LogitTransform


def test_squeeze_reference_follows_the_index_formula():
    exercise = exercises.get("08.1")
    inputs = exercise.inputs()
    c, h, w = inputs["shape"]
    x = inputs["x"].reshape(-1, c, h, w)
    z = exercise.reference(inputs)["z"].reshape(-1, 4 * c, h // 2, w // 2)
    for ch, a, b, i, j in itertools.product(range(c), range(2), range(2), range(h // 2), range(w // 2)):
        assert np.array_equal(z[:, 4 * ch + 2 * a + b, i, j], x[:, ch, 2 * i + a, 2 * j + b])


def test_conv_log_det_reference_is_the_layers_and_slogdets():
    rng = np.random.default_rng(5)
    conv = nf.gradcheck.randomize_params(nf.flows.InvertibleConv1x1(images.CONV_SHAPE, rng), rng, scale=0.8)
    P, L, U = conv.layer.factors()
    inputs = {"P": P, "L": L, "U": U, "shape": images.CONV_SHAPE}
    reference = exercises.get("08.2").reference(inputs)["log_det"]
    layer_log_det = conv.forward(rng.standard_normal((2, int(np.prod(images.CONV_SHAPE)))))[1]
    pixels = images.CONV_SHAPE[1] * images.CONV_SHAPE[2]
    # rounding only: the same sum of C logs, reached through the LU of P L U (1e-10 on a value of order 10)
    np.testing.assert_allclose(layer_log_det, reference, rtol=0, atol=1e-10)
    np.testing.assert_allclose(pixels * np.linalg.slogdet(conv.weight())[1], reference, rtol=0, atol=1e-10)


def test_bits_per_dim_reference_is_the_transforms():
    exercise = exercises.get("08.3")
    inputs = exercise.inputs()
    transform = LogitTransform(inputs["levels"], inputs["alpha"])
    u = np.random.default_rng(7).random(inputs["images"].shape)  # what bits_per_dim(rng=7) draws to dequantise
    reference = exercise.reference({**inputs, "u": u})["bpd"]
    mean = transform.bits_per_dim(inputs["model"], inputs["images"], rng=7)
    np.testing.assert_allclose(reference.mean(), mean, rtol=1e-12)
