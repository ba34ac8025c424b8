"""Order-free RNN with visual attention for multi-label classification, ``train.py --model=orderfree_rnn``.

Source: S.-F. Chen, Y.-C. Chen, C.-K. Yeh, Y.-C. F. Wang, "Order-Free RNN with Visual Attention for
Multi-Label Classification", AAAI 2018; no official code exists, so the details follow the summary
in ``../shared/docs/papers/batch2_*.md`` section 7 (tagged [paper?] there) and are inferred where
stated below.

Model:

* CNN feature extractor: a small conv net giving a feature map ``V [B, h, w, C]`` (h = w = S/4),
  i.e. N = h*w region vectors ``v_n``; and the CNN multi-label head ``s = sigmoid(W_s mean_n v_n)``
  (the "CNN label confidences" the RNN starts from), trained with binary cross-entropy.
* Soft visual attention (Show-Attend-Tell form) at step t::

      e_{t,n} = w_a^T tanh(W_v v_n + W_h h_{t-1} + b_a),  alpha_t = softmax_n(e_t),  z_t = sum_n alpha_{t,n} v_n

* LSTM decoder (written with TensorFlow primitives inside a TensorLayer layer, because TL's RNN layers
  are broken on TF 2.21)::

      [i, f, o, g] = W x_t + U h_{t-1} + b,   x_t = [E y_{t-1}, z_t]
      c_t = sigma(f) c_{t-1} + sigma(i) tanh(g),  h_t = sigma(o) tanh(c_t)
      p_t = softmax(W_p [h_t, z_t] + b_p)      over the L labels and <end>

  with ``h_0, c_0 = tanh(W_0 [s, mean_n v_n])`` and ``y_0 = <start>``.
* Order-free training ("predicted label alignment"): the target at step t is the ground-truth label
  not yet emitted with the highest current probability, ``y_t = argmax_{y in Y_remaining} p_t(y)``,
  and ``<end>`` once Y_remaining is empty; loss ``sum_t CE(p_t, y_t)`` (steps after ``<end>`` masked)
  plus ``lambda_cnn * BCE(s, y)``. The chosen y_t is fed back as the next input (teacher forcing).
* Inference with candidate pooling: at each step the labels already emitted are removed from the
  candidates (masked out of p_t), the most probable remaining candidate (or ``<end>``) is emitted,
  and the prediction is the pooled set of labels emitted before ``<end>``.

Data: multi-label digit composites (:mod:`ganimation_tl.datasets.multilabel_digits`: 2x2 tiles of
real MNIST digits, 1-4 digits, labels = the digit classes present, L = 10).

Deviations (and why):

* Backbone: a 4-layer conv net trained from scratch instead of an ImageNet-pretrained ResNet (no
  downloads allowed; the digits are 14-28 px); MS-COCO / NUS-WIDE are replaced by the digit composites.
* Decoding: greedy with candidate pooling instead of beam search (beam size 1; CPU budget). The
  number of steps is capped at ``max labels + 1`` = 5.
* Initial state from the CNN's label confidences and mean feature (the paper feeds the CNN predictions
  to the RNN; the exact wiring is not public, inferred).
* The auxiliary CNN BCE loss weight ``lambda_cnn`` (1.0) is our choice.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Iterator, Tuple

import numpy as np
from absl import flags

from ganimation_tl import registry, sibling
from ganimation_tl.errors import InputError

MODEL_NAME = "orderfree_rnn"
MAX_STEPS = 5  # at most 4 distinct labels per composite, plus <end>


@dataclasses.dataclass(frozen=True)
class OrderFreeRNNConfig:
    """Hyper-parameters; field names are the flag names (see ``configs/orderfree_rnn.cfg``).

    Attributes:
        image_size: side S of the composites (multiple of 4).
        orderfree_channels: channels C of the CNN feature map (last conv layer).
        orderfree_hidden: LSTM hidden size H. orderfree_embed: label-embedding size.
        orderfree_attention: attention MLP size.
        orderfree_lambda_cnn: weight of the CNN head's BCE loss.
        learning_rate: Adam learning rate. batch_size, epochs, seed: as usual.
        orderfree_train_images, orderfree_test_images: composites from MNIST train / test digits.
    """

    image_size: int = 56
    orderfree_channels: int = 128
    orderfree_hidden: int = 256
    orderfree_embed: int = 64
    orderfree_attention: int = 128
    orderfree_lambda_cnn: float = 1.0
    learning_rate: float = 1e-3
    batch_size: int = 64
    epochs: int = 20
    seed: int = 0
    orderfree_train_images: int = 50000
    orderfree_test_images: int = 10000

    def __post_init__(self):
        for name in ("image_size", "orderfree_channels", "orderfree_hidden", "orderfree_embed",
                     "orderfree_attention", "batch_size", "epochs", "orderfree_train_images",
                     "orderfree_test_images"):
            if getattr(self, name) <= 0:
                raise ValueError("%s must be positive, got %r" % (name, getattr(self, name)))
        if self.image_size % 4:
            raise ValueError("image_size must be a multiple of 4, got %d" % self.image_size)
        if self.orderfree_lambda_cnn < 0 or not self.learning_rate > 0:
            raise ValueError("orderfree_lambda_cnn must be >= 0 and learning_rate > 0")


# ---------------------------------------------------------------------------------------------- networks
def build_encoder(image_size: int, channels: int, num_labels: int, name: str = "ofr_cnn"):
    """CNN feature extractor with its multi-label head, a static TL model.

    Input ``[B, S, S, 1]`` in [0, 1] (NHWC). Outputs ``(features [B, S/4, S/4, C], cnn_logits [B, L])``.
    Layers: 3x3 conv 32, 3x3/2 conv 64, 3x3 conv 64, 3x3/2 conv C (ReLU), head = Dense on the spatial mean.
    """
    import tensorflow as tf
    import tensorlayer as tl
    from ganimation_tl.networks import unique_model_name

    init = lambda fan_in: tl.initializers.truncated_normal(stddev=float(np.sqrt(2.0 / fan_in)))  # noqa: E731
    x = inputs = tl.layers.Input([None, image_size, image_size, 1], name=name + "_in")
    previous = 1
    for i, (filters, stride) in enumerate(((32, 1), (64, 2), (64, 1), (channels, 2))):
        x = tl.layers.Conv2d(filters, (3, 3), (stride, stride), act=tf.nn.relu, padding="SAME",
                             W_init=init(9 * previous), in_channels=previous, name="%s_c%d" % (name, i))(x)
        previous = filters
    features = x
    pooled = tl.layers.Lambda(lambda t: tf.reduce_mean(t, axis=[1, 2]), name=name + "_gap")(x)
    logits = tl.layers.Dense(num_labels, in_channels=channels, W_init=init(channels), name=name + "_head")(pooled)
    return tl.models.Model(inputs=inputs, outputs=[features, logits], name=unique_model_name(name))


def _attention_lstm_layer_class():
    import tensorflow as tf
    import tensorlayer as tl

    class AttentionLSTMDecoder(tl.layers.Layer):
        """LSTM label decoder with soft visual attention, written with TF primitives (TL's RNN layers
        are broken on TF 2.21; ``../shared/docs/toolchain.md`` 1.1).

        Args:
            num_labels: L. Output classes are L + 1 (index L = ``<end>``); input tokens are L + 1
                (index L = ``<start>``).
            feature_channels: C of the region features. hidden: H. embed: label-embedding size.
            attention: attention MLP size. name: layer name (variables ``<name>/<weight>``).

        ``forward([features [B, N, C], cnn_scores [B, L]])`` runs greedy decoding with candidate
        pooling and returns the predicted multi-hot labels ``[B, L]`` float32.
        """

        def __init__(self, num_labels, feature_channels, hidden, embed, attention, name="ofr_rnn"):
            super().__init__(name)
            self.num_labels, self.channels = int(num_labels), int(feature_channels)
            self.hidden, self.embed_size, self.attention_size = int(hidden), int(embed), int(attention)
            self.build(None)
            self._built = True

        def build(self, inputs_shape):
            L, C, H, E, A = self.num_labels, self.channels, self.hidden, self.embed_size, self.attention_size
            glorot = lambda a, b: tl.initializers.random_uniform(-np.sqrt(6.0 / (a + b)), np.sqrt(6.0 / (a + b)))  # noqa
            zeros = tl.initializers.zeros()
            self.embedding = self._get_weights("embedding", (L + 1, E), init=tl.initializers.random_normal(stddev=0.1))
            self.w_v = self._get_weights("att_wv", (C, A), init=glorot(C, A))
            self.w_h = self._get_weights("att_wh", (H, A), init=glorot(H, A))
            self.b_a = self._get_weights("att_b", (A,), init=zeros)
            self.w_a = self._get_weights("att_w", (A, 1), init=glorot(A, 1))
            self.w_x = self._get_weights("lstm_w", (E + C, 4 * H), init=glorot(E + C, 4 * H))
            self.w_hh = self._get_weights("lstm_u", (H, 4 * H), init=glorot(H, 4 * H))
            self.b = self._get_weights("lstm_b", (4 * H,), init=zeros)
            self.w_0 = self._get_weights("init_w", (L + C, 2 * H), init=glorot(L + C, 2 * H))
            self.b_0 = self._get_weights("init_b", (2 * H,), init=zeros)
            self.w_p = self._get_weights("out_w", (H + C, L + 1), init=glorot(H + C, L + 1))
            self.b_p = self._get_weights("out_b", (L + 1,), init=zeros)

        def initial_state(self, features, cnn_scores):
            """``(h0, c0)``, each ``[B, H]``, from the CNN label confidences and the mean region feature."""
            state = tf.tanh(tf.matmul(tf.concat([cnn_scores, tf.reduce_mean(features, axis=1)], 1), self.w_0) + self.b_0)
            return tf.split(state, 2, axis=1)

        def step(self, features, projected, tokens, state):
            """One decoder step.

            Args:
                features: ``[B, N, C]``. projected: ``features @ W_v`` ``[B, N, A]`` (precomputed).
                tokens: int32 ``[B]`` previous label (L = ``<start>``). state: ``(h, c)``.

            Returns:
                ``(logits [B, L + 1], (h, c), alpha [B, N])``.
            """
            h, c = state
            e = tf.squeeze(tf.matmul(tf.tanh(projected + tf.matmul(h, self.w_h)[:, None, :] + self.b_a), self.w_a), -1)
            alpha = tf.nn.softmax(e, axis=1)
            z = tf.reduce_sum(alpha[:, :, None] * features, axis=1)
            x = tf.concat([tf.gather(self.embedding, tokens), z], axis=1)
            i, f, o, g = tf.split(tf.matmul(x, self.w_x) + tf.matmul(h, self.w_hh) + self.b, 4, axis=1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            logits = tf.matmul(tf.concat([h, z], 1), self.w_p) + self.b_p
            return logits, (h, c), alpha

        def order_free_loss(self, features, cnn_scores, labels):
            """Order-free training loss (predicted label alignment, teacher forcing).

            Args:
                features ``[B, N, C]``; cnn_scores ``[B, L]`` in [0, 1]; labels ``[B, L]`` in {0, 1}
                with at most ``MAX_STEPS - 1`` positives.

            Returns:
                ``(loss, targets)``: loss = mean over the batch of ``sum_t CE(p_t, y_t)`` over the
                steps up to and including ``<end>``; targets int32 ``[B, MAX_STEPS]`` the aligned labels.
            """
            L = self.num_labels
            batch = tf.shape(features)[0]
            state = self.initial_state(features, cnn_scores)
            projected = tf.einsum("bnc,ca->bna", features, self.w_v)
            tokens = tf.fill([batch], L)
            remaining = tf.cast(labels, tf.float32)
            alive = tf.ones([batch], tf.float32)
            total = tf.zeros([batch], tf.float32)
            targets = []
            for _ in range(MAX_STEPS):
                logits, state, _ = self.step(features, projected, tokens, state)
                probs = tf.stop_gradient(tf.nn.softmax(logits[:, :L], axis=1))
                has_left = tf.reduce_sum(remaining, axis=1) > 0
                best_remaining = tf.argmax(tf.where(remaining > 0, probs, -1.0), axis=1, output_type=tf.int32)
                target = tf.where(has_left, best_remaining, L)
                ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=logits)
                total += alive * ce
                alive *= tf.cast(has_left, tf.float32)       # after <end> nothing is scored
                remaining *= 1.0 - tf.one_hot(target, L)       # <end> (index L) removes nothing
                tokens = target
                targets.append(target)
            return tf.reduce_mean(total), tf.stack(targets, axis=1)

        def decode(self, features, cnn_scores):
            """Greedy decoding with candidate pooling: returns ``(multi-hot [B, L], tokens [B, MAX_STEPS],
            attention [B, MAX_STEPS, N])``; emitted labels are masked out of later steps; ``<end>`` stops."""
            L = self.num_labels
            batch = tf.shape(features)[0]
            state = self.initial_state(features, cnn_scores)
            projected = tf.einsum("bnc,ca->bna", features, self.w_v)
            tokens = tf.fill([batch], L)
            emitted = tf.zeros([batch, L], tf.float32)
            alive = tf.ones([batch], tf.float32)
            outputs, attentions = [], []
            for _ in range(MAX_STEPS):
                logits, state, alpha = self.step(features, projected, tokens, state)
                mask = tf.concat([emitted, tf.zeros([batch, 1])], axis=1)
                token = tf.argmax(tf.where(mask > 0, -1e9, logits), axis=1, output_type=tf.int32)
                label = tf.one_hot(token, L) * alive[:, None]
                emitted = tf.minimum(emitted + label, 1.0)
                alive *= tf.cast(token < L, tf.float32)
                tokens = tf.minimum(token, L)
                outputs.append(token)
                attentions.append(alpha)
            return emitted, tf.stack(outputs, 1), tf.stack(attentions, 1)

        def forward(self, inputs):
            features, cnn_scores = inputs
            return self.decode(features, cnn_scores)[0]

    return AttentionLSTMDecoder


def build_decoder(num_labels: int, feature_channels: int, hidden: int, embed: int, attention: int,
                  name: str = "ofr_rnn"):
    """The attention-LSTM label decoder (a ``tl.layers.Layer``; see its class docstring)."""
    return _attention_lstm_layer_class()(num_labels, feature_channels, hidden, embed, attention, name=name)


class OrderFreeRNN:
    """CNN + attention LSTM trained order-free; the trainer interface of :mod:`ganimation_tl.trainer`.

    Args:
        config: :class:`OrderFreeRNNConfig`. num_labels: L.
    """

    sample_grid_tag = "samples/images_truth_prediction"

    def __init__(self, config: OrderFreeRNNConfig, num_labels: int = 10):
        import tensorflow as tf

        tf.random.set_seed(config.seed)
        self.config = config
        self.num_labels = num_labels
        self.encoder = build_encoder(config.image_size, config.orderfree_channels, num_labels)
        self.encoder.train()
        self.decoder = build_decoder(num_labels, config.orderfree_channels, config.orderfree_hidden,
                                     config.orderfree_embed, config.orderfree_attention)
        self.variables = self.encoder.trainable_weights + self.decoder.trainable_weights
        self.optimizer = tf.keras.optimizers.Adam(config.learning_rate)
        self.optimizer.build(self.variables)
        self._step = tf.function(self._train_step)
        self._predict = tf.function(self._predict_fn)

    def trackables(self):
        return {"encoder": self.encoder.all_weights, "decoder": self.decoder.trainable_weights,
                "optimizer": self.optimizer}

    def set_learning_rate_epoch(self, epoch: float) -> Dict[str, float]:
        """Constant learning rate (Adam)."""
        return {"orderfree/learning_rate": self.config.learning_rate}

    def _encode(self, images):
        import tensorflow as tf
        features, cnn_logits = self.encoder(images)
        shape = tf.shape(features)
        return tf.reshape(features, [shape[0], -1, self.config.orderfree_channels]), cnn_logits

    def _train_step(self, images, labels):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            features, cnn_logits = self._encode(images)
            cnn_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=cnn_logits))
            rnn_loss, _ = self.decoder.order_free_loss(features, tf.sigmoid(cnn_logits), labels)
            total = rnn_loss + self.config.orderfree_lambda_cnn * cnn_loss
        grads = tape.gradient(total, self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return {"orderfree/total": total, "orderfree/rnn_ce": rnn_loss, "orderfree/cnn_bce": cnn_loss}

    def train_step(self, batch, step):
        import tensorflow as tf
        images, labels = batch
        return self._step(tf.constant(images, tf.float32), tf.constant(labels, tf.float32))

    def _predict_fn(self, images):
        import tensorflow as tf
        features, cnn_logits = self._encode(images)
        predicted, _, _ = self.decoder.decode(features, tf.sigmoid(cnn_logits))
        return predicted, tf.sigmoid(cnn_logits)

    def predict(self, images: np.ndarray, batch: int = 500) -> Tuple[np.ndarray, np.ndarray]:
        """Predictions for ``[N, S, S, 1]`` images in [0, 1].

        Returns:
            ``(rnn multi-hot [N, L] float32, cnn label confidences [N, L] in [0, 1])``.
        """
        import tensorflow as tf
        self.encoder.eval()
        try:
            parts = [self._predict(tf.constant(images[i:i + batch], tf.float32)) for i in range(0, len(images), batch)]
        finally:
            self.encoder.train()
        return (np.concatenate([p[0].numpy() for p in parts]), np.concatenate([p[1].numpy() for p in parts]))

    def sample_grid(self, batch):
        """Up to 8 images with label strips (top: truth, bottom: RNN prediction)."""
        from other_models.c2ae import label_strip
        images, labels = batch
        images, labels = np.asarray(images[:8]), np.asarray(labels[:8])
        predicted, _ = self.predict(images)
        side = images.shape[1]
        return sibling.images_grid([list(images), [label_strip(t, p, side) for t, p in zip(labels, predicted)]])


# ---------------------------------------------------------------------------------------------- CLI
_FLAGS = {
    "orderfree_channels": ("integer", "Channels C of the CNN feature map."),
    "orderfree_hidden": ("integer", "LSTM hidden size."),
    "orderfree_embed": ("integer", "Label-embedding size."),
    "orderfree_attention": ("integer", "Attention MLP size."),
    "orderfree_lambda_cnn": ("float", "Weight of the CNN head's BCE loss."),
    "orderfree_train_images": ("integer", "Training composites (from MNIST train digits)."),
    "orderfree_test_images": ("integer", "Test composites (from MNIST test digits)."),
}


def define_flags(flag_values=flags.FLAGS) -> None:
    """Define the model's flags (config fields, ``--mnist_path``, common trainer flags); idempotent."""
    sibling.define_model_flags(_FLAGS, flag_values, extra=[
        ("float", "learning_rate", "Learning rate. Unset: the model's config default."),
        ("string", "mnist_path", "MNIST pickle (mnist.pkl.gz), e.g. ../shared/data/digits/mnist.pkl.gz.")])


def load_data(config: OrderFreeRNNConfig, mnist_path: str):
    """Train / test composites (MNIST train / test digits; seeds ``seed``, ``seed + 1``).

    Raises:
        InputError: missing ``--mnist_path``.
    """
    from ganimation_tl.datasets.multilabel_digits import load_multilabel_digits

    if not mnist_path:
        raise InputError("--mnist_path is required (the MNIST pickle, e.g. ../shared/data/digits/mnist.pkl.gz)")
    train = load_multilabel_digits(mnist_path, "train", config.orderfree_train_images, seed=config.seed,
                                   image_size=config.image_size)
    test = load_multilabel_digits(mnist_path, "test", config.orderfree_test_images, seed=config.seed + 1,
                                  image_size=config.image_size)
    return train, test


def train(flag_values=flags.FLAGS) -> Dict[str, float]:
    """Train from parsed flags; returns the last logged metrics.

    Raises:
        InputError: invalid settings or missing data.
    """
    config = sibling.config_or_input_error(OrderFreeRNNConfig, flag_values)
    train_set, _ = load_data(config, flag_values.mnist_path)
    model = OrderFreeRNN(config, num_labels=train_set.labels.shape[1])
    images, labels = train_set.images, train_set.labels
    steps = len(images) // config.batch_size

    def make_dataset(epoch: int, skip: int) -> Iterator:
        order = np.random.default_rng([config.seed, epoch]).permutation(len(images))
        for b in range(skip, steps):
            index = order[b * config.batch_size:(b + 1) * config.batch_size]
            yield images[index], labels[index]

    return sibling.run_trainer(MODEL_NAME, model, make_dataset, steps_per_epoch=steps, epochs=config.epochs,
                               flag_values=flag_values, config=config,
                               data_description="%d MNIST 2x2 multi-label composites (%dpx)"
                               % (len(images), config.image_size), extra={"mnist_path": flag_values.mnist_path})


def restore(workdir: str, model: OrderFreeRNN) -> str:
    """Restore the newest checkpoint of ``workdir`` into ``model``; returns its path.

    Raises:
        InputError: no checkpoint.
    """
    from ganimation_tl.sibling import restore_latest
    return restore_latest(model, workdir)


registry.register(registry.ModelEntry(
    name=MODEL_NAME,
    summary="Order-free RNN with visual attention (Chen et al., AAAI 2018): multi-label CNN-LSTM",
    define_flags=define_flags,
    train=train,
))
