import numpy as np
import pytest
import tensorflow as tf

from ganimation_tl.model import AttentionMonitor, GANimation, GANimationConfig, learning_rate_at


def snapshot(weights):
    return [w.numpy().copy() for w in weights]


def changed(before, weights):
    return [not np.array_equal(b, w.numpy()) for b, w in zip(before, weights)]


def batch(cfg, seed=0):
    rng = np.random.default_rng(seed)
    s = cfg.image_size
    return (tf.constant(rng.uniform(-1, 1, (4, s, s, 3)), tf.float32),
            tf.constant(rng.uniform(0, 1, (4, 17)), tf.float32),
            tf.constant(rng.uniform(0, 1, (4, 17)), tf.float32))


def test_critic_step_changes_only_the_critic(small_config):
    model = GANimation(small_config)
    g0, d0 = snapshot(model.generator.all_weights), snapshot(model.critic.all_weights)
    out = model.critic_step(*batch(small_config))
    assert not any(changed(g0, model.generator.all_weights))
    assert all(changed(d0, model.critic.trainable_weights))
    assert set(out) >= {"critic/total", "critic/adversarial", "critic/au", "critic/gradient_penalty"}
    assert int(model.d_optimizer.iterations.numpy()) == 1 and int(model.g_optimizer.iterations.numpy()) == 0


def test_generator_step_changes_only_the_generator(small_config):
    model = GANimation(small_config)
    g0, d0 = snapshot(model.generator.all_weights), snapshot(model.critic.all_weights)
    out = model.generator_step(*batch(small_config))
    assert not any(changed(d0, model.critic.all_weights))
    assert all(changed(g0, model.generator.trainable_weights))
    assert 0 < float(out["generator/mean_attention"]) < 1
    assert np.isfinite([float(v) for v in out.values()]).all()


def test_train_step_runs_generator_every_n_critic(small_config):
    model = GANimation(small_config)
    images, aus, target = batch(small_config)
    b = {"images": images, "aus": aus, "target_aus": target}
    with_g = [("generator/total" in model.train_step(b, step)) for step in range(6)]
    assert with_g == [True, False, False, False, False, True]


def test_learning_rate_constant_then_linear_decay_to_zero():
    assert learning_rate_at(1e-4, 0, 30, 10) == 1e-4
    assert learning_rate_at(1e-4, 20, 30, 10) == 1e-4
    np.testing.assert_allclose(learning_rate_at(1e-4, 25, 30, 10), 5e-5)
    assert learning_rate_at(1e-4, 30, 30, 10) == 0.0
    assert learning_rate_at(1e-4, 29, 30, 0) == 1e-4


def test_config_validation_and_json_round_trip():
    with pytest.raises(ValueError, match="multiple of 2\\*\\*repeat_num"):
        GANimationConfig(image_size=32)
    with pytest.raises(ValueError, match="decay_epochs"):
        GANimationConfig(epochs=5, decay_epochs=10)
    cfg = GANimationConfig(lambda_au=3.0)
    import json
    assert GANimationConfig.from_dict(dict(json.loads(cfg.to_json()), unknown=1)) == cfg


def test_attention_monitor_warns_after_patience():
    monitor = AttentionMonitor(patience=3)
    assert [monitor.update(0.99, s) for s in range(2)] == [None, None]
    assert "saturated" in monitor.update(0.99, 2)
    assert monitor.update(0.5, 3) is None
    assert [monitor.update(0.01, s) is not None for s in range(3)] == [False, False, True]
