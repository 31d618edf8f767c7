"""Training precision: fp32 runs no autocast region; bf16 runs the clip under autocast, its loss
stays finite, and the run records what it used."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.precision import resolve_numerics
from vosbench.train.config import TrainConfig, write_config
from vosbench.train.loop import train

from ..autocast_spy import autocast_spy


def test_fp32_training_enters_no_autocast_region(tiny_config: Callable[..., TrainConfig], tmp_path: Path) -> None:
    cfg = tiny_config("train.precision=fp32", "train.epochs=1")
    with autocast_spy() as seen:
        result = train(cfg, tmp_path / "fp32", device="cpu")
    assert result.precision == "fp32" and result.device == "cpu"
    assert seen["calls"] > 0 and seen["entered"] == 0 and seen["calls_in_autocast"] == 0, seen


@pytest.mark.skipif(resolve_numerics("cpu", "auto").precision != "bf16", reason="no native bf16 on this CPU")
def test_auto_trains_in_bf16_here_and_records_it(tiny_config: Callable[..., TrainConfig], tmp_path: Path) -> None:
    cfg = tiny_config("train.precision=auto", "train.epochs=1")
    with autocast_spy() as seen:
        result = train(cfg, tmp_path / "auto", device="auto")
    assert result.precision == "bf16" and result.device == "cpu"
    assert seen["entered"] > 0 and seen["calls_in_autocast"] > 0
    assert torch.isfinite(torch.tensor(result.final_loss))
    extra = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert extra["numerics"] == {"device": "cpu", "precision": "bf16"}
    dtypes = {v.dtype for v in extra["state_dict"].values() if v.is_floating_point()}
    assert dtypes == {torch.float32}  # autocast computes in bf16; the weights stay float32
    # CPU bf16 trains channels_last (measured faster); the saved weights still load into a default-layout model
    conv = next(v for k, v in extra["state_dict"].items() if v.dim() == 4 and v.shape[1] > 1 and v.shape[-1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    fp32 = torch.load(train(tiny_config("train.precision=fp32", "train.epochs=1"), tmp_path / "fp32", device="cpu")
                      .last_checkpoint, map_location="cpu", weights_only=True)
    assert all(v.is_contiguous() for v in fp32["state_dict"].values())  # fp32 keeps the default layout


@pytest.mark.parametrize(("args", "message"), [
    (["--precision", "fp8"], "precision must be one of auto, fp32, bf16, fp16"),
    (["--device", "mps"], "--device must be auto, cpu, cuda or cuda:N, got 'mps'"),
])
def test_bad_precision_or_device_is_one_line(tiny_config: Callable[..., TrainConfig], tmp_path: Path,
                                             args: list[str], message: str) -> None:
    path = tmp_path / "tiny.toml"
    write_config(path, tiny_config())
    result = CliRunner().invoke(app, ["train", "--config", str(path), "--out", str(tmp_path / "r"), *args])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "r").exists()


def test_fp16_on_this_cpu_is_refused_when_unsupported(tiny_config, tmp_path: Path) -> None:
    from vosbench.precision import cpu_has_native_fp16

    if cpu_has_native_fp16():
        pytest.skip("this CPU has native fp16")
    path = tmp_path / "tiny.toml"
    write_config(path, tiny_config())
    result = CliRunner().invoke(app, ["train", "--config", str(path), "--out", str(tmp_path / "r"),
                                      "--precision", "fp16", "--device", "cpu"])
    assert result.exit_code == 1 and "--precision fp16 --device cpu" in result.output
    assert len([ln for ln in result.output.splitlines() if ln.strip()]) == 1
