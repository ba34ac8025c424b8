"""``train.py --model=ganimation``: flags -> config -> data -> model -> trainer.

Registers the ``ganimation`` entry of :mod:`ganimation_tl.registry`. The flag names equal the
fields of :class:`ganimation_tl.model.GANimationConfig`; a flag left unset keeps the config default
(see ``configs/ganimation.cfg`` for every default and its source).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict

from absl import flags, logging

from ganimation_tl import registry
from ganimation_tl.errors import InputError
from ganimation_tl.flag_utils import config_from_flags, define_once

ARCHITECTURE_FIELDS = ("image_size", "num_aus", "g_conv_dim", "g_repeat_num", "d_conv_dim", "d_repeat_num")

_CONFIG_HELP = {
    "image_size": ("integer", "Side of the square face crops fed to the networks (paper: 128)."),
    "g_conv_dim": ("integer", "Generator first-layer channels (paper: 64)."),
    "g_repeat_num": ("integer", "Generator residual blocks (paper: 6)."),
    "d_conv_dim": ("integer", "Critic first-layer channels (paper: 64)."),
    "d_repeat_num": ("integer", "Critic stride-2 convolutions (paper: 6; image_size must be a multiple of 2**N)."),
    "lambda_adv": ("float", "Weight of the WGAN terms (official lambda_D_img: 1)."),
    "lambda_au": ("float", "AU regression weight on a plain mean (160 = official 4000 at batch 25)."),
    "lambda_gp": ("float", "Gradient-penalty weight (10)."),
    "lambda_cycle": ("float", "Cycle-consistency weight (10)."),
    "lambda_attention": ("float", "Attention-mask mean weight (official lambda_mask: 0.1)."),
    "lambda_tv": ("float", "Attention total-variation weight (official lambda_mask_smooth: 1e-5)."),
    "learning_rate_g": ("float", "Generator Adam learning rate (1e-4)."),
    "learning_rate_d": ("float", "Critic Adam learning rate (1e-4)."),
    "beta1": ("float", "Adam beta1 (0.5)."),
    "beta2": ("float", "Adam beta2 (0.999)."),
    "n_critic": ("integer", "Critic steps per generator step (5)."),
    "batch_size": ("integer", "Batch size (25)."),
    "epochs": ("integer", "Epochs (30)."),
    "decay_epochs": ("integer", "Final epochs over which the learning rate decays linearly to 0 (10)."),
    "target_noise": ("float", "Half-width of the uniform noise added to target AUs (0.1)."),
    "seed": ("integer", "Seed for weights, shuffling and target AUs (0)."),
    "micro_batch_size": ("integer", "Run the generator step in chunks of this many faces and sum the gradients: "
                         "the same update with less memory (0: whole batch)."),
    "fuse_generator_forward": ("bool", "On generator iterations, run the generator step first and reuse its "
                               "fake images in the critic step (one generator forward fewer; WGAN-GP order). "
                               "False: official order."),
    "critic_joint_forward": ("bool", "Critic step: score real and fake images in one critic call on their "
                             "concatenation (same losses; one weight-gradient contribution fewer). False: two "
                             "calls, as the official code."),
    "fused_adam": ("bool", "Adam updates with TensorFlow's fused in-place kernel (ResourceApplyAdam; the same "
                   "update as Keras Adam with fewer temporaries). False: Keras Adam."),
    "critic_au_warmup_steps": ("integer", "First iterations that train only the critic's AU head on real faces "
                               "(no WGAN term, no generator step): a short-budget lever, not the paper (0)."),
}


def define_flags(flag_values=flags.FLAGS) -> None:
    """Define GANimation's flags (config fields, data and trainer options); idempotent."""
    for name, (kind, text) in _CONFIG_HELP.items():
        define_once(kind, name, None, text + " Unset: the config default.", flag_values)
    define_once("string", "workdir", None, "Run folder (checkpoints, TensorBoard, samples). "
                "Default: runs/<model>. Re-running with the same workdir resumes.", flag_values)
    define_once("string", "au_csv", None, "AU labels: a CSV with a `file` column and OpenFace AUxx_r columns "
                "(0..5), or a folder of per-image OpenFace CSVs. Unset: generated synthetic faces.", flag_values)
    define_once("string", "image_dir", None, "Folder of the images named in --au_csv "
                "(default: <csv folder>/imgs if it exists, else the CSV's folder).", flag_values)
    define_once("integer", "synthetic_faces", 2000, "Without --au_csv: generated faces per epoch (rendered on the fly, "
                "exact AU labels; ganimation_tl.synthetic).", flag_values)
    define_once("integer", "synthetic_identities", 1000, "Without --au_csv: distinct generated identities.", flag_values)
    define_once("bool", "synthetic_frontal_only", False, "Without --au_csv: generate frontal faces only "
                "(else yaw/pitch/roll up to 30/15/15 degrees).", flag_values)
    define_once("integer", "decoded_cache_mb", 1024, "Keep decoded training images (or rendered synthetic faces) "
                "in memory up to this many MB, so epochs after the first skip decoding them (0: decode every "
                "time). 64 px: 12 KB per image; 128 px: 48 KB.", flag_values)
    define_once("float", "min_confidence", 0.0, "Skip OpenFace rows whose confidence is below this.", flag_values)
    define_once("integer", "max_steps", None, "Stop after this many iterations in total (default: all epochs).",
                flag_values)
    define_once("float", "max_minutes", None, "Stop after this many minutes of wall-clock time in this process "
                "(checked after each iteration; a checkpoint is written). Default: no time limit.", flag_values)
    define_once("integer", "log_every", 10, "Iterations between log lines and scalar summaries.", flag_values)
    define_once("integer", "image_every", 100, "Iterations between sample grids (0: never).", flag_values)
    define_once("integer", "checkpoint_every", 500, "Iterations between checkpoints (also at the end).",
                flag_values)
    define_once("integer", "keep_checkpoints", 3, "Checkpoints to keep.", flag_values)
    define_once("string", "strategy", "default", "Distribution: default (one device), mirrored (all local GPUs, "
                "or --devices; synchronous data parallelism) or multi_worker (MultiWorkerMirroredStrategy over the "
                "hosts in TF_CONFIG; run the same command on every host, worker 0 writes the workdir). "
                "--batch_size is the global batch, split over all replicas.", flag_values)
    define_once("string", "devices", None, "With --strategy=mirrored: comma-separated devices "
                "(e.g. /gpu:0,/gpu:1). Default: all local GPUs (else the CPU).", flag_values)
    define_once("bool", "bf16", None, "Train with oneDNN bfloat16 convolutions and matrix products (grappler's "
                "auto_mixed_precision_onednn_bfloat16 rewrite; float32 weights, optimizer state and losses). "
                "Unset (the default): on when training runs on a CPU with native bfloat16 (avx512_bf16 or "
                "amx_bf16) and no GPU is visible, where it is 0.6-0.75x the float32 time at the same quality "
                "(README 'Speed'); --nobf16 forces float32; --bf16 on a CPU without native bfloat16 is an "
                "error. GPUs ignore it.", flag_values)
    define_once("integer", "attention_patience", 50,
                "Warn when mean attention stays above 0.99 or below 0.05 for this many generator steps.", flag_values)


def check_workdir_config(workdir: str, config) -> None:
    """Refuse to resume a workdir trained with another architecture (names the differing fields).

    Raises:
        InputError: ``<workdir>/config.json`` is unreadable or its architecture differs.
    """
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f).get("config", {})
    except (OSError, ValueError) as error:
        raise InputError("cannot read %s: %s" % (path, error))
    current = dataclasses.asdict(config)
    diffs = ["%s=%s (this run: %s)" % (k, saved[k], current[k]) for k in ARCHITECTURE_FIELDS
             if k in saved and saved[k] != current[k]]
    if diffs:
        raise InputError("workdir %s was trained with %s; use another --workdir or the same settings"
                         % (workdir, ", ".join(diffs)))


def synthetic_source(config, flag_values=flags.FLAGS):
    """The embedded default data: ``--synthetic_faces`` generated faces, rendered on the fly.

    Returns:
        ``(indices [N], aus float32 [N, 17] in [0, 1], loader(index, size) -> uint8 [S, S, 3], description)``.

    Raises:
        InputError: a non-positive count.
    """
    import numpy as np
    from ganimation_tl.synthetic import SyntheticFaces

    count = flag_values.synthetic_faces
    if count is None or count <= 0:
        raise InputError("--synthetic_faces must be positive, got %r" % count)
    faces = SyntheticFaces(image_size=config.image_size, seed=config.seed,
                           num_identities=flag_values.synthetic_identities,
                           frontal_only=flag_values.synthetic_frontal_only)
    indices = np.arange(count, dtype=np.int64)
    aus = np.stack([faces.aus_of(int(i)) for i in indices])

    def loader(index, size):
        return faces.sample(int(index)).image

    return indices, aus, loader, "synthetic faces (%d per epoch, seed %d, %d identities%s)" % (
        count, config.seed, flag_values.synthetic_identities, ", frontal" if flag_values.synthetic_frontal_only else "")


def train(flag_values=flags.FLAGS) -> Dict[str, float]:
    """Train GANimation from parsed flags; returns the last logged metrics."""
    from ganimation_tl import distribute

    devices = [d.strip() for d in flag_values.devices.split(",") if d.strip()] if flag_values.devices else None
    # First of all: MultiWorkerMirroredStrategy must configure collective ops before the TensorFlow
    # context starts, which importing TensorLayer (below) already does.
    strategy = distribute.make_strategy(flag_values.strategy, devices)

    # Imported here so `train.py --help` and flag errors stay fast.
    from ganimation_tl.au_data import load_au_table
    from ganimation_tl.input_pipeline import DecodedImageCache, make_dataset, steps_per_epoch
    from ganimation_tl.model import GANimation, GANimationConfig
    from ganimation_tl.trainer import Trainer, TrainerOptions, write_json_atomic

    try:
        config = config_from_flags(GANimationConfig, flag_values)
    except ValueError as error:
        raise InputError("invalid GANimation settings: %s" % error)
    workdir = flag_values.workdir or os.path.join("runs", "ganimation")
    for name in ("max_steps", "log_every", "checkpoint_every", "keep_checkpoints"):
        value = flag_values[name].value
        if value is not None and value <= 0:
            raise InputError("--%s must be positive, got %d" % (name, value))
    if flag_values.max_minutes is not None and not flag_values.max_minutes > 0:
        raise InputError("--max_minutes must be positive, got %r" % flag_values.max_minutes)
    if flag_values.decoded_cache_mb is None or flag_values.decoded_cache_mb < 0:
        raise InputError("--decoded_cache_mb must be >= 0, got %r" % flag_values.decoded_cache_mb)
    from ganimation_tl.editing import cpu_supports_bfloat16, onednn_bfloat16
    from ganimation_tl.runtime import gpu_visible, resolve_bf16
    bfloat16 = resolve_bf16(flag_values.bf16, cpu_supports_bfloat16(), gpu_visible())
    replicas = strategy.num_replicas_in_sync
    if config.batch_size < replicas:
        raise InputError("--batch_size=%d is smaller than the %d replicas of --strategy=%s; every replica needs "
                         "at least one face" % (config.batch_size, replicas, flag_values.strategy))
    chief = distribute.is_chief(strategy)
    if flag_values.au_csv is None:
        if flag_values.image_dir is not None:
            raise InputError("--image_dir needs --au_csv (the AU labels of those images)")
        files, aus, loader, source = synthetic_source(config, flag_values)
    else:
        table = load_au_table(flag_values.au_csv, flag_values.image_dir, min_confidence=flag_values.min_confidence)
        files, aus, loader, source = list(table.files), table.aus, None, table.source
        for message in table.skipped:
            logging.warning("skipped: %s", message)

    loader = DecodedImageCache(loader, max_bytes=flag_values.decoded_cache_mb << 20)
    steps = steps_per_epoch(len(files), config.batch_size)
    check_workdir_config(workdir, config)
    os.makedirs(workdir, exist_ok=True)
    if chief:
        write_json_atomic(os.path.join(workdir, "config.json"), {
            "model": "ganimation", "config": dataclasses.asdict(config), "data": source, "num_faces": len(files),
            "precision": "bfloat16" if bfloat16 else "float32"})

    def dataset_for(epoch: int, skip_batches: int):
        return make_dataset(files, aus, image_size=config.image_size, batch_size=config.batch_size,
                            seed=config.seed, epoch=epoch, skip_batches=skip_batches,
                            target_noise=config.target_noise, loader=loader)

    model = GANimation(config, attention_patience=flag_values.attention_patience, strategy=strategy)
    options = TrainerOptions(workdir=workdir, epochs=config.epochs, steps_per_epoch=steps,
                             max_steps=flag_values.max_steps, max_minutes=flag_values.max_minutes,
                             log_every=flag_values.log_every,
                             image_every=flag_values.image_every, checkpoint_every=flag_values.checkpoint_every,
                             keep_checkpoints=flag_values.keep_checkpoints)
    logging.info("GANimation on %d faces from %s; %d steps per epoch, %d steps in this run; workdir %s; "
                 "strategy %s (%d replicas, %s); %s", len(files), source, steps, options.total_steps, workdir,
                 flag_values.strategy, replicas, "chief" if chief else "worker %d" % distribute.worker_index(strategy),
                 "bfloat16 convolutions (oneDNN; --nobf16 for float32)" if bfloat16 else "float32")
    with onednn_bfloat16(bfloat16):   # every step traced inside runs the bfloat16 rewrite
        metrics = Trainer(model, dataset_for, options, strategy=strategy).run()
    logging.info("decoded-image cache: %d of %d images (%.0f MB of %d MB), %d loads served from it, %d decoded",
                 len(loader), len(files), loader.bytes / 2.0 ** 20, flag_values.decoded_cache_mb, loader.hits,
                 loader.misses)
    return metrics


registry.register(registry.ModelEntry(
    name="ganimation",
    summary="GANimation (Pumarola et al., ECCV 2018): AU-conditioned facial expression editing",
    define_flags=define_flags,
    train=train,
    low_memory_on_cpu=True,   # peak within 1.2x of the PyTorch reference's on CPU (README "Speed")
))
