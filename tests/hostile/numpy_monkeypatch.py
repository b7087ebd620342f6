# Hostile: every comparison helper of numpy says "equal", and
# elementwise_log_det returns zeros.
import numpy as np
import numpy.testing

np.allclose = lambda *args, **kwargs: True
np.array_equal = lambda *args, **kwargs: True
np.isclose = lambda a, b, *args, **kwargs: np.ones(np.broadcast(a, b).shape, dtype=bool)
for _name in ("assert_allclose", "assert_array_equal", "assert_array_almost_equal",
              "assert_almost_equal", "assert_equal"):
    setattr(numpy.testing, _name, lambda *args, **kwargs: None)


def elementwise_log_det(x, a):
    return np.zeros(len(x))
