"""Evaluate ``--model=arn`` (ARN, Li et al., CVPRW 2018) against the source-only baseline.

    python bench/eval_arn.py [--config=configs/arn_debug.cfg] [--seeds=0,1,2] [--max_minutes=30]

Trains, through the library's :class:`ARN` and its data pipeline, the source-only baseline (the same backbone E_I,
E_C and C_S trained with L_cls + L_ctr on the labelled source) and the full ARN (plus L_rec and L_diff on both
domains) for the config's epochs, each given half of ``--max_minutes`` (a run that hits its share stops early
and the step count is reported). Target re-identification: CFP profile photos of identities 101-150, each
image a query against the other 199 (leave-one-out), cosine similarity on e_c; rank-1 and mAP.

Check (the issue): ARN target rank-1 >= source-only rank-1 + 5 points. Informational (the spec): L_diff near 0
at the end (<= 0.05). Diagnostics recorded per run: the domain gap of e_c (:func:`other_models.arn.domain_gap`:
MMD between all source and all target codes, mean cross-domain cosine) and the rank-1 on the *frontal* photos of
the target identities (never trained on; does the backbone learn identity at all?). Writes
``docs/results/arn.json`` atomically.

Model selection: ``--validation`` replaces the split by source = frontal photos of identities 1-70, target =
profile photos of identities 71-100 (the test target 101-150 is not loaded); ``--set`` overrides config fields for
both modes, ``--modes`` picks the modes.
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
    from other_models import arn as A
    registry.load_all()
    fv = model_flags(A.define_flags, path, model="arn")
    return config_or_input_error(A.ARNConfig, fv), fv.cfp_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/arn_debug.cfg")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--max_minutes", type=float, default=30.0)
    parser.add_argument("--eval_every_epochs", type=int, default=5)
    parser.add_argument("--out", default="docs/results/arn.json")
    parser.add_argument("--set", default="", help="Config overrides for both modes, 'field=value,...' "
                        "(e.g. arn_mmd=0.1,arn_flip=true); recorded in the JSON.")
    parser.add_argument("--modes", default="source_only,arn",
                        help="Modes to train; the check is computed only when both are run.")
    parser.add_argument("--validation", action="store_true",
                        help="Model selection split: source = frontal photos of identities 1-70, target = "
                             "profile photos of identities 71-100 (never the test target 101-150).")
    args = parser.parse_args()

    from ganimation_tl.trainer import write_json_atomic
    from other_models import arn as A

    start = time.time()
    base, cfp_dir = parse_config(args.config)
    overrides = config_overrides(args.set, base)
    if args.validation:
        overrides.update(arn_source_ids=70, arn_target_ids=30)
    base = dataclasses.replace(base, **overrides)
    seeds = [int(s) for s in args.seeds.split(",")]
    data = A.prepare_data(cfp_dir, base)
    print(data.describe(), flush=True)
    # Diagnostic only (never trained on): the *frontal* photos of the target identities, to tell "no identity
    # features at all" from "identity features that do not carry over to profiles".
    from ganimation_tl.datasets.cfp import load_faces
    target_ids = list(range(base.arn_source_ids + 1, base.arn_source_ids + base.arn_target_ids + 1))
    frontal = load_faces(cfp_dir, base.image_size, identities=target_ids, views=("frontal",))
    frontal_images = frontal.images.astype(np.float32) / 127.5 - 1.0
    steps_epoch = len(data.source_images) // base.batch_size
    modes = args.modes.split(",")
    share = 60.0 * args.max_minutes / (len(modes) * len(seeds))
    results = {"config": dataclasses.asdict(base), "config_file": args.config, "overrides": overrides,
               "split": "validation (source 1-70, target 71-100)" if args.validation else "test (target 101-150)",
               "data": data.describe(),
               "protocol": "leave-one-out within the target (each of the %d profile images queries the others); "
                           "cosine on e_c" % len(data.target_images), "runs": []}
    for seed in seeds:
        for mode in modes:
            cfg = dataclasses.replace(base, seed=seed, arn_mode=mode)
            model = A.ARN(cfg, name="arn_%s_s%d" % (mode, seed))
            record = {"seed": seed, "mode": mode, "curve": []}
            record["initial"] = model.evaluate(data, gap=True)
            record["initial"]["target_ids_frontal_rank1"] = A.rank1_and_map(model.shared_codes(frontal_images),
                                                                            frontal.identities)["rank1"]
            t0, step, stopped = time.time(), 0, False
            last = {}
            for epoch in range(cfg.epochs):
                for batch in A.batches_for_epoch(data, cfg, epoch):
                    last = model.train_step(batch, step)
                    step += 1
                if (epoch + 1) % args.eval_every_epochs == 0 or epoch + 1 == cfg.epochs:
                    ev = model.evaluate(data, gap=True)
                    record["curve"].append({"epoch": epoch + 1, "step": step, **ev})
                    print("seed %d %-11s epoch %3d step %5d rank1 %.3f mAP %.3f gap_mmd %.3f  %s  (%.0f s)"
                          % (seed, mode, epoch + 1, step, ev["rank1"], ev["map"], ev["gap_mmd"],
                             " ".join("%s=%.3f" % (k.split("/")[-1], float(v)) for k, v in last.items()),
                             time.time() - t0), flush=True)
                if time.time() - t0 > share:
                    stopped = True
                    break
            final = model.evaluate(data, gap=True)
            record["target_ids_frontal_rank1"] = A.rank1_and_map(model.shared_codes(frontal_images),
                                                                 frontal.identities)["rank1"]
            record.update({"steps": step, "planned_steps": cfg.epochs * steps_epoch, "stopped_by_budget": stopped,
                           "rank1": final["rank1"], "map": final["map"],
                           "domain_gap": {k[4:]: v for k, v in final.items() if k.startswith("gap_")},
                           "final_losses": {k: float(v) for k, v in last.items()},
                           "seconds": round(time.time() - t0, 1)})
            results["runs"].append(record)

    def mean(mode, key):
        values = [r[key] for r in results["runs"] if r["mode"] == mode]
        return float(np.mean(values)) if values else float("nan")

    arn_r1, src_r1 = mean("arn", "rank1"), mean("source_only", "rank1")
    results["summary"] = {"arn_rank1": arn_r1, "source_only_rank1": src_r1, "arn_map": mean("arn", "map"),
                          "source_only_map": mean("source_only", "map"),
                          "arn_frontal_rank1_diagnostic": mean("arn", "target_ids_frontal_rank1"),
                          "source_only_frontal_rank1_diagnostic": mean("source_only", "target_ids_frontal_rank1"),
                          "chance_rank1": 3.0 / (len(data.target_images) - 1)}
    print("\nTarget re-ID (CFP profile, identities %d-%d), mean over seeds %s:"
          % (base.arn_source_ids + 1, base.arn_source_ids + base.arn_target_ids, seeds))
    print("  source-only rank-1 %.3f mAP %.3f | ARN rank-1 %.3f mAP %.3f | chance rank-1 %.3f"
          % (src_r1, results["summary"]["source_only_map"], arn_r1, results["summary"]["arn_map"],
             results["summary"]["chance_rank1"]))
    print("  diagnostic, frontal photos of the same identities (never trained on): source-only rank-1 %.3f, "
          "ARN %.3f" % (results["summary"]["source_only_frontal_rank1_diagnostic"],
                        results["summary"]["arn_frontal_rank1_diagnostic"]))
    results["checks"] = {}
    if "arn" in modes and "source_only" in modes:
        diffs = [r["final_losses"].get("loss/difference") for r in results["runs"] if r["mode"] == "arn"]
        diff = float(np.mean(diffs)) if diffs else None
        results["checks"] = {
            "target rank-1: arn >= source_only + 5 points": {"value": arn_r1, "baseline": src_r1 + 0.05,
                                                              "pass": arn_r1 >= src_r1 + 0.05, "required": True},
            "L_diff at the end <= 0.05 (spec, info)": {"value": diff, "baseline": 0.05,
                                                       "pass": diff is not None and diff <= 0.05, "required": False},
        }
    for name, c in results["checks"].items():
        print("%s  %-48s value=%s baseline=%s" % ("PASS" if c["pass"] else "FAIL", name,
                                                   None if c["value"] is None else round(c["value"], 4),
                                                   round(c["baseline"], 4)))
    results["all_required_pass"] = (bool(results["checks"]) and
                                    all(c["pass"] for c in results["checks"].values() if c["required"]))
    results["wall_clock_minutes"] = round((time.time() - start) / 60.0, 1)
    print("Required checks: %s; wall clock %.1f min" % ("PASS" if results["all_required_pass"] else
                                                       "FAIL" if results["checks"] else "not computed",
                                                       results["wall_clock_minutes"]))
    write_json_atomic(args.out, results)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
