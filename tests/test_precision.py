"""Device and precision resolution (vosbench.precision): the auto rule, its fallback, unsupported pairs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vosbench.errors import ConfigError
from vosbench.precision import resolve_device, resolve_numerics


def _cpu_flags() -> set[str]:
    """The CPU feature flags the kernel reports (the test's own reference; the library asks PyTorch)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo to cross-check against")
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    pytest.skip("/proc/cpuinfo has no flags line")


def test_auto_on_this_cpu_follows_its_bf16_instructions() -> None:
    native = bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())
    expected = "bf16" if native else "fp32"
    assert resolve_numerics("cpu", "auto", "infer").precision == expected
    assert resolve_numerics("cpu", "auto", "train").precision == expected


def test_auto_falls_back_to_fp32_when_pytorch_reports_no_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False, raising=False)
    numerics = resolve_numerics("cpu", "auto")
    assert numerics.precision == "fp32" and numerics.dtype == torch.float32
    with pytest.raises(ConfigError, match="no native bf16"):
        resolve_numerics("cpu", "bf16")
    assert resolve_numerics("cpu", "fp32").precision == "fp32"


def test_fp16_on_a_cpu_without_native_fp16_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_fp16_supported", lambda: False, raising=False)
    with pytest.raises(ConfigError, match=r"--precision fp16 --device cpu: .*no native fp16"):
        resolve_numerics("cpu", "fp16")


@pytest.mark.parametrize(("device", "message"), [
    ("mps", "--device must be auto, cpu, cuda or cuda:N, got 'mps'"),
    ("gpu", "got 'gpu'"),
    ("cpu:1", "got 'cpu:1'"),
    ("cuda:x", "got 'cuda:x'"),
])
def test_unknown_devices_are_one_config_error(device: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_device(device)


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ConfigError, match="precision must be one of auto, fp32, bf16, fp16, got 'fp8'"):
        resolve_numerics("cpu", "fp8")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda_is_refused_and_auto_is_the_cpu() -> None:
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


def test_fp32_enters_no_autocast_region_and_bf16_does() -> None:
    with resolve_numerics("cpu", "fp32").autocast():
        assert not torch.is_autocast_enabled("cpu")
    if resolve_numerics("cpu", "auto").precision == "bf16":
        with resolve_numerics("cpu", "bf16").autocast():
            assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_on_cuda() -> None:
    assert resolve_device("auto").type == "cuda"
    assert resolve_numerics("cuda", "auto", "infer").precision == "fp16"
    expected = "bf16" if torch.cuda.get_device_capability()[0] >= 8 else "fp16"  # bf16 tensor cores: sm80+
    train = resolve_numerics("cuda", "auto", "train")
    assert train.precision == expected and train.channels_last
    assert train.needs_grad_scaler == (expected == "fp16")
