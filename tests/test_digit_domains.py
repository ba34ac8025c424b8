"""Source/target digit splits (ganimation_tl/digit_domains.py): the scikit-learn target and bad input."""
import numpy as np
import pytest

from sibling_helpers import MNIST

needs_mnist = pytest.mark.skipif(not MNIST.is_file(), reason="needs ../shared/data/digits/mnist.pkl.gz")


@needs_mnist
def test_sklearn_target_is_a_disjoint_split_of_the_8x8_digits():
    from ganimation_tl.datasets.digits import load_sklearn_digits
    from ganimation_tl.digit_domains import load_domain_pair
    pair = load_domain_pair("mnist", "sklearn", str(MNIST), num_source=100, num_target=1000,
                            num_target_test=797, source_test=50, seed=3)
    assert pair.target_train.shape == (1000, 28, 28, 1) and pair.target_test.shape == (797, 28, 28, 1)
    assert pair.source_train.shape == (100, 28, 28, 1)
    for x in (pair.target_train, pair.target_test, pair.source_train):
        assert x.dtype == np.float32 and x.min() >= -1.0 and x.max() <= 1.0
    # Every target image is one of scikit-learn's digits, with its own label, and train/test share none.
    digits, labels = load_sklearn_digits(28)
    flat = (digits * 2.0 - 1.0).reshape(len(digits), -1)
    index = {row.tobytes(): i for i, row in enumerate(flat.astype(np.float32))}
    train_ids = [index[row.tobytes()] for row in pair.target_train.reshape(1000, -1)]
    test_ids = [index[row.tobytes()] for row in pair.target_test.reshape(797, -1)]
    assert len(set(train_ids)) == 1000 and len(set(test_ids)) == 797
    assert not set(train_ids) & set(test_ids)
    np.testing.assert_array_equal(labels[test_ids], pair.target_test_labels)
    np.testing.assert_array_equal(labels[train_ids], pair.target_train_labels)
    assert set(pair.target_test_labels.tolist()) == set(range(10))
    assert "target sklearn" in pair.description


@needs_mnist
def test_bad_domain_pairs_and_counts_are_named():
    from ganimation_tl.digit_domains import load_domain_pair
    from ganimation_tl.errors import InputError
    with pytest.raises(InputError, match="both 'sklearn'"):
        load_domain_pair("sklearn", "sklearn", str(MNIST))
    # MNIST -> MNIST stays allowed: the source is MNIST train, the target MNIST valid / test.
    same = load_domain_pair("mnist", "mnist", str(MNIST), num_source=20, num_target=20, num_target_test=20,
                            source_test=10)
    assert same.source_train.shape == same.target_train.shape == (20, 28, 28, 1)
    with pytest.raises(InputError, match="num_target \\+ num_target_test must be <= 1797"):
        load_domain_pair("mnist", "sklearn", str(MNIST), num_target=1000, num_target_test=1000)
    with pytest.raises(InputError, match="unknown target domain 'usps'"):
        load_domain_pair("mnist", "usps", str(MNIST))
