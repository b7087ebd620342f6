"""The argument checks every public entry uses: a wrong type is a TypeError, a wrong value a ValueError."""
import numpy as np
import pytest

import nflows_np as nf
from nflows_np.validation import as_generator, check_bool, check_int, check_real, lookup


@pytest.mark.parametrize("value", [2.5, True, "3", None, np.float64(2.0)])
def test_check_int_refuses_non_integers_with_a_type_error(value):
    with pytest.raises(TypeError, match="count must be an integer"):
        check_int(value, "count")


def test_check_int_range_and_numpy_integers():
    assert check_int(np.int64(3), "count") == 3 and type(check_int(np.int64(3), "count")) is int
    assert check_int(0, "n", minimum=0) == 0
    with pytest.raises(ValueError, match="n must be an integer >= 0, got -1"):
        check_int(-1, "n", minimum=0)
    with pytest.raises(ValueError, match="count must be a positive integer"):
        check_int(0, "count")


def test_check_bool_real_and_lookup():
    assert check_bool(np.bool_(True), "flag") is True
    with pytest.raises(TypeError, match="flag must be True or False"):
        check_bool(1, "flag")
    assert check_real(2, "lr", minimum=0.0, inclusive=False) == 2.0
    for bad, error in ((np.nan, ValueError), (0.0, ValueError), ("1", TypeError), (True, TypeError)):
        with pytest.raises(error, match="lr"):
            check_real(bad, "lr", minimum=0.0, inclusive=False)
    assert lookup("MOONS", ("moons", "rings"), "dataset name") == "moons"
    with pytest.raises(ValueError, match="valid names are moons, rings"):
        lookup("spiral", ("moons", "rings"), "dataset name")
    with pytest.raises(TypeError, match="dataset name must be a str"):
        lookup(3, ("moons",), "dataset name")
    with pytest.raises(TypeError, match="rng"):
        as_generator("seed")


@pytest.mark.parametrize("draw", [
    lambda: nf.datasets.sample("moons", 2.5),
    lambda: nf.targets.get("U1").sample(2.5),
    lambda: nf.lvm.Normal().sample(2.5),
    lambda: nf.Planar(2.5),
    lambda: nf.StandardNormal(2).sample(2.5),
])
def test_the_same_mistake_gets_the_same_error_everywhere(draw):
    """A float where a count is expected: a TypeError from every entry (it once was TypeError, ValueError
    or "'float' object is not iterable" depending on the module)."""
    with pytest.raises(TypeError, match="must be an integer"):
        draw()
