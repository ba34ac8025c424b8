"""bench/trainer_log_phases.py: per-phase iterations per second and input wait from a trainer log."""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "bench", "trainer_log_phases.py")


def _line(day, clock, step, total, wait):
    return ("I%s %s 1397 trainer.py:377] step %d/%d [==>   ]  10%% | 9.90 it/s | ETA 1m00s | "
            "critic/au_mae=0.1 | input wait %d%%\n" % (day, clock, step, total, wait))


def test_phases_from_a_log_that_crosses_midnight(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("".join([
        "I1206 23:59:50.000000 1397 ganimation_task.py:219] GANimation on 160 faces\n",
        _line("1206", "23:59:50.000000", 10, 40, 30),
        _line("1206", "23:59:55.000000", 20, 40, 20),   # 10 iterations in 5 s
        _line("1207", "00:00:05.000000", 30, 40, 0),    # 10 in 10 s, across midnight
        _line("1207", "00:00:25.000000", 40, 40, 2),    # 10 in 20 s
    ]))
    out = tmp_path / "phases.json"
    run = subprocess.run([sys.executable, SCRIPT, str(log), "--boundaries=0,20,40", "--output=%s" % out],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    first, second = result["phases"]
    assert (first["from"], first["to"], first["iterations"], first["seconds"]) == (10, 20, 10, 5.0)
    assert first["it_per_s"] == 2.0 and first["mean_input_wait"] == 0.2
    assert (second["from"], second["to"], second["seconds"], second["it_per_s"]) == (20, 40, 30.0, 0.67)
    assert second["mean_input_wait"] == 0.01
    assert result["minutes_between_first_and_last_line"] == 0.58


def test_a_log_without_progress_lines_is_a_clear_error(tmp_path):
    log = tmp_path / "empty.log"
    log.write_text("nothing here\n")
    run = subprocess.run([sys.executable, SCRIPT, str(log)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "empty.log holds no trainer progress lines" in run.stderr
