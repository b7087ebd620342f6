"""nflows_np.datasets.digits: the fixed split of scikit-learn's 8×8 digits."""
import numpy as np
import pytest

from nflows_np.datasets.digits import LEVELS, SPLIT_SIZES, load_digits


def test_splits_partition_all_1797_images():
    splits = {name: load_digits(name) for name in SPLIT_SIZES}
    assert {name: len(s.images) for name, s in splits.items()} == {"train": 1297, "validation": 250, "test": 250}
    everything = np.concatenate([s.images for s in splits.values()])
    from sklearn.datasets import load_digits as sklearn_digits
    reference = sklearn_digits().images.reshape(-1, 64).astype(int)
    # The same multiset of images: sort rows lexicographically and compare.
    np.testing.assert_array_equal(np.unique(everything, axis=0), np.unique(reference, axis=0))
    assert len(everything) == len(reference) == 1797


def test_images_are_integers_in_range_and_split_is_fixed():
    first, again = load_digits("train"), load_digits("train")
    assert first.images.dtype.kind == "i" and first.images.shape == (1297, 64)
    assert first.images.min() == 0 and first.images.max() == LEVELS - 1
    np.testing.assert_array_equal(first.images, again.images)
    first.images[0, 0] = 99  # a copy: the cached data are not changed
    assert load_digits("train").images[0, 0] != 99
    assert set(np.unique(first.labels)) == set(range(10))


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="digits split"):
        load_digits("tests")
