"""The evaluation scripts' shared flag parsing (bench/_common.py)."""
import os
import subprocess
import sys

import pytest
from absl import flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench._common import define_eval_flags, parse_eval_flags  # noqa: E402


def _flags():
    fv = flags.FlagValues()
    define_eval_flags(fv, "dagan", 15.0)
    return fv


def test_parse_eval_flags_reads_values_and_keeps_defaults():
    fv = _flags()
    parse_eval_flags(fv, ["eval", "--max_minutes=2.5"], "doc")
    assert fv.max_minutes == 2.5 and fv.workdir == "runs/dagan_eval" and fv.output == "docs/results/dagan.json"


def test_parse_eval_flags_help_exits_0_with_doc_and_flags(capsys):
    with pytest.raises(SystemExit) as stop:
        parse_eval_flags(_flags(), ["eval", "--help"], "Evaluate DA-GAN.")
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("Evaluate DA-GAN.") and "--max_minutes" in out and "--undefok" not in out


@pytest.mark.parametrize("arg, name", [("--bogus=1", "bogus"), ("--max_minutes=abc", "max_minutes")])
def test_parse_eval_flags_bad_flag_exits_2_naming_it(capsys, arg, name):
    with pytest.raises(SystemExit) as stop:
        parse_eval_flags(_flags(), ["eval", arg], "doc")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert name in err and "Traceback" not in err


def test_eval_script_help_runs_from_the_repo_root():
    result = subprocess.run([sys.executable, "bench/eval_drgan.py", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "DR-GAN" in result.stdout and "--flagfile_path" in result.stdout


def _bench_speed(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "bench", "bench_speed.py"), *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def test_bench_speed_variant_tokens_expand():
    code = ("import sys; sys.path.insert(0, '.'); from bench.bench_speed import variant_tokens; "
            "print(sorted(variant_tokens('bf16+lowmem')), sorted(variant_tokens('old')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ("['bf16', 'lowmem', 'mmap', 'sysalloc'] "
                                     "['kerasadam', 'old', 'twocalls']")


@pytest.mark.parametrize("framework, expected", [("tl-bf16+turbo", "turbo"), ("jax", "'jax'")])
def test_bench_speed_refuses_unknown_frameworks_before_measuring(framework, expected):
    result = _bench_speed("--frameworks=tl," + framework, "--out=/nonexistent/x.json")
    assert result.returncode != 0
    assert "--frameworks" in result.stderr and expected in result.stderr and "Traceback" not in result.stderr
    assert "matmul" not in result.stdout


def test_config_overrides_types_values_and_names_bad_fields():
    import dataclasses
    from bench._common import config_overrides

    @dataclasses.dataclass
    class Cfg:
        lr: float = 0.1
        steps: int = 3
        flip: bool = False

    assert config_overrides("lr=0.5, steps=7,flip=true", Cfg()) == {"lr": 0.5, "steps": 7, "flip": True}
    assert config_overrides("", Cfg()) == {}
    with pytest.raises(SystemExit, match="unknown Cfg field 'rate'"):
        config_overrides("rate=1", Cfg())
    with pytest.raises(SystemExit, match="bad value 'x' for steps"):
        config_overrides("steps=x", Cfg())
