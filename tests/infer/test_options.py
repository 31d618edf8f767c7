"""One inference-option definition: every option is a flag of `vosbench infer`, a recipe
`[inference]` key and a ladder `infer` key, with the same name and the same validation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.ablation import load_ladder
from vosbench.errors import ConfigError
from vosbench.infer import InferOptions
from vosbench.infer.recipe import load_recipe
from vosbench.precision import cpu_has_native_fp16

runner = CliRunner()
STM_TINY = Path(__file__).resolve().parents[2] / "configs" / "stm-tiny.toml"
# every inference option with a value that is not its default (written out here, not read from the table)
VALUES = {"flip": True, "scales": [0.5, 1.0], "finetune_steps": 2, "finetune_lr": 1e-4, "finetune_aug": 0.5,
          "mem_every": 3, "max_mem_frames": 6, "precision": "fp32"}


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _recipe(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "entry.toml"
    path.write_text(f'[[members]]\ncheckpoint = "a.pt"\n[inference]\n{body}\n')
    return path


def _ladder(tmp_path: Path, table: str) -> Path:
    path = tmp_path / "ladder.toml"
    path.write_text(f"[[rungs]]\nname = 'a'\ntrain_config = '{STM_TINY}'\ninfer = {{ {table} }}\n")
    return path


def test_every_option_is_a_flag_a_recipe_key_and_a_ladder_key(tmp_path: Path) -> None:
    help_text = re.sub(r"\x1b\[[0-9;]*m", "", runner.invoke(app, ["infer", "--help"], terminal_width=200).output)
    for name in VALUES:
        assert "--" + name.replace("_", "-") in help_text, name
    assert "--no-flip" in help_text
    recipe = load_recipe(_recipe(tmp_path, "\n".join(f"{k} = {_toml(v)}" for k, v in VALUES.items())))
    ladder = load_ladder(_ladder(tmp_path, ", ".join(f"{k} = {_toml(v)}" for k, v in VALUES.items())))
    expected = {**VALUES, "scales": (0.5, 1.0)}
    assert recipe.inference == expected
    assert ladder.rungs[0].infer_options == expected
    options = InferOptions.resolve(recipe)
    assert {k: getattr(options, k) for k in VALUES} == expected


@pytest.mark.parametrize(("key", "value", "message"), [
    ("mem_every", "0", "mem_every must be >= 1, got 0"),
    ("finetune_aug", "-1.0", "finetune augmentation strength must be >= 0"),
    ("flip", "1", "flip must be true or false"),
    ("precision", '"fp8"', "precision must be one of auto, fp32, bf16, fp16, got 'fp8'"),
    ("tta", "true", "unknown inference option 'tta'"),
])
def test_recipe_and_ladder_refuse_the_same_values_alike(tmp_path: Path, key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as recipe_error:
        load_recipe(_recipe(tmp_path, f"{key} = {value}"))
    with pytest.raises(ConfigError, match=re.escape(message)) as ladder_error:
        load_ladder(_ladder(tmp_path, f"{key} = {value}"))
    assert "[inference]" in str(recipe_error.value) and "rung 'a' infer" in str(ladder_error.value)


@pytest.mark.parametrize(("args", "message"), [
    (["--mem-every", "0"], "mem_every must be >= 1, got 0"),
    (["--finetune-aug", "-1"], "finetune augmentation strength must be >= 0"),
    (["--precision", "fp8"], "precision must be one of auto, fp32, bf16, fp16"),
    (["--device", "mps"], "--device must be auto, cpu, cuda or cuda:N, got 'mps'"),
    (["--scales", "a,b"], "--scales must be comma-separated numbers"),
])
def test_cli_refuses_them_in_one_line(make_davis_root, tiny_checkpoint, tmp_path, args, message) -> None:
    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    res = runner.invoke(app, ["infer", "--checkpoint", str(tiny_checkpoint("stm-tiny")), "--data", str(root),
                              "--out", str(tmp_path / "out"), *args])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 1 and len(lines) == 1 and message in lines[0], res.output
    assert not (tmp_path / "out").exists()


def test_cli_fp16_on_a_cpu_without_it_is_one_line(make_davis_root, tiny_checkpoint, tmp_path) -> None:
    if cpu_has_native_fp16():
        pytest.skip("this CPU has native fp16")
    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    res = runner.invoke(app, ["infer", "--checkpoint", str(tiny_checkpoint("stm-tiny")), "--data", str(root),
                              "--out", str(tmp_path / "out"), "--precision", "fp16", "--device", "cpu"])
    assert res.exit_code == 1 and "--precision fp16 --device cpu" in res.output and "Traceback" not in res.output


def test_cli_summary_names_device_and_precision(make_davis_root, tiny_checkpoint, tmp_path) -> None:
    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    res = runner.invoke(app, ["infer", "--checkpoint", str(tiny_checkpoint("stm-tiny")), "--data", str(root),
                              "--out", str(tmp_path / "out"), "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    assert "on cpu, fp32" in res.output
