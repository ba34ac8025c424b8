"""The GANimation model: hyper-parameters, networks, optimizers and the two training steps.

Source: Pumarola et al., "GANimation", ECCV 2018, sections 4-5; defaults as in
``../shared/docs/ganimation.md`` (official code and course slides). The training loop that calls
these steps (schedule, checkpoints, summaries) is ``ganimation_tl.trainer``.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from ganimation_tl import losses
from ganimation_tl.aus import NUM_AUS
from ganimation_tl.networks import build_critic, build_generator, compose, critic_output_size
from ganimation_tl.optimizers import make_adam

__all__ = ["GANimationConfig", "GANimation", "learning_rate_at"]


@dataclasses.dataclass(frozen=True)
class GANimationConfig:
    """GANimation hyper-parameters (all defaults from the paper / official code unless noted).

    Attributes:
        image_size: H = W of the face crops (128).
        num_aus: conditioning AUs (17 OpenFace intensities, in [0, 1]).
        g_conv_dim: generator's first-layer channels (64). g_repeat_num: residual blocks (6).
        d_conv_dim: critic's first-layer channels (64). d_repeat_num: stride-2 convs (6; the critic
            map is image_size / 2**d_repeat_num pixels wide).
        lambda_adv: weight of the WGAN terms (lambda_D_img = 1).
        lambda_au: AU regression weight on a plain mean over batch and AUs: 160, which equals the
            official 4000 (whose MSE is divided once more by the batch size) at batch 25.
        lambda_gp: gradient-penalty weight (10).
        lambda_cycle: cycle (identity) loss weight (10).
        lambda_attention: attention-mean weight (lambda_mask = 0.1).
        lambda_tv: attention total-variation weight (lambda_mask_smooth = 1e-5, on a sum).
        learning_rate_g / learning_rate_d: Adam rates (1e-4). beta1 (0.5), beta2 (0.999).
        n_critic: critic steps per generator step (5).
        batch_size: 25. epochs: 30. decay_epochs: the rate decays linearly to 0 over the last 10.
        target_noise: half-width of the U(-a, a) noise added to the target AUs (0.1).
        seed: seed for weight initialisation and data shuffling.
        micro_batch_size: 0 (default) runs the generator step on the whole (per-replica) batch; a
            positive m runs it in chunks of m faces and sums their gradients, which gives the same
            update (every loss term is per-sample: instance norm, means weighted by chunk share, the
            TV sum summed) with the activations of only m faces alive at a time: the generator step
            is the memory peak of training (at batch 25 and m = 5: 2.8 GB instead of 6.1 GB for
            11% more time). The critic step always takes the whole batch. A memory lever (issue 5),
            not from the paper.
        fuse_generator_forward: True (default): on generator iterations run the generator step first
            and let the critic step reuse its fake images, saving one generator forward per
            ``n_critic`` iterations; the generator then sees the critic after its ``n_critic``
            updates since the last generator step, as in WGAN-GP's Algorithm 1 (Gulrajani et al.
            2017). False: critic step first, then generator step (official GANimation order).
        critic_au_warmup_steps: 0 (default, the paper). A positive N makes the first N iterations
            train the critic on its AU regression loss alone (``lambda_au * L_y`` on real faces, no
            WGAN term, no generator step), so that the generator's AU loss gets a useful gradient
            from its first step. A budget lever for short CPU runs (issue 3), not from the paper:
            measured at 64 px on synthetic faces, the critic's AU head needs ~2000 such steps
            (0.025 s each) to reach a per-AU correlation of ~0.5 with the labels.
        critic_joint_forward: True (default): the critic step scores real and fake images in one critic call
            on their concatenation ``[2B, H, W, 3]`` (the critic has no normalisation, so each sample's scores
            are unchanged): one weight-gradient contribution instead of two, and larger convolutions. False:
            two calls, as the official code. Same losses up to float rounding. A speed and memory lever
            (issue 5), not from the paper.
        fused_adam: True (default): Adam updates run TensorFlow's fused in-place kernel
            (:class:`ganimation_tl.optimizers.FusedAdam`, the same update as Keras' Adam without its per-op
            temporaries); False: Keras' ``Adam``. Checkpoints are interchangeable.
    """

    image_size: int = 128
    num_aus: int = NUM_AUS
    g_conv_dim: int = 64
    g_repeat_num: int = 6
    d_conv_dim: int = 64
    d_repeat_num: int = 6
    lambda_adv: float = 1.0
    lambda_au: float = 160.0
    lambda_gp: float = 10.0
    lambda_cycle: float = 10.0
    lambda_attention: float = 0.1
    lambda_tv: float = 1e-5
    learning_rate_g: float = 1e-4
    learning_rate_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int = 5
    batch_size: int = 25
    epochs: int = 30
    decay_epochs: int = 10
    target_noise: float = 0.1
    seed: int = 0
    micro_batch_size: int = 0
    fuse_generator_forward: bool = True
    critic_au_warmup_steps: int = 0
    critic_joint_forward: bool = True
    fused_adam: bool = True

    def __post_init__(self):
        if self.image_size % 4:
            raise ValueError("image_size must be a multiple of 4, got %d" % self.image_size)
        critic_output_size(self.image_size, self.d_repeat_num)
        for name in ("num_aus", "g_conv_dim", "d_conv_dim", "d_repeat_num", "n_critic", "batch_size", "epochs"):
            if getattr(self, name) <= 0:
                raise ValueError("%s must be positive, got %r" % (name, getattr(self, name)))
        if self.critic_au_warmup_steps < 0:
            raise ValueError("critic_au_warmup_steps must be >= 0, got %r" % self.critic_au_warmup_steps)
        if self.micro_batch_size < 0:
            raise ValueError("micro_batch_size must be >= 0 (0: whole batch), got %r" % self.micro_batch_size)
        if not 0 <= self.decay_epochs <= self.epochs:
            raise ValueError("decay_epochs must be in [0, epochs], got %r" % self.decay_epochs)

    def to_json(self) -> str:
        """The config as indented JSON (the ``config`` field of a workdir's ``config.json``)."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> "GANimationConfig":
        """Build from a dict, ignoring unknown keys (configs written by later versions still load)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def learning_rate_at(base_rate: float, epoch: float, epochs: int, decay_epochs: int) -> float:
    """Learning rate at a (fractional) epoch: ``base_rate`` until ``epochs - decay_epochs``, then a
    linear decay reaching 0 at ``epochs`` (paper section 5; the slides decay per whole epoch to 1e-5).
    """
    if decay_epochs <= 0:
        return float(base_rate)
    start = epochs - decay_epochs
    if epoch <= start:
        return float(base_rate)
    return float(base_rate) * max(0.0, (epochs - epoch) / decay_epochs)


class AttentionMonitor:
    """Warns when the mean attention mask stays above ``high`` or below ``low`` for ``patience``
    consecutive generator steps.

    A mask near 1 means the generator copies its input and edits nothing, the failure GANimation
    users report most (official issue tracker); near 0 means it repaints the whole face. The
    author's advice is to keep mean(A) near 0.5 by tuning only lambda_attention (lambda_mask): its
    penalty on mean(A) pushes A towards 0, so raise it when A saturates at 1 and lower it when A
    collapses to 0.

    ``high`` is 0.99 (it was 0.95 until 2026-12-07). Expression edits are local, so a generator that
    edits well can keep mean(A) above 0.95. The 64-px CPU configuration's 7,500-iteration run passes
    every synthetic-face test with mean(A) 0.969 on its edits, and run B of ``docs/synthetic_eval.md``
    passes with 0.963. The copying failure (run A, the paper's learning rates) had 0.999.
    """

    def __init__(self, low: float = 0.05, high: float = 0.99, patience: int = 50):
        self.low, self.high, self.patience = low, high, max(1, int(patience))
        self.count = 0
        self.side = None

    def update(self, mean_attention: float, step: int) -> Optional[str]:
        """Record one generator step's mean attention (in [0, 1]); return a warning every ``patience``
        consecutive saturated steps on the same side, else None."""
        side = "high" if mean_attention > self.high else "low" if mean_attention < self.low else None
        self.count = self.count + 1 if side is not None and side == self.side else (1 if side else 0)
        self.side = side
        if side is None or self.count % self.patience:
            return None
        if side == "high":
            return ("attention mask saturated: mean attention %.3f > %.2f for %d generator steps (step %d); "
                    "the generator is copying its input (it repaints under %.0f%% of each image). Usual causes: "
                    "wrong or inconsistent AU labels; else raise --lambda_attention (its penalty on mean(A) pushes "
                    "A down)."
                    % (mean_attention, self.high, self.count, step, 100 * (1 - self.high)))
        return ("attention mask collapsed: mean attention %.3f < %.2f for %d generator steps (step %d); the "
                "generator repaints the whole face. Lower --lambda_attention."
                % (mean_attention, self.low, self.count, step))


class GANimation:
    """Generator, critic and their Adam optimizers, with ``critic_step`` / ``generator_step``.

    Both steps take ``real_images`` float32 ``[B, H, W, 3]`` in [-1, 1] (NHWC, RGB),
    ``source_aus`` (y_o) float32 ``[B, 17]`` in [0, 1] and ``target_aus`` (y_f) float32 ``[B, 17]``,
    and return a dict of scalar losses. The trainer calls one generator step after every
    ``n_critic`` critic steps (:meth:`train_step`).

    Under a ``tf.distribute`` strategy (``strategy``) the networks and optimizers are created in its
    scope (mirrored variables), the steps run once per replica through ``strategy.run`` on that
    replica's share of the batch, and every loss term is weighted so that the replicas' sum equals
    the single-device value on the whole (global) batch: the means (WGAN terms, gradient penalty,
    AU MSE, cycle L1, attention mean, and the logged AU MAE / mean attention) are weighted by
    ``local batch / global batch``, the total variation, a sum over the batch in the paper, is left
    unweighted. The optimizers sum the replicas' gradients (Keras all-reduce), so one distributed
    step applies the gradient of the global-batch loss. The returned metrics are summed over the
    replicas, i.e. the global-batch values. Batches are then ``strategy.experimental_distribute_dataset``
    elements (per-replica dicts) or plain tensors (every replica then sees the whole batch; the
    weighting still gives the single-device values).

    Args:
        config: hyper-parameters.
        attention_patience: generator steps of saturated attention before :meth:`check_health` warns.
        build_optimizers: False for inference only (no Adam state; the training steps then fail).
        strategy: a ``tf.distribute.Strategy`` (``ganimation_tl.distribute.make_strategy``); default
            ``tf.distribute.get_strategy()``, the single-device default strategy.

    Source: paper section 4.2 (losses), section 5 (optimisation); loss scaling as in the TF guide
    "Custom training with tf.distribute.Strategy" (``tf.nn.compute_average_loss``).
    """

    def __init__(self, config: GANimationConfig, attention_patience: int = 50, build_optimizers: bool = True,
                 strategy=None):
        self.config = config
        self.strategy = strategy if strategy is not None else tf.distribute.get_strategy()
        self.attention_monitor = AttentionMonitor(patience=attention_patience)
        with self.strategy.scope():
            self._build(build_optimizers)
        self.critic_step = tf.function(self._distributed_critic_step)
        self.generator_step = tf.function(self._distributed_generator_step)
        self.fused_step = tf.function(self._distributed_fused_step)
        self.critic_au_step = tf.function(self._distributed_critic_au_step)
        self.edit = tf.function(self._edit)
        self.estimate_aus = tf.function(self._estimate_aus)

    def _build(self, build_optimizers: bool) -> None:
        config = self.config
        tf.random.set_seed(config.seed)
        self.generator = build_generator(config.image_size, config.num_aus, config.g_conv_dim,
                                         config.g_repeat_num, name="G")
        self.critic = build_critic(config.image_size, config.num_aus, config.d_conv_dim,
                                   config.d_repeat_num, name="D")
        self.generator.train()
        self.critic.train()
        self.g_optimizer = self.d_optimizer = self.au_optimizer = None
        if build_optimizers:
            # Inference skips them: their Adam slots take ~430 MB at 128 px.
            self.g_optimizer = make_adam(config.learning_rate_g, config.beta1, config.beta2, config.fused_adam)
            self.d_optimizer = make_adam(config.learning_rate_d, config.beta1, config.beta2, config.fused_adam)
            # Keras 3 creates slots lazily; building them now avoids a retrace inside tf.function.
            self.g_optimizer.build(self.generator.trainable_weights)
            # Under a strategy this must happen inside its scope (toolchain.md section 1.4).
            self.d_optimizer.build(self.critic.trainable_weights)
            # The warm-up has its own Adam: sharing the critic's would start the WGAN map's slots at
            # zero under an advanced step count (bias correction off), a ~16x too large first step.
            self.au_optimizer = None
            if config.critic_au_warmup_steps > 0:
                self.au_optimizer = make_adam(config.learning_rate_d, config.beta1, config.beta2, config.fused_adam)
                self.au_optimizer.build(self.critic.trainable_weights)

    # ------------------------------------------------------------------ inference
    @property
    def image_size(self) -> int:
        """Side S of the square face crops the networks take."""
        return self.config.image_size

    def _edit(self, images, target_aus):
        color_mask, attention_mask = self.generator([images, target_aus])
        return compose(images, color_mask, attention_mask), attention_mask, color_mask

    def _estimate_aus(self, images):
        return self.critic(images)[1]

    # ------------------------------------------------------------------ training steps
    def _replica_weight(self, images):
        """``local batch / global batch`` for this replica, or None on a single replica (no-op)."""
        if self.strategy.num_replicas_in_sync == 1:
            return None
        local = tf.cast(tf.shape(images)[0], tf.float32)
        total = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, local)
        return local / total

    @staticmethod
    def _weighted(value, weight):
        return value if weight is None else value * weight

    def _reduce(self, per_replica: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """Sum the replicas' (already weighted) metrics: the global-batch values."""
        if self.strategy.num_replicas_in_sync == 1 and not isinstance(
                next(iter(per_replica.values())), tf.distribute.DistributedValues):
            return per_replica
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

    def _distributed_critic_step(self, real_images, source_aus, target_aus, gp_alpha=None):
        args = (real_images, source_aus, target_aus) + (() if gp_alpha is None else (gp_alpha,))
        return self._reduce(self.strategy.run(self._critic_step, args=args))

    def _distributed_generator_step(self, real_images, source_aus, target_aus):
        return self._reduce(self.strategy.run(self._generator_step, args=(real_images, source_aus, target_aus)))

    def _distributed_fused_step(self, real_images, source_aus, target_aus, gp_alpha=None):
        args = (real_images, source_aus, target_aus) + (() if gp_alpha is None else (gp_alpha,))
        return self._reduce(self.strategy.run(self._fused_step, args=args))

    def _distributed_critic_au_step(self, real_images, source_aus):
        return self._reduce(self.strategy.run(self._critic_au_step, args=(real_images, source_aus)))

    def _chunks(self, tensors):
        """Split this replica's batch for micro-batching: a list of ``(tensors_i, share_i)`` with
        ``share_i = len_i / B`` (None when the batch is not split). Needs a static batch size."""
        m = self.config.micro_batch_size
        b = tensors[0].shape[0]
        if not m or b is None or m >= b:
            return [(tensors, None)]
        sizes = [m] * (b // m) + ([b % m] if b % m else [])
        parts = [tf.split(t, sizes) if t is not None else [None] * len(sizes) for t in tensors]
        return [(tuple(p[i] for p in parts), sizes[i] / b) for i in range(len(sizes))]

    @staticmethod
    def _after(tensors, dependencies):
        """``tensors`` gated on ``dependencies`` (so the next chunk starts after this one's gradients
        and the runtime frees this chunk's activations first)."""
        if not dependencies:
            return tensors
        with tf.control_dependencies(dependencies):
            return tuple(None if t is None else tf.identity(t) for t in tensors)

    @staticmethod
    def _share(weight, share):
        if share is None:
            return weight
        return share if weight is None else weight * share

    @staticmethod
    def _accumulate(total, grads):
        return list(grads) if total is None else [a + g for a, g in zip(total, grads)]

    def _critic_step(self, real_images, source_aus, target_aus, gp_alpha=None, fake_images=None):
        """One critic update on this replica's batch; ``gp_alpha`` ``[B, 1, 1, 1]`` in [0, 1] fixes the
        gradient-penalty interpolation weights (default: one U(0, 1) draw per sample);
        ``fake_images`` ``[B, H, W, 3]`` (the generator step's, in the fused step) skips the
        generator forward."""
        c = self.config
        w = self._replica_weight(real_images)
        variables = self.critic.trainable_weights
        grads, metrics = None, {}
        # Whole batch: micro-batches do not lower the critic step's peak (weights, Adam slots) and
        # cost 1.6x its time (measured, bench/bench_speed.py).
        for chunk, share in [((real_images, source_aus, target_aus, gp_alpha, fake_images), None)]:
            real, source, target, alpha, fake = self._after(chunk, grads)
            weight = self._share(w, share)
            if fake is None:
                fake = self._edit(real, target)[0]
            fake = tf.stop_gradient(fake)
            with tf.GradientTape() as tape:
                if c.critic_joint_forward:
                    maps, aus_pred = self.critic(tf.concat([real, fake], axis=0))
                    real_map, fake_map = tf.split(maps, 2, axis=0)
                    real_aus_pred = tf.split(aus_pred, 2, axis=0)[0]
                else:
                    real_map, real_aus_pred = self.critic(real)
                    fake_map, _ = self.critic(fake)
                adversarial = self._weighted(losses.wgan_critic_loss(real_map, fake_map), weight)
                au = self._weighted(losses.au_regression_loss(real_aus_pred, source), weight)
                gp = self._weighted(losses.gradient_penalty(lambda x: self.critic(x)[0], real, fake, alpha=alpha),
                                    weight)
                total = c.lambda_adv * adversarial + c.lambda_au * au + c.lambda_gp * gp
            grads = self._accumulate(grads, tape.gradient(total, variables))
            for key, value in (("critic/total", total), ("critic/adversarial", adversarial), ("critic/au", au),
                               ("critic/gradient_penalty", gp),
                               ("critic/au_mae", self._weighted(tf.reduce_mean(tf.abs(real_aus_pred - source)),
                                                                weight))):
                metrics[key] = metrics[key] + value if key in metrics else value
        self.d_optimizer.apply_gradients(zip(grads, variables))
        return metrics

    def _critic_au_step(self, real_images, source_aus):
        """One critic update on the AU regression loss alone (``lambda_au * L_y(D_y(I_yo), y_o)``,
        paper eq. 5 without the WGAN and gradient-penalty terms) with its own Adam (``au_optimizer``):
        the warm-up of ``critic_au_warmup_steps``. Returns ``critic/au`` and ``critic/au_mae``."""
        c = self.config
        weight = self._replica_weight(real_images)
        variables = self.critic.trainable_weights
        with tf.GradientTape() as tape:
            _, predicted = self.critic(real_images)
            au = self._weighted(losses.au_regression_loss(predicted, source_aus), weight)
            total = c.lambda_au * au
        # The critic map's last conv gets no gradient from this loss: pass zeros (no Keras warning).
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(tape.gradient(total, variables), variables)]
        self.au_optimizer.apply_gradients(zip(grads, variables))
        return {"critic/au": au,
                "critic/au_mae": self._weighted(tf.reduce_mean(tf.abs(predicted - source_aus)), weight)}

    def _generator_step(self, real_images, source_aus, target_aus, return_fakes=False):
        """One generator update on this replica's batch (paper eq. 6 with the critic fixed). With
        ``return_fakes`` the metrics dict also holds ``"fakes"``: the (pre-update) generator's
        edited images ``[B, H, W, 3]``, for the fused step's critic update, released only after the
        generator's gradients exist: otherwise the executor starts the critic step while the generator's
        activations are still alive (measured at 128 px, batch 4: the fused step's peak falls from
        +1.34 GB to +0.84 GB above the weights)."""
        c = self.config
        w = self._replica_weight(real_images)
        variables = self.generator.trainable_weights
        grads, metrics, fakes = None, {}, []
        for chunk, share in self._chunks((real_images, source_aus, target_aus)):
            real, source, target = self._after(chunk, grads)
            weight = self._share(w, share)
            with tf.GradientTape() as tape:
                fake_images, fake_attention, _ = self._edit(real, target)
                fake_map, fake_aus_pred = self.critic(fake_images)
                reconstructed, rec_attention, _ = self._edit(fake_images, source)
                adversarial = self._weighted(losses.wgan_generator_loss(fake_map), weight)
                au = self._weighted(losses.au_regression_loss(fake_aus_pred, target), weight)
                cycle = self._weighted(losses.cycle_loss(reconstructed, real), weight)
                attention = self._weighted(
                    losses.attention_mean_loss(fake_attention) + losses.attention_mean_loss(rec_attention), weight)
                # A sum over the batch (paper eq. 4): chunks' and replicas' sums add up to the global sum.
                tv = losses.total_variation_loss(fake_attention) + losses.total_variation_loss(rec_attention)
                total = (c.lambda_adv * adversarial + c.lambda_au * au + c.lambda_cycle * cycle
                         + c.lambda_attention * attention + c.lambda_tv * tv)
            grads = self._accumulate(grads, tape.gradient(total, variables))
            fakes.append(tf.stop_gradient(fake_images))
            for key, value in (("generator/total", total), ("generator/adversarial", adversarial),
                               ("generator/au", au), ("generator/cycle", cycle),
                               ("generator/attention", attention), ("generator/attention_tv", tv),
                               ("generator/mean_attention",
                                self._weighted(tf.reduce_mean(fake_attention), weight))):
                metrics[key] = metrics[key] + value if key in metrics else value
        self.g_optimizer.apply_gradients(zip(grads, variables))
        if return_fakes:
            fakes = fakes[0] if len(fakes) == 1 else tf.concat(fakes, axis=0)
            metrics["fakes"], = self._after((fakes,), grads)
        return metrics

    def _fused_step(self, real_images, source_aus, target_aus, gp_alpha=None):
        """A generator step, then a critic step on the generator step's fake images (one generator
        forward fewer than the two steps run separately)."""
        metrics = self._generator_step(real_images, source_aus, target_aus, return_fakes=True)
        fakes = metrics.pop("fakes")
        metrics.update(self._critic_step(real_images, source_aus, target_aus, gp_alpha, fake_images=fakes))
        return metrics

    # ------------------------------------------------------------------ trainer interface
    def trackables(self) -> Dict[str, object]:
        """What a checkpoint holds: both networks' variables (``all_weights``), both optimizers and, with
        ``critic_au_warmup_steps``, the warm-up's optimizer."""
        return {
            "generator_weights": list(self.generator.all_weights),
            "critic_weights": list(self.critic.all_weights),
            "generator_optimizer": self.g_optimizer,
            "critic_optimizer": self.d_optimizer,
            **({"critic_au_warmup_optimizer": self.au_optimizer} if self.au_optimizer is not None else {}),
        }

    def set_learning_rate_epoch(self, epoch: float) -> Dict[str, float]:
        """Set both optimizers' rates for a fractional epoch (see :func:`learning_rate_at`)."""
        c = self.config
        lr_g = learning_rate_at(c.learning_rate_g, epoch, c.epochs, c.decay_epochs)
        lr_d = learning_rate_at(c.learning_rate_d, epoch, c.epochs, c.decay_epochs)
        self.g_optimizer.learning_rate.assign(lr_g)
        self.d_optimizer.learning_rate.assign(lr_d)
        return {"generator/learning_rate": lr_g, "critic/learning_rate": lr_d}

    def train_step(self, batch: Dict[str, tf.Tensor], step: int) -> Dict[str, tf.Tensor]:
        """One iteration: a critic step, plus a generator step when ``step % n_critic == 0``; during the
        first ``critic_au_warmup_steps`` iterations only the critic's AU warm-up step.

        With ``fuse_generator_forward`` (default) a generator iteration runs :meth:`fused_step`
        (generator update, then the critic update on its fake images); otherwise the critic step
        and then the generator step (the official order).

        Args:
            batch: ``images`` [B,H,W,3] in [-1,1], ``aus`` [B,17] and ``target_aus`` [B,17] in [0,1];
                optionally ``gp_alpha`` [B,1,1,1] (fixed gradient-penalty interpolation weights). Under
                a strategy, plain tensors or per-replica values from a distributed dataset.
            step: 0-based iteration number (the trainer's step counter before this step).
        """
        if step < self.config.critic_au_warmup_steps:
            return dict(self.critic_au_step(batch["images"], batch["aus"]))
        args = (batch["images"], batch["aus"], batch["target_aus"])
        if batch.get("gp_alpha") is not None:
            args += (batch["gp_alpha"],)
        generator_turn = step % self.config.n_critic == 0
        if generator_turn and self.config.fuse_generator_forward:
            return dict(self.fused_step(*args))
        metrics = dict(self.critic_step(*args))
        if generator_turn:
            metrics.update(self.generator_step(*args[:3]))
        return metrics

    def check_health(self, metrics: Dict[str, float], step: int) -> Optional[str]:
        """A warning when the attention mask has saturated for many generator steps (see
        :class:`AttentionMonitor`), else None."""
        if "generator/mean_attention" not in metrics:
            return None
        return self.attention_monitor.update(metrics["generator/mean_attention"], step)

    def sample_grid(self, batch: Dict[str, tf.Tensor], max_rows: int = 4) -> np.ndarray:
        """Rows of ``input | edited | attention | colour | reconstruction`` as uint8 ``[R*H, 5*W, 3]``
        (of the first local replica's share when ``batch`` comes from a distributed dataset)."""
        from ganimation_tl.distribute import first_local_value

        batch = {k: first_local_value(v) for k, v in batch.items()}
        images = batch["images"][:max_rows]
        edited, attention, color = self.edit(images, batch["target_aus"][:max_rows])
        reconstructed, _, _ = self.edit(edited, batch["aus"][:max_rows])
        attention_rgb = tf.tile(attention * 2.0 - 1.0, [1, 1, 1, 3])
        panels = tf.concat([images, edited, attention_rgb, color, reconstructed], axis=2)  # [R,H,5W,3]
        grid = tf.reshape(panels, [-1, panels.shape[2], 3])
        return np.clip((grid.numpy() + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
