"""Progress in logs: with stderr not a terminal, long steps print plain flushed lines at a steady interval."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.metrics.helpers import moving_objects, perturb, write_davis, write_results
from vosbench_cli.common import LineProgress


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_lines_every_interval_with_count_rate_and_eta():
    clock, lines = _Clock(), []
    p = LineProgress(lines.append, interval=10.0, clock=clock)
    p.start("infer blackswan", total=50)
    for _ in range(50):  # 2 s per frame: a line every 5 frames (10 s)
        clock.t += 2.0
        p.advance()
    p.close()
    assert len(lines) == 10  # 9 interval lines (not one at 50/50) and the last one
    assert lines[0] == "infer blackswan: 5/50 (10%), 0.5/s, elapsed 0:10, eta 1:30"
    assert lines[-1] == "infer blackswan: 50/50 (100%), 0.5/s, elapsed 1:40, done"


def test_quick_steps_print_nothing_and_unknown_totals_have_no_eta():
    clock, lines = _Clock(), []
    p = LineProgress(lines.append, interval=10.0, clock=clock)
    p.start("quick", total=3)
    for _ in range(3):
        clock.t += 1.0
        p.advance()
    p.start("one jump", total=2)
    clock.t += 30.0
    p.advance(2)  # no interval line at 2/2: the done line says it
    p.start("open-ended")  # ends "quick" silently: it never ran past the interval
    clock.t += 3600 + 61
    p.advance(7)
    p.update("open-ended loss 0.5")
    p.close()
    assert lines.pop(0) == "one jump: 2/2 (100%), 0.0667/s, elapsed 0:30, done"
    assert lines == ["open-ended: 7, 0.00191/s, elapsed 1:01:01", "open-ended loss 0.5: 7, 0.00191/s, elapsed 1:01:01, done"]


def test_evaluate_with_stderr_in_a_file_prints_progress_lines(tmp_path: Path):
    rng = np.random.default_rng(0)
    gt = {n: moving_objects(4, 1, (24, 32), rng) for n in ("alpha", "beta")}
    root = write_davis(tmp_path / "davis", gt)
    res = write_results(tmp_path / "res", {n: [perturb(m, rng) for m in ms] for n, ms in gt.items()})
    log = tmp_path / "log.txt"
    env = {**os.environ, "VOSBENCH_PROGRESS_SECONDS": "0"}  # a line on every step, to see them in a short run
    with open(log, "w") as fh:
        done = subprocess.run(
            [sys.executable, "-m", "vosbench_cli.main", "evaluate", "--data", str(root), "--results", str(res),
             "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=fh, env=env, timeout=300,
        )
    assert done.returncode == 0
    lines = log.read_text().splitlines()
    progress = [ln for ln in lines if ln.startswith("evaluating 2 sequences: ")]
    assert progress, lines
    assert all("\x1b" not in ln and "━" not in ln for ln in lines)  # plain text, no bars or colour codes
    assert progress[-1].endswith("done") and "4/4 (100%)" in progress[-1]
