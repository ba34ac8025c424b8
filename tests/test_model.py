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


def test_critic_au_warmup_trains_only_the_critic_au_head_first(small_config):
    import dataclasses
    cfg = dataclasses.replace(small_config, critic_au_warmup_steps=30, n_critic=1, learning_rate_d=1e-3)
    model = GANimation(cfg)
    images, aus, target = batch(cfg)
    b = {"images": images, "aus": aus, "target_aus": target}
    g0 = snapshot(model.generator.all_weights)
    critic_map = [w for w in model.critic.trainable_weights if "critic_map" in w.name]
    map0 = snapshot(critic_map)
    first = model.train_step(b, 0)
    assert set(first) == {"critic/au", "critic/au_mae"}
    assert int(model.d_optimizer.iterations.numpy()) == 0     # the warm-up has its own Adam
    losses_seen = [float(first["critic/au"])] + [float(model.train_step(b, s)["critic/au"]) for s in range(1, 30)]
    # Only the critic's AU regression learns (the batch's AU MSE falls); generator and WGAN map untouched.
    assert not any(changed(g0, model.generator.all_weights))
    assert not any(changed(map0, critic_map))
    assert losses_seen[-1] < 0.5 * losses_seen[0]
    # After the warm-up the normal schedule resumes (n_critic = 1: a generator step every iteration).
    after = model.train_step(b, 30)
    assert "generator/total" in after and "critic/adversarial" in after
    assert int(model.d_optimizer.iterations.numpy()) == 1 and int(model.au_optimizer.iterations.numpy()) == 30
    assert any(changed(g0, model.generator.all_weights))
    with pytest.raises(ValueError, match="critic_au_warmup_steps"):
        GANimationConfig(critic_au_warmup_steps=-1)


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
    assert [monitor.update(0.995, s) for s in range(2)] == [None, None]
    warning = monitor.update(0.995, 2)
    assert "saturated" in warning and "0.995 > 0.99 for 3 generator steps" in warning and "under 1%" in warning
    # Local edits that work keep mean(A) near 0.97 at 64 px (docs/synthetic_eval.md): no warning.
    assert [monitor.update(0.969, s) for s in range(3, 9)] == [None] * 6
    assert monitor.update(0.5, 9) is None
    assert [monitor.update(0.01, s) is not None for s in range(3)] == [False, False, True]


def _sgd_twins(cfg_a, cfg_b, seed=3):
    """Two models with identical random weights and plain SGD (Adam would hide a gradient scale error)."""
    models = [GANimation(cfg_a), GANimation(cfg_b)]
    rng = np.random.default_rng(seed)
    a_vars = list(models[0].generator.all_weights) + list(models[0].critic.all_weights)
    b_vars = list(models[1].generator.all_weights) + list(models[1].critic.all_weights)
    for a, b in zip(a_vars, b_vars):
        value = a.numpy() + rng.normal(0, 0.05, a.shape).astype(np.float32)
        a.assign(value)
        b.assign(value)
    for m in models:
        m.g_optimizer, m.d_optimizer = tf.keras.optimizers.SGD(0.01), tf.keras.optimizers.SGD(0.01)
        m.g_optimizer.build(m.generator.trainable_weights)
        m.d_optimizer.build(m.critic.trainable_weights)
    return models, a_vars, b_vars


def test_micro_batches_give_the_same_update_as_the_whole_batch(small_config):
    import dataclasses
    import itertools
    cfg = dataclasses.replace(small_config, batch_size=5)
    (whole, chunked), a_vars, b_vars = _sgd_twins(cfg, dataclasses.replace(cfg, micro_batch_size=2))
    initial = [v.numpy().copy() for v in a_vars]
    rng = np.random.default_rng(0)
    s = cfg.image_size
    images = tf.constant(rng.uniform(-1, 1, (5, s, s, 3)), tf.float32)
    aus, target = (tf.constant(rng.uniform(0, 1, (5, 17)), tf.float32) for _ in range(2))
    alpha = tf.constant(rng.uniform(0, 1, (5, 1, 1, 1)), tf.float32)
    assert [int(t[0][0].shape[0]) for t in chunked._chunks((images,))] == [2, 2, 1]
    outs = [(m.critic_step(images, aus, target, alpha), m.generator_step(images, aus, target))
            for m in (whole, chunked)]
    for key in itertools.chain(outs[0][0], outs[0][1]):
        one = float(outs[0][0].get(key, outs[0][1].get(key)))
        two = float(outs[1][0].get(key, outs[1][1].get(key)))
        assert two == pytest.approx(one, rel=1e-4, abs=1e-5), key
    moved = max(float(np.max(np.abs(a.numpy() - i))) for a, i in zip(a_vars, initial))
    diff = max(float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in zip(a_vars, b_vars))
    assert moved > 1e-3
    assert diff < 1e-4 * moved + 1e-6


def test_fused_step_equals_generator_step_then_critic_step_on_its_fakes(small_config):
    import dataclasses
    (fused, separate), a_vars, b_vars = _sgd_twins(small_config, dataclasses.replace(small_config))
    images, aus, target = batch(small_config)
    alpha = tf.constant(np.random.default_rng(1).uniform(0, 1, (4, 1, 1, 1)), tf.float32)
    out = fused.train_step({"images": images, "aus": aus, "target_aus": target, "gp_alpha": alpha}, step=0)
    assert {"generator/total", "critic/total"} <= set(out)
    fakes = separate.edit(images, target)[0]          # the generator before its update
    g = separate.generator_step(images, aus, target)
    c = separate._critic_step(images, aus, target, alpha, fake_images=fakes)
    assert float(out["generator/total"]) == pytest.approx(float(g["generator/total"]), rel=1e-5)
    assert float(out["critic/total"]) == pytest.approx(float(c["critic/total"]), rel=1e-4)
    assert max(float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in zip(a_vars, b_vars)) < 1e-5
    # The fused iteration ran one generator forward fewer: the critic's fake images came from the
    # generator *before* its update (the critic loss differs if the updated generator is used).
    updated = separate.edit(images, target)[0]
    assert float(np.max(np.abs(updated.numpy() - fakes.numpy()))) > 1e-4


def test_joint_critic_forward_gives_the_two_call_losses_and_update(small_config):
    import dataclasses
    (joint, two_calls), a_vars, b_vars = _sgd_twins(
        dataclasses.replace(small_config, critic_joint_forward=True),
        dataclasses.replace(small_config, critic_joint_forward=False))
    images, aus, target = batch(small_config)
    alpha = tf.constant(np.random.default_rng(2).uniform(0, 1, (4, 1, 1, 1)), tf.float32)
    initial = [v.numpy().copy() for v in a_vars]
    out = [m.critic_step(images, aus, target, alpha) for m in (joint, two_calls)]
    for key in out[1]:
        assert float(out[0][key]) == pytest.approx(float(out[1][key]), rel=1e-4, abs=1e-6), key
    moved = max(float(np.max(np.abs(a.numpy() - i))) for a, i in zip(a_vars, initial))
    diff = max(float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in zip(a_vars, b_vars))
    assert moved > 1e-3 and diff < 1e-4 * moved + 1e-6


def test_fused_adam_matches_keras_adam_and_restores_its_checkpoints(tmp_path):
    from ganimation_tl.optimizers import FusedAdam, make_adam
    rng = np.random.default_rng(0)
    init = [rng.normal(size=s).astype(np.float32) for s in [(3, 4), (5,), (2, 2, 3)]]
    grads = [[tf.constant(rng.normal(size=w.shape).astype(np.float32)) for w in init] for _ in range(6)]
    results = {}
    for fused in (False, True):
        variables = [tf.Variable(w) for w in init]
        opt = make_adam(1e-2, 0.5, 0.999, fused=fused)
        assert isinstance(opt, FusedAdam) == fused
        opt.build(variables)
        step = tf.function(lambda g, opt=opt, variables=variables: opt.apply_gradients(zip(g, variables)))
        for g in grads[:3]:
            step(g)
        if not fused:      # a Keras-Adam checkpoint taken mid-run ...
            tf.train.Checkpoint(opt=opt, w=variables).write(str(tmp_path / "keras"))
        for g in grads[3:]:
            step(g)
        results[fused] = [v.numpy() for v in variables] + [opt._momentums[0].numpy(), opt._velocities[1].numpy()]
    for a, b in zip(results[False], results[True]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert np.abs(results[True][0] - init[0]).max() > 0.01          # the weights moved
    # ... resumes with FusedAdam and ends where Keras Adam ended
    variables = [tf.Variable(w) for w in init]
    opt = FusedAdam(1e-2, beta_1=0.5, beta_2=0.999)
    opt.build(variables)
    tf.train.Checkpoint(opt=opt, w=variables).read(str(tmp_path / "keras")).assert_consumed()
    assert int(opt.iterations) == 3
    step = tf.function(lambda g: opt.apply_gradients(zip(g, variables)))
    for g in grads[3:]:
        step(g)
    for a, b in zip(results[False][:3], variables):
        np.testing.assert_allclose(b.numpy(), a, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="amsgrad"):
        FusedAdam(1e-3, amsgrad=True)
