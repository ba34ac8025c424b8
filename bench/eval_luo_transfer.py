"""Evaluate ``--model=luo_transfer`` (Luo et al., NIPS 2017) against its baseline and ablations.

    python bench/eval_luo_transfer.py [--config=configs/luo_transfer_debug.cfg] [--ks=1,5] [--seeds=0]
                                      [--max_minutes=30]

For each seed: stage 1 (source pre-training on scikit-learn digits 0-4) runs once through the library's
:class:`LuoTransfer` and is shared by every variant; then, for k in ``--ks``, stage 2 runs from that encoder for
each variant: ``finetune`` (the baseline: pre-train on source, fine-tune on the k labelled MNIST images per
class), ``full`` (the paper's model), ``no_domain`` (alpha = 0) and ``no_semantic`` (beta = 0). Each reports the
5-way nearest-centroid accuracy on MNIST-test 5-9. Variants run in priority order (the baseline comparison first,
then the ablations); one that would start after ``--max_minutes`` is skipped and reported as such.

Checks (the issue): full > finetune at k = 1 and at k = 5; each ablation < full. Also printed (the spec's
stronger variants, informational): full >= finetune + 5 points at k = 1 and + 2 at k = 5; the unlabelled-target
entropy falls by >= 50% during stage 2; accuracy >= 40%.
Writes ``docs/results/luo_transfer.json`` atomically and prints its Markdown tables; ``--render=FILE.json`` only
prints the tables of an existing results file (docs/results/luo_transfer.md quotes them).

Model selection: ``--validation`` scores on MNIST's 'valid' split (digits 5-9) instead of the test split (the
training sets are unchanged); ``--set=field=value,...`` overrides config fields for every variant (recorded in the
JSON); ``--variants`` runs a subset (checks that need a missing variant print n/a).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from bench._common import config_overrides  # noqa: E402


def parse_config(path):
    from bench._common import model_flags
    from ganimation_tl import registry
    from ganimation_tl.sibling import config_or_input_error
    from other_models import luo_transfer as L
    registry.load_all()
    fv = model_flags(L.define_flags, path, model="luo_transfer")
    return config_or_input_error(L.LuoTransferConfig, fv), fv.mnist_path


def run_steps(model, data, config, steps, first_step, seed_offset=0):
    from other_models import luo_transfer as L
    done, epoch = 0, 0
    while done < steps:
        for batch in L.batches_for_epoch(data, config.batch_size, config.seed + seed_offset, epoch):
            model.train_step(batch, first_step + done)
            done += 1
            if done >= steps:
                break
        epoch += 1


def markdown_tables(results):
    """The check table and the per-run table of a results dict (as written to the JSON), as Markdown text, so
    that docs/results/luo_transfer.md quotes the JSON instead of hand-typed numbers."""
    lines = ["| check | measured | baseline / threshold | result | kind |", "|---|---|---|---|---|"]
    for name, c in results["checks"].items():
        fmt = (lambda x: "-" if x is None else "%.3f" % x) if "entropy" in name else \
            (lambda x: "-" if x is None else "%.1f%%" % (100 * x))
        lines.append("| %s | %s | %s | %s | %s |" % (name, fmt(c["value"]), fmt(c["baseline"]),
                                                    "n/a" if c["pass"] is None else ("PASS" if c["pass"] else "FAIL"),
                                                    "required" if c["required"] else "info"))
    lines += ["", "Wall clock: %s min; all required checks: %s" % (results.get("wall_clock_minutes"),
                                                                  "PASS" if results.get("all_required_pass") else "FAIL"),
              "", "| seed | k | variant | test accuracy | unlabelled entropy start -> end (nats) | seconds |",
              "|---|---|---|---|---|---|"]
    for r in results["runs"]:
        if "test_accuracy" not in r:
            lines.append("| %d | %d | %s | skipped | - | - |" % (r["seed"], r["k"], r["variant"]))
            continue
        lines.append("| %d | %d | %s | %.1f%% | %.3f -> %.3f | %.0f |" % (
            r["seed"], r["k"], r["variant"], 100 * r["test_accuracy"], r["unlabelled_entropy_start"],
            r["unlabelled_entropy_end"], r["seconds"]))
    return "\n".join(lines)


def use_validation_split(data, mnist_path):
    """``data`` with its test set replaced by MNIST's 'valid' split, digits 5-9 (relative labels 0-4): the
    split used for model selection (the training sets come from MNIST 'train' and are unchanged)."""
    from ganimation_tl.datasets.digits import load_mnist
    from other_models import luo_transfer as L
    x, y = load_mnist(mnist_path, "valid")
    keep = np.isin(y, L.TARGET_CLASSES)
    return dataclasses.replace(data, test_images=x[keep], test_labels=(y[keep] - L.TARGET_CLASSES[0]).astype(np.int32))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/luo_transfer_debug.cfg")
    parser.add_argument("--ks", default="1,5")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--joint_steps", type=int, default=None, help="stage-2 steps (default: the config's "
                        "epochs * steps_per_epoch - luo_pretrain_steps)")
    parser.add_argument("--max_minutes", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=0, help="TF intra-op threads (0: default)")
    parser.add_argument("--out", default="docs/results/luo_transfer.json")
    parser.add_argument("--render", default=None, help="only print the Markdown tables of this results JSON")
    parser.add_argument("--set", default="", help="Config overrides for every variant, 'field=value,...' "
                        "(e.g. luo_st_tau=1); recorded in the JSON.")
    parser.add_argument("--variants", default="finetune,full,no_domain,no_semantic",
                        help="Variants to run (checks that need a missing variant are reported as n/a).")
    parser.add_argument("--validation", action="store_true",
                        help="Model selection: score on MNIST's 'valid' split (digits 5-9, 4,9xx images) instead "
                             "of the test split; the JSON records the split.")
    args = parser.parse_args()
    if args.render:
        import json
        with open(args.render) as f:
            print(markdown_tables(json.load(f)))
        return

    import tensorflow as tf
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    from ganimation_tl.trainer import write_json_atomic
    from other_models import luo_transfer as L

    start = time.time()
    base, mnist_path = parse_config(args.config)
    overrides = config_overrides(args.set, base)
    base = dataclasses.replace(base, **overrides)
    wanted = args.variants.split(",")
    ks = [int(k) for k in args.ks.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = {"finetune": dict(luo_mode="finetune"), "full": {}, "no_domain": dict(luo_alpha=0.0),
                "no_semantic": dict(luo_beta=0.0)}
    unknown = [v for v in wanted if v not in variants]
    if unknown:
        raise SystemExit("--variants: unknown %s; valid: %s" % (unknown, ", ".join(variants)))
    order = [(k, v) for k in ks for v in ("finetune", "full") if v in wanted] + \
            [(k, v) for k in ks for v in ("no_domain", "no_semantic") if v in wanted]
    results = {"config": dataclasses.asdict(base), "config_file": args.config, "overrides": overrides,
               "split": "MNIST valid 5-9 (model selection)" if args.validation else "MNIST test 5-9",
               "runs": [], "checks": {}}
    for seed in seeds:
        cfg_seed = dataclasses.replace(base, seed=seed)
        datas = {k: L.prepare_data(mnist_path, k, cfg_seed.luo_unlabelled, seed, source=cfg_seed.luo_source)
                 for k in ks}
        if args.validation:
            datas = {k: use_validation_split(d, mnist_path) for k, d in datas.items()}
        steps_epoch = L.steps_per_epoch(datas[ks[0]], cfg_seed.batch_size)
        joint = args.joint_steps if args.joint_steps is not None else \
            cfg_seed.epochs * steps_epoch - cfg_seed.luo_pretrain_steps
        t0 = time.time()
        pre = L.LuoTransfer(cfg_seed, name="luo_pre")
        run_steps(pre, datas[ks[0]], cfg_seed, cfg_seed.luo_pretrain_steps, 0)
        weights = pre.get_weights()
        print("seed %d: stage 1 (%d source steps) in %.0f s; pre-trained test accuracy %s"
              % (seed, cfg_seed.luo_pretrain_steps, time.time() - t0,
                 {k: round(pre.evaluate(datas[k])["accuracy"], 4) for k in ks}), flush=True)
        for k, variant in order:
            record = {"seed": seed, "k": k, "variant": variant, "joint_steps": joint}
            if (time.time() - start) / 60.0 > args.max_minutes:
                record["skipped"] = "time budget (--max_minutes=%g) used up" % args.max_minutes
                results["runs"].append(record)
                print("seed %d k=%d %-11s skipped (budget)" % (seed, k, variant), flush=True)
                continue
            cfg = dataclasses.replace(cfg_seed, luo_k=k, luo_pretrain_steps=0, **variants[variant])
            model = L.LuoTransfer(cfg, name="luo_%s_k%d" % (variant, k))
            model.set_weights(weights)
            before = model.evaluate(datas[k], "unlabelled")
            t0 = time.time()
            run_steps(model, datas[k], cfg, joint, 0, seed_offset=1000)
            test = model.evaluate(datas[k], "test")
            after = model.evaluate(datas[k], "unlabelled")
            record.update({"test_accuracy": test["accuracy"], "test_entropy": test["entropy"],
                           "unlabelled_entropy_start": before["entropy"], "unlabelled_entropy_end": after["entropy"],
                           "seconds": round(time.time() - t0, 1)})
            results["runs"].append(record)
            print("seed %d k=%d %-11s test accuracy %.4f  unlabelled entropy %.3f -> %.3f  (%.0f s)"
                  % (seed, k, variant, test["accuracy"], before["entropy"], after["entropy"], time.time() - t0),
                  flush=True)

    def mean_acc(k, variant):
        vals = [r["test_accuracy"] for r in results["runs"] if r["k"] == k and r["variant"] == variant
                and "test_accuracy" in r]
        return float(np.mean(vals)) if vals else None

    checks = results["checks"]

    def check(name, value, baseline, passed, required=True):
        checks[name] = {"value": value, "baseline": baseline, "pass": passed, "required": required}
        status = "n/a " if passed is None else ("PASS" if passed else "FAIL")
        print("%s  %-52s value=%s baseline=%s" % (status, name, None if value is None else round(value, 4),
                                                   None if baseline is None else round(baseline, 4)))

    print("\nChecks (mean over seeds %s; 5-way accuracy on MNIST-test 5-9):" % seeds)
    for k in ks:
        full, ft = mean_acc(k, "full"), mean_acc(k, "finetune")
        ok = None if full is None or ft is None else full > ft
        check("k=%d: full > finetune baseline" % k, full, ft, ok)
        margin = 0.05 if k == 1 else 0.02
        check("k=%d: full >= finetune + %d points (spec, info)" % (k, round(100 * margin)), full,
              None if ft is None else ft + margin, None if ok is None else full >= ft + margin, required=False)
        for ablation in ("no_domain", "no_semantic"):
            ab = mean_acc(k, ablation)
            check("k=%d: %s < full" % (k, ablation), ab, full,
                  None if ab is None or full is None else ab < full)
        fulls = [r for r in results["runs"] if r["k"] == k and r["variant"] == "full" and "test_accuracy" in r]
        if fulls:
            start_h = float(np.mean([r["unlabelled_entropy_start"] for r in fulls]))
            end_h = float(np.mean([r["unlabelled_entropy_end"] for r in fulls]))
            check("k=%d: unlabelled entropy falls >= 50%% (spec, info)" % k, end_h, 0.5 * start_h,
                  end_h <= 0.5 * start_h, required=False)
            check("k=%d: full accuracy >= 40%% (sanity, spec)" % k, full, 0.40, full >= 0.40, required=False)
    required = [c["pass"] for c in checks.values() if c["required"]]
    results["all_required_pass"] = bool(required) and all(p is True for p in required)
    results["wall_clock_minutes"] = round((time.time() - start) / 60.0, 1)
    print("\nRequired checks: %s; wall clock %.1f min" % ("PASS" if results["all_required_pass"] else "FAIL",
                                                         results["wall_clock_minutes"]))
    write_json_atomic(args.out, results)
    print("wrote", args.out)
    print("\n" + markdown_tables(results))


if __name__ == "__main__":
    main()
