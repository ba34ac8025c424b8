"""Exponential moving average (Polyak-style averaging) of network weights, for evaluating GANs.

Averaging a GAN's weights over the last few thousand iterations and evaluating the averaged network is a known
remedy for the oscillation of simultaneous gradient play: Yazici, Foo, Winkler, Yap, Piliouras, Chandrasekhar,
"The Unusual Effectiveness of Averaging in GAN Training", ICLR 2019 (their EMA: theta_ema <- beta theta_ema +
(1 - beta) theta, beta = 0.999 or 0.9999). Training never reads the averages; only evaluation and sampling do,
through :meth:`WeightAverage.swapped`.

The averages start at zero and are read with Adam's bias correction, ``a_t / (1 - beta^t)`` after t updates, so
every update gets the weight ``(1 - beta) beta^(t - s) / (1 - beta^t)`` and the random initial weights none, at any
length of run. (``tf.train.ExponentialMovingAverage(num_updates=...)`` warms up with the decay
``min(beta, (1 + t) / (10 + t))`` instead; that caps the horizon at about t / 9 updates, so for runs shorter than
about 9 / (1 - beta) updates every beta would give the same average.)
"""
from __future__ import annotations

import contextlib
from typing import ContextManager, Iterator, Optional, Sequence

__all__ = ["WeightAverage", "averaged_weights"]


class WeightAverage:
    """Shadow copies of ``variables`` that track their exponential moving average.

    Args:
        variables: the float ``tf.Variable`` s to average (any shapes; typically a model's trainable weights).
        decay: beta in (0, 1); the averaging horizon is about 1 / (1 - beta) updates.
        name: prefix of the shadow variables' names.

    Attributes:
        averages: list of non-trainable ``tf.Variable`` s, one per variable, same shape and dtype, starting
            at zero (the uncorrected sums; :meth:`values` gives the averages). Checkpoint them with the model
            (``trackables``) so that a resumed run continues the same average.
        num_updates: int64 ``tf.Variable``, updates applied so far (checkpoint it too).

    Raises:
        ValueError: ``decay`` outside (0, 1), or no variables.
    """

    def __init__(self, variables: Sequence, decay: float, name: str = "ema"):
        import tensorflow as tf
        if not 0.0 < decay < 1.0:
            raise ValueError("WeightAverage decay must be in (0, 1), got %r" % (decay,))
        self.variables = list(variables)
        if not self.variables:
            raise ValueError("WeightAverage needs at least one variable")
        self.decay = float(decay)
        self.averages = [tf.Variable(tf.zeros_like(v), trainable=False, name="%s_%d" % (name, i))
                         for i, v in enumerate(self.variables)]
        self.num_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name=name + "_num_updates")

    def update(self):
        """Fold the variables' current values in: ``a <- beta a + (1 - beta) v``, then t += 1. Safe inside
        ``tf.function``."""
        import tensorflow as tf
        for a, v in zip(self.averages, self.variables):
            a.assign(self.decay * a + (1.0 - self.decay) * tf.cast(v, a.dtype))
        self.num_updates.assign_add(1)

    def values(self):
        """The bias-corrected averages ``a / (1 - beta^t)``, tensors shaped like the variables; before the first
        update (t = 0), the variables' own values. Safe inside ``tf.function``."""
        import tensorflow as tf
        t = tf.cast(self.num_updates, tf.float64)
        correction = tf.maximum(1.0 - tf.pow(tf.constant(self.decay, tf.float64), t), 1e-30)
        started = self.num_updates > 0
        return [tf.where(started, a / tf.cast(correction, a.dtype), tf.cast(v, a.dtype))
                for a, v in zip(self.averages, self.variables)]

    def trackables(self):
        """``{"averages": [...], "num_updates": var}`` for ``tf.train.Checkpoint``."""
        return {"averages": list(self.averages), "num_updates": self.num_updates}

    @contextlib.contextmanager
    def swapped(self) -> Iterator[None]:
        """Within the block the variables hold the averages; on exit (also on error) their own values return.

        Calls made inside the block (sampling, classification) therefore use the averaged network. Do not
        train inside the block: the updates would be lost on exit. Also usable while tracing a ``tf.function``
        (the assignments and reads are ordered by TensorFlow's automatic control dependencies).
        """
        import tensorflow as tf
        saved = [tf.identity(v) for v in self.variables]
        averaged = self.values()
        try:
            for v, a in zip(self.variables, averaged):
                v.assign(a)
            yield
        finally:
            for v, s in zip(self.variables, saved):
                v.assign(s)


def averaged_weights(average: Optional[WeightAverage]) -> ContextManager[None]:
    """``average.swapped()``, or a block that changes nothing when ``average`` is None (averaging off): the
    one switch a model's evaluation and sampling code needs."""
    return average.swapped() if average is not None else contextlib.nullcontext()
