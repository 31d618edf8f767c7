"""`vosbench train` on the command line: outputs, and one-line errors with a non-zero exit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.train import loop
from vosbench.train.config import TrainConfig, write_config

runner = CliRunner()


@pytest.fixture
def config_file(tiny_config: Callable[..., TrainConfig], tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    write_config(path, tiny_config("train.batch_size=1", "data.samples_per_epoch=2"))
    return path


def _one_line_error(result, needle: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert any(needle in ln and ln.startswith("error:") for ln in lines), result.output
    assert "Traceback" not in result.output


def test_help_has_an_example() -> None:
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0 and "Example: vosbench train --config" in result.output


def test_train_writes_outputs_then_refuses_another_architecture(config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--config", str(config_file), "--out", str(out), "--max-steps", "1",
                                 "--device", "cpu", "--set", "optim.lr=2e-4", "--set", "optim.betas=[0.8, 0.99]"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {"last.pt", "step-1.pt", "log.csv", "config.toml"}
    from vosbench.train.config import load_config
    from vosbench.train.trainlog import read_log

    resolved = load_config(out / "config.toml")  # the --set overrides reach the run
    assert resolved.optim.lr == 2e-4 and resolved.optim.betas == (0.8, 0.99)
    assert read_log(out / "log.csv")[0]["lr"] == 2e-4
    result = runner.invoke(app, ["train", "--config", str(config_file), "--out", str(out), "--resume",
                                 "--set", "model.preset=scm-tiny", "--device", "cpu"])
    _one_line_error(result, "differs")


@pytest.mark.parametrize("args,needle", [
    (["--data", "/nonexistent/root"], "dataset root not found"),
    (["--set", "optim.lrr=1"], "unknown config key 'optim.lrr'"),
    (["--set", "data.split=test-dev"], "split file not found"),
    (["--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N"),
])
def test_bad_input_is_one_line(config_file: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    result = runner.invoke(app, ["train", "--config", str(config_file), "--out", str(tmp_path / "r"), *args])
    _one_line_error(result, needle)
    assert not (tmp_path / "r" / "last.pt").exists()


@pytest.mark.parametrize("args,needle", [
    (["--set", "train.allow_random_init=false"], "model.backbone_weights"),
    (["--set", "model.overrides.backbone_weights=timm:resnet18.no_such_tag"], "unknown timm pretrained tag"),
    (["--set", "model.overrides.backbone_weights=timm:resnet50.tv_in1k"], "weights of 'resnet50'"),
    (["--set", "model.overrides.backbone_weights=WEIGHTS"], "resnet18"),  # a resnet34 file for a resnet18 trunk
    (["--set", "model.preset=scm-tiny", "--set", "train.init_checkpoint=CKPT", "--set", "train.init_strict=true"],
     "differs"),
])
def test_bad_start_weights_are_one_line_before_any_step(config_file: Path, tmp_path: Path, args: list[str],
                                                        needle: str) -> None:
    import timm
    import torch

    from vosbench.models import build_model, save_checkpoint

    weights, ckpt = tmp_path / "resnet34.pth", tmp_path / "stm.pt"
    torch.save(timm.create_model("resnet34", pretrained=False).state_dict(), weights)
    save_checkpoint(ckpt, build_model("stm-tiny"))
    args = [a.replace("WEIGHTS", str(weights)).replace("CKPT", str(ckpt)) for a in args]
    result = runner.invoke(app, ["train", "--config", str(config_file), "--out", str(tmp_path / "r"), "--device", "cpu",
                                 *args])
    _one_line_error(result, needle)
    assert not (tmp_path / "r").exists()


def test_allow_random_init_flag(config_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--config", str(config_file), "--out", str(tmp_path / "r"), "--device", "cpu",
                                 "--max-steps", "1", "--set", "train.allow_random_init=false", "--allow-random-init"])
    assert result.exit_code == 0, result.output


def test_missing_config_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "nope.toml")])
    _one_line_error(result, "config file not found")


def test_nan_loss_is_one_line(config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def nan_loss(output, target, loss_cfg, valid):
        total = output.logits.sum() * float("nan")
        return total, {"ce": float("nan")}

    monkeypatch.setattr(loop, "_segmentation_loss", nan_loss)
    result = runner.invoke(app, ["train", "--config", str(config_file), "--out", str(tmp_path / "r"),
                                 "--device", "cpu"])
    _one_line_error(result, "loss became nan at step 1")
    assert not (tmp_path / "r" / "last.pt").exists()


@pytest.mark.parametrize("args,needle", [
    (["--data", "/nonexistent/root"], "dataset root not found"),
    (["--set", "optim.lrr=1"], "unknown config key 'optim.lrr'"),
    (["--set", "train.batch_size=1", "--set", "data.samples_per_epoch=6"], "smaller than 2 workers x train.accumulate 1"),
    (["--set", "model.overrides.key_dimm=8"], "[model] unknown model config key 'key_dimm'"),
])
def test_nproc_bad_input_fails_before_torchrun(config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              args: list[str], needle: str) -> None:
    import subprocess

    launched: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, **kw: launched.append(cmd) or 0)
    result = runner.invoke(app, ["train", "--config", str(config_file), "--out", str(tmp_path / "r"), "--nproc", "2",
                                 "--device", "cpu", "--set", "train.batch_size=2", *args])
    _one_line_error(result, needle)
    assert not launched and not (tmp_path / "r").exists()


def test_nproc_launches_torchrun_with_the_same_options(config_file: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    launched: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, **kw: launched.append(cmd) or 0)
    result = runner.invoke(app, ["train", "--config", str(config_file), "--out", str(tmp_path / "r"), "--nproc", "2",
                                 "--device", "cpu", "--max-steps", "3", "--set", "train.batch_size=2"])
    assert result.exit_code == 0, result.output
    (cmd,) = launched
    assert "--nproc-per-node=2" in cmd and cmd[cmd.index("-m", 3) + 1] == "vosbench_cli.launch"
    tail = cmd[cmd.index("vosbench_cli.launch") + 1:]
    assert tail == ["--config", str(config_file), "--device", "cpu", "--out", str(tmp_path / "r"),
                    "--max-steps", "3", "--set", "train.batch_size=2"]
