"""Multi-label digit composites (ganimation_tl.datasets.multilabel_digits) and multi-label metrics."""
from pathlib import Path

import numpy as np
import pytest

from ganimation_tl.datasets.multilabel_digits import compose_multilabel_digits, load_multilabel_digits
from ganimation_tl.errors import InputError
from ganimation_tl.multilabel import macro_f1, micro_f1, prior_baseline

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "digits" / "mnist.pkl.gz"


def _fake_digits():
    """10 digits: digit c is a constant image of value (c + 1) / 10."""
    labels = np.arange(10)
    digits = np.stack([np.full((28, 28), (c + 1) / 10.0, np.float32) for c in labels])
    return digits, labels


def test_composite_labels_match_slots_and_pixels():
    digits, labels = _fake_digits()
    data = compose_multilabel_digits(digits, labels, count=50, seed=3, image_size=56)
    assert data.images.shape == (50, 56, 56, 1) and data.labels.shape == (50, 10)
    for img, lab, slots in zip(data.images[..., 0], data.labels, data.slots):
        filled = slots[slots >= 0]
        assert 1 <= len(filled) <= 4
        np.testing.assert_array_equal(np.flatnonzero(lab), np.unique(filled))
        for s, c in enumerate(slots):   # each slot shows its digit (or black)
            r, q = divmod(s, 2)
            expected = 0.0 if c < 0 else (c + 1) / 10.0
            np.testing.assert_allclose(img[28 * r:28 * r + 28, 28 * q:28 * q + 28], expected, atol=1e-6)


def test_composites_are_seeded_resized_and_distinct_option():
    digits, labels = _fake_digits()
    a = compose_multilabel_digits(digits, labels, count=20, seed=1, image_size=28)
    b = compose_multilabel_digits(digits, labels, count=20, seed=1, image_size=28)
    c = compose_multilabel_digits(digits, labels, count=20, seed=2, image_size=28)
    assert a.images.shape == (20, 28, 28, 1)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.labels, c.labels)
    d = compose_multilabel_digits(digits, labels, count=30, seed=0, min_digits=4, max_digits=4, distinct=True)
    np.testing.assert_array_equal(d.labels.sum(axis=1), 4)


def test_bad_inputs_raise_input_error(tmp_path):
    digits, labels = _fake_digits()
    with pytest.raises(InputError, match="min_digits"):
        compose_multilabel_digits(digits, labels, count=5, min_digits=0)
    with pytest.raises(InputError, match="28, 28"):
        compose_multilabel_digits(np.zeros((3, 14, 14)), labels[:3], count=5)
    with pytest.raises(InputError, match="--mnist_path.*nope"):
        load_multilabel_digits(str(tmp_path / "nope.pkl.gz"), "train", 10)


@pytest.mark.skipif(not MNIST.is_file(), reason="../shared/data/digits/mnist.pkl.gz is not beside the checkout")
def test_real_mnist_composites_use_split_digits():
    train = load_multilabel_digits(str(MNIST), "train", 200, seed=0, image_size=28)
    test = load_multilabel_digits(str(MNIST), "test", 200, seed=0, image_size=28)
    assert train.images.dtype == np.float32 and 0 <= train.images.min() and train.images.max() <= 1
    # label cardinality 1..4, mean about 2.3 (duplicates merge)
    counts = train.labels.sum(axis=1)
    assert counts.min() >= 1 and counts.max() <= 4 and 1.8 < counts.mean() < 2.8
    assert not np.array_equal(train.images, test.images)


def test_micro_macro_f1_hand_computed():
    truth = np.array([[1, 0, 1], [0, 1, 0]])
    pred = np.array([[1, 1, 0], [0, 1, 0]])
    # TP=2, FP=1, FN=1 -> micro 4/6; per label F1: 1, 2/3, 0 -> macro 5/9
    assert micro_f1(truth, pred) == pytest.approx(4 / 6)
    assert macro_f1(truth, pred) == pytest.approx(5 / 9)
    with pytest.raises(ValueError):
        micro_f1(truth, pred[:, :2])


def test_prior_baseline_picks_frequent_labels():
    train = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 0, 1]])
    result = prior_baseline(train, train)
    # predicting {0, 1} for all: TP 6, FP 2, FN 1 -> 12/15 beats {0} alone (8/11)
    assert result["micro_f1"] == pytest.approx(12 / 15)
