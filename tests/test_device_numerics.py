"""Device and precision on GPUs, with torch.cuda mocked: the auto rule on GPUs without bf16 tensor
cores, the announcement, the CPU fallback that nvidia-smi contradicts, the rank's GPU under torchrun
or SLURM, and setup.sh's wheel index."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from vosbench.errors import ConfigError
from vosbench.precision import apply_backend_policy, resolve_device, resolve_numerics

CUDA = torch.device("cuda", 0)
REPO = Path(__file__).resolve().parents[1]


def fake_gpu(monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], name: str = "Tesla V100-SXM2-16GB",
             count: int = 1) -> None:
    """torch.cuda as on a machine with ``count`` GPUs of ``capability``; ``is_bf16_supported()``
    behaves as PyTorch's does: True through emulation unless ``including_emulation=False``."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: SimpleNamespace(
        name=name, major=capability[0], minor=capability[1]))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: including_emulation or capability[0] >= 8)
    monkeypatch.setattr(torch.version, "hip", None)


def test_auto_trains_fp16_with_scaling_on_a_gpu_without_bf16_tensor_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpu(monkeypatch, (7, 0))  # V100: bf16 only through emulation
    train = resolve_numerics(CUDA, "auto", "train")
    assert train.precision == "fp16" and train.needs_grad_scaler
    assert resolve_numerics(CUDA, "auto", "infer").precision == "fp16"
    with pytest.raises(ConfigError, match=r"--precision bf16 --device cuda:0: .*compute capability 7.0.*no bf16 tensor"):
        resolve_numerics(CUDA, "bf16", "train")


def test_auto_trains_bf16_on_a_gpu_with_bf16_tensor_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpu(monkeypatch, (8, 0), "NVIDIA A100-SXM4-40GB")
    train = resolve_numerics(CUDA, "auto", "train")
    assert train.precision == "bf16" and not train.needs_grad_scaler
    assert resolve_numerics(CUDA, "bf16", "infer").precision == "bf16"


def test_the_start_line_names_device_gpu_precision_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpu(monkeypatch, (7, 5), "Tesla T4")
    line = resolve_numerics(CUDA, "auto", "train").announce()
    assert line.startswith("train on cuda:0 (Tesla T4, compute capability 7.5), fp16 (auto: ")
    assert "7.5 < 8.0" in line and "gradient scaling" in line
    assert resolve_numerics(CUDA, "fp32", "infer").announce().endswith("fp32 (as requested)")
    assert resolve_numerics("cpu", "fp32", "infer").announce().startswith("infer on cpu (")


def test_backend_policy_is_true_fp32_for_fp32_and_tf32_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpu(monkeypatch, (9, 0), "NVIDIA H100")
    before = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.fp32_precision,
              torch.backends.cudnn.conv.fp32_precision)
    try:
        apply_backend_policy(resolve_numerics(CUDA, "fp32"))
        assert torch.backends.cudnn.benchmark
        assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == ("ieee", "ieee")
        apply_backend_policy(resolve_numerics(CUDA, "fp16"))
        assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == ("tf32", "tf32")
    finally:
        torch.backends.cudnn.benchmark = before[0]
        torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = before[1:]


def _fake_nvidia_smi(folder: Path, listing: str) -> None:
    exe = folder / "nvidia-smi"
    exe.write_text(f"#!/bin/sh\nprintf '%s\\n' '{listing}'\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


def test_auto_refuses_the_cpu_when_nvidia_smi_sees_gpus_torch_cannot_use(tmp_path, monkeypatch) -> None:
    _fake_nvidia_smi(tmp_path, "Tesla V100-SXM2-16GB, 470.57.02")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError) as err:
        resolve_device("auto")
    line = str(err.value)
    assert "\n" not in line
    assert "nvidia-smi sees 1 GPU(s) (Tesla V100-SXM2-16GB (driver 470.57.02))" in line
    assert "TORCH_INDEX=" in line and "--device cpu" in line
    assert resolve_device("cpu") == torch.device("cpu")  # asking for the CPU is fine


def test_auto_is_the_cpu_without_gpus(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_infer_cli_device_auto_stops_in_one_line_on_a_driver_wheel_mismatch(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from vosbench_cli.main import app

    _fake_nvidia_smi(tmp_path, "NVIDIA A100-SXM4-40GB, 450.80.02")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = CliRunner().invoke(app, ["infer", "--checkpoint", str(tmp_path / "x.pt"), "--data", str(tmp_path),
                                   "--out", str(tmp_path / "out")])
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: --device auto: nvidia-smi sees")


def _distributed(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], device: str) -> tuple[int, int, str]:
    from vosbench_cli.infer import _distributed as distributed

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
                 "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_NPROCS", "SLURM_STEP_ID", "SLURM_STEPID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return distributed(device)


def test_infer_under_torchrun_refuses_one_explicit_gpu_for_every_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpu(monkeypatch, (9, 0), "NVIDIA H100", count=2)
    torchrun = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}
    assert _distributed(monkeypatch, torchrun, "cuda") == (1, 2, "cuda:1")
    with pytest.raises(ConfigError, match="--device cuda:0 under 2 processes"):
        _distributed(monkeypatch, torchrun, "cuda:0")


def test_infer_reads_rank_and_gpu_from_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpu(monkeypatch, (9, 0), "NVIDIA H100", count=4)
    slurm = {"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "2", "SLURM_STEP_ID": "0"}  # an srun task
    assert _distributed(monkeypatch, slurm, "auto") == (3, 4, "cuda:2")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(("index", "expected"), [
    (None, None),  # the default (CI): PyPI's wheel
    ("cu121", "https://download.pytorch.org/whl/cu121"),
    ("cpu", "https://download.pytorch.org/whl/cpu"),
    ("https://mirror.example/whl/cu118", "https://mirror.example/whl/cu118"),
])
def test_setup_script_installs_torch_from_the_chosen_index(tmp_path: Path, index: str | None, expected: str | None) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    python = tmp_path / ".venv" / "bin" / "python"  # a fake venv python that logs its arguments
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/pip.log"\n')
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "TORCH_INDEX"}
    if index is not None:
        env["TORCH_INDEX"] = index
    subprocess.run(["bash", str(tmp_path / "scripts" / "setup.sh")], check=True, env=env, cwd=tmp_path, timeout=60)
    torch_line = next(ln for ln in (tmp_path / "pip.log").read_text().splitlines() if "torch==" in ln)
    if expected is None:
        assert "--index-url" not in torch_line
    else:
        assert f"--index-url {expected}" in torch_line
    assert "torchvision==" in torch_line  # the pinned pair comes from the same index
