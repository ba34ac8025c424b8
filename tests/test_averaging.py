"""ganimation_tl.averaging.WeightAverage: the moving average against NumPy, the swap, bad input."""
import numpy as np
import pytest


def test_moving_average_matches_numpy_with_warm_up():
    import tensorflow as tf
    from ganimation_tl.averaging import WeightAverage
    rng = np.random.default_rng(0)
    a = tf.Variable(rng.normal(size=(3, 2)).astype(np.float32))
    b = tf.Variable(rng.normal(size=(4,)).astype(np.float32))
    initial = a.numpy().copy()
    average = WeightAverage([a, b], decay=0.9)
    update = tf.function(average.update)   # also works traced
    history = []
    for t in range(25):
        a.assign(rng.normal(size=(3, 2)).astype(np.float32))
        b.assign(rng.normal(size=(4,)).astype(np.float32))
        update()
        history.append((a.numpy().copy(), b.numpy().copy()))
    # Weighted mean of the 25 values with weights 0.9^(25 - s), normalised: the initial weights do not count.
    w = 0.9 ** np.arange(24, -1, -1)
    w /= w.sum()
    for i, got in enumerate(average.values()):
        want = sum(wi * h[i] for wi, h in zip(w, history))
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    assert int(average.num_updates.numpy()) == 25
    # The average is not the last value: it remembers earlier ones.
    assert not np.allclose(average.values()[0].numpy(), a.numpy())
    assert not np.allclose(average.values()[0].numpy(), initial)


def test_swapped_uses_the_averages_and_restores_the_weights_even_on_error():
    import tensorflow as tf
    from ganimation_tl.averaging import WeightAverage
    v = tf.Variable([1.0, 2.0])
    average = WeightAverage([v], decay=0.5)
    with average.swapped():   # nothing averaged yet: the weights themselves
        np.testing.assert_allclose(v.numpy(), [1.0, 2.0])
    v.assign([5.0, 6.0])
    average.update()
    v.assign([3.0, 2.0])
    average.update()   # (0.5 * [5, 6] + [3, 2]) / 1.5
    with average.swapped():
        np.testing.assert_allclose(v.numpy(), [11.0 / 3.0, 10.0 / 3.0], rtol=1e-6)
    np.testing.assert_allclose(v.numpy(), [3.0, 2.0])
    with pytest.raises(RuntimeError, match="inside"):
        with average.swapped():
            raise RuntimeError("inside")
    np.testing.assert_allclose(v.numpy(), [3.0, 2.0])


def test_averaged_weights_switch():
    import tensorflow as tf
    from ganimation_tl.averaging import WeightAverage, averaged_weights
    v = tf.Variable([1.0])
    average = WeightAverage([v], decay=0.5)
    v.assign([3.0])
    average.update()
    v.assign([7.0])
    with averaged_weights(average):
        np.testing.assert_allclose(v.numpy(), [3.0])
    with averaged_weights(None):
        np.testing.assert_allclose(v.numpy(), [7.0])
    np.testing.assert_allclose(v.numpy(), [7.0])


def test_bad_decay_or_no_variables():
    import tensorflow as tf
    from ganimation_tl.averaging import WeightAverage
    for decay in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="decay"):
            WeightAverage([tf.Variable(1.0)], decay)
    with pytest.raises(ValueError, match="at least one variable"):
        WeightAverage([], 0.9)
