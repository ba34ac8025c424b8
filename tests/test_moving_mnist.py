"""Tests of ganimation_tl.datasets.moving_mnist (Moving MNIST and moving shapes generators)."""
from pathlib import Path

import numpy as np
import pytest

from ganimation_tl.datasets import moving_mnist as mm
from ganimation_tl.errors import InputError

SHARED = Path(__file__).resolve().parents[2] / "shared"
MNIST = SHARED / "data" / "digits" / "mnist.pkl.gz"


def _fake_digits(n=20):
    rng = np.random.default_rng(0)
    digits = np.zeros((n, 28, 28, 1), np.float32)
    digits[:, 4:24, 8:20] = rng.uniform(0.5, 1.0, size=(n, 20, 12, 1))
    return digits, np.arange(n, dtype=np.int32) % 10


def test_bounce_trajectories_stay_inside_and_move():
    rng = np.random.default_rng(0)
    tops = mm.bounce_trajectories(rng, 50, 30, limit=16, max_speed=3)
    assert tops.shape == (50, 30, 2)
    assert tops.min() >= 0 and tops.max() <= 16
    steps = np.abs(np.diff(tops, axis=1))
    assert steps.max() <= 3 and (steps.sum(axis=(1, 2)) > 0).all()   # every box moves


def test_moving_mnist_shapes_positions_and_determinism():
    digits, labels = _fake_digits()
    a = mm.moving_mnist(digits, labels, 6, length=5, image_size=32, digit_size=16, num_digits=2,
                        separate_channels=True, seed=3)
    b = mm.moving_mnist(digits, labels, 6, length=5, image_size=32, digit_size=16, num_digits=2,
                        separate_channels=True, seed=3)
    assert a.frames.shape == (6, 5, 32, 32, 2) and a.frames.dtype == np.float32
    assert a.positions.shape == (6, 5, 2, 2) and a.labels.shape == (6, 2)
    assert 0 <= a.frames.min() and a.frames.max() <= 1
    np.testing.assert_array_equal(a.frames, b.frames)
    # the digit mass lies in the 16x16 box centred at the reported position
    x, y = a.positions[0, 0, 1]
    x0, y0 = int(round(x - 7.5)), int(round(y - 7.5))
    box = a.frames[0, 0, y0:y0 + 16, x0:x0 + 16, 1]
    np.testing.assert_allclose(box.sum(), a.frames[0, 0, :, :, 1].sum(), rtol=1e-6)
    single = mm.moving_mnist(digits, labels, 6, length=5, image_size=32, digit_size=16, num_digits=2, seed=3)
    np.testing.assert_allclose(single.frames[..., 0], a.frames.max(axis=-1))


def test_moving_shapes_turns_and_centroids():
    v = mm.moving_shapes(4, length=6, image_size=32, shape_size=8, num_shapes=1, seed=1)
    assert v.frames.shape == (4, 6, 32, 32, 1)
    # a square's intensity centroid is its box centre
    square = mm.moving_shapes(20, length=2, image_size=32, shape_size=8, seed=2)
    idx = np.flatnonzero(square.labels[:, 0] == mm.SHAPES.index("square"))[0]
    c = mm.intensity_centroids(square.frames[idx, 0])
    np.testing.assert_allclose(c[0], square.positions[idx, 0, 0], atol=1e-4)
    turning = mm.moving_shapes(50, length=10, turn_prob=1.0, seed=0)
    straight = mm.moving_shapes(50, length=10, turn_prob=0.0, seed=0)
    assert not np.array_equal(turning.positions, straight.positions)


def test_intensity_centroid_hand_computed():
    img = np.zeros((5, 5, 1), np.float32)
    img[1, 3, 0] = 1.0
    img[3, 3, 0] = 3.0
    np.testing.assert_allclose(mm.intensity_centroids(img)[0], [3.0, 2.5])
    np.testing.assert_allclose(mm.intensity_centroids(np.zeros((5, 5, 1)))[0], [2.0, 2.0])


def test_bad_inputs():
    digits, labels = _fake_digits()
    with pytest.raises(InputError, match="digit size|object size"):
        mm.moving_mnist(digits, labels, 2, image_size=16, digit_size=20)
    with pytest.raises(InputError, match="labels"):
        mm.moving_mnist(digits, labels[:3], 2)
    with pytest.raises(InputError, match="turn_prob"):
        mm.moving_shapes(2, turn_prob=2.0)


@pytest.mark.skipif(not MNIST.is_file(), reason="../shared/data/digits/mnist.pkl.gz not beside the checkout")
def test_real_mnist_sequences():
    from ganimation_tl.datasets.digits import load_mnist
    x, y = load_mnist(str(MNIST), "test")
    v = mm.moving_mnist(x[:100], y[:100], 3, length=4, seed=0)
    assert v.frames.shape == (3, 4, 32, 32, 1) and v.frames.max() > 0.9
    assert set(v.labels.ravel()) <= set(range(10))
