from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from vosbench_cli.main import app

runner = CliRunner()


def test_cli_tiny_model_then_rerun_skips(make_davis_root, tiny_depth_model: Path) -> None:
    root = make_davis_root({"alpha": (3, 1), "beta": (2, 1)}, size=(32, 48))
    args = ["prepare", "depth", "--data", str(root), "--estimator", str(tiny_depth_model), "--batch-size", "2"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "2 written (5 frames" in res.output and "0 skipped" in res.output
    assert len(list((root / "Depth" / "480p").rglob("*.png"))) == 5
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "0 written" in res.output and "2 skipped" in res.output


def test_cli_folder_import_and_overwrite(make_davis_root, tmp_path: Path) -> None:
    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    (tmp_path / "m" / "alpha").mkdir(parents=True)
    for t in range(2):
        Image.fromarray(np.full((8, 8), 100 * t, np.uint8)).save(tmp_path / "m" / "alpha" / f"{t:05d}.png")
    args = ["prepare", "depth", "--data", str(root), "--estimator", f"folder:{tmp_path / 'm'}"]
    assert runner.invoke(app, args).exit_code == 0
    res = runner.invoke(app, [*args, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert "1 written (2 frames" in res.output


def test_cli_errors_are_one_line(make_davis_root, tmp_path: Path) -> None:
    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    res = runner.invoke(app, ["prepare", "depth", "--data", str(root), "--estimator", str(tmp_path / "no_model")])
    assert res.exit_code == 1
    assert "no_model: depth model folder not found" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["prepare", "depth", "--data", str(root), "--estimator", f"folder:{tmp_path}"])
    assert res.exit_code == 1 and "imported depth map missing" in res.output
    assert not (root / "Depth" / "480p" / "alpha").exists()
    res = runner.invoke(app, ["prepare", "depth", "--data", str(root), "--split", "train", "--estimator", f"folder:{tmp_path}"])
    assert res.exit_code == 1 and "train.txt: split file not found" in res.output


def test_cli_corrupt_frame_is_one_line_and_writes_nothing(make_davis_root, tiny_depth_model: Path) -> None:
    root = make_davis_root({"alpha": (3, 1)}, size=(16, 16))
    bad = root / "JPEGImages" / "480p" / "alpha" / "00001.jpg"
    bad.write_bytes(bad.read_bytes()[:30])
    res = runner.invoke(app, ["prepare", "depth", "--data", str(root), "--estimator", str(tiny_depth_model)])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if "00001.jpg" in ln]
    assert len(lines) == 1 and "corrupt or truncated image" in lines[0] and "Traceback" not in res.output
    depth = root / "Depth" / "480p"
    assert not depth.exists() or list(depth.iterdir()) == []  # no sequence folder, no temp folder, no PNG


def test_cli_checks_data_before_loading_a_model(tmp_path: Path) -> None:
    # a hub id would be downloaded (minutes) before a typo in --data showed; the root is checked first
    res = runner.invoke(app, ["prepare", "depth", "--data", str(tmp_path / "nope"),
                              "--estimator", "depth-anything/Depth-Anything-V2-Small-hf"])
    assert res.exit_code == 1 and "nope: dataset root not found" in res.output
