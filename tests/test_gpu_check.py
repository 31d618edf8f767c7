"""benchmarks/gpu_check.py as CI's CPU smoke test: it runs with --device cpu --quick, prints its table,
and exits non-zero when a check fails."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_quick_cpu_run_passes_and_prints_one_table():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--only", "train,infer,sdpa,tests",
                           "--presets", "stm-tiny", "--infer-presets", "stm-tiny"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    rows = [ln.split() for ln in proc.stdout.splitlines()[2:-1]]
    assert [(r[0], r[1], r[2]) for r in rows[:2]] == [("train", "stm-tiny", "fp32"), ("train", "stm-tiny", "bf16")]
    assert {r[0] for r in rows} == {"train", "infer", "sdpa", "tests"}
    assert all(r[3] in ("ok", "skip") for r in rows if r[0] in ("train", "infer"))
    assert ["infer", "stm-tiny", "fp32", "ok"] in [r[:4] for r in rows]
    sdpa = next(r for r in rows if r[0] == "sdpa")
    assert sdpa[3] == "ok" and "fused" in " ".join(sdpa)
    assert proc.stdout.splitlines()[-1].startswith(f"{len(rows)} checks: ")


def test_a_failing_check_is_a_fail_row_and_exit_status_1(monkeypatch, capsys):
    gpu_check = _load()

    def math_fallback(device, quick):
        raise RuntimeError("No available kernel.  Aborting execution.")

    monkeypatch.setattr(gpu_check, "check_sdpa", math_fallback)
    assert gpu_check.main(["--device", "cpu", "--quick", "--only", "sdpa"]) == 1
    out = capsys.readouterr().out
    assert "sdpa    memory read                 FAIL" in out and "1 failed" in out


@pytest.mark.slow
def test_the_whole_quick_cpu_run_passes():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick"], capture_output=True, text=True,
                          timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
