"""`prepare depth` on a `prepare static` set: ROOT/depth/<name>.png per image, for D-STM pretraining."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.data.imageio import read_depth, write_frame, write_mask
from vosbench.depth.estimators import FolderDepthEstimator
from vosbench.depth.prepare import NORMALIZATION_FILE, is_static_set, normalize_depth, prepare_static_depth
from vosbench.errors import DataError
from vosbench.train.datasets import StaticSource


def _static_set(root: Path, names=("a", "b", "c"), size=(20, 28)) -> Path:
    rng = np.random.default_rng(0)
    for n in names:
        write_frame(root / "images" / f"{n}.jpg", rng.integers(0, 255, (*size, 3)).astype(np.uint8))
        m = np.zeros(size, np.uint8)
        m[4:12, 5:15] = 1
        write_mask(root / "masks" / f"{n}.png", m)
    return root


def _maps(folder: Path, names=("a", "b", "c"), size=(20, 28)) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    raw = {n: rng.uniform(0, 1, size).astype(np.float32) * (i + 1) for i, n in enumerate(names)}
    for n, d in raw.items():
        np.save(folder / f"{n}.npy", d)
    return raw


def test_each_image_gets_its_own_range_and_a_record(tmp_path: Path) -> None:
    root = _static_set(tmp_path / "static")
    raw = _maps(tmp_path / "mine")
    assert is_static_set(root) and not is_static_set(tmp_path)
    summary = prepare_static_depth(root, FolderDepthEstimator(tmp_path / "mine"))
    assert summary.frames_written == 3
    record = json.loads((root / "depth" / NORMALIZATION_FILE).read_text())
    for n, d in raw.items():
        low, high = np.percentile(d, [1.0, 99.0])
        assert record["images"][n] == pytest.approx([low, high])
        np.testing.assert_allclose(read_depth(root / "depth" / f"{n}.png"), normalize_depth(d, low, high),
                                   atol=1 / 65535)
    # per-image scaling: image c (raw values 3x a's) is not brighter than a once normalised
    assert abs(read_depth(root / "depth" / "c.png").mean() - read_depth(root / "depth" / "a.png").mean()) < 0.1
    # the pretraining source reads them
    src = StaticSource.from_folder(root)
    frame = src.read_image(np.random.default_rng(0), depth=True)
    assert frame.depth is not None and frame.depth.shape == (20, 28)


def test_rerun_skips_overwrite_redoes_and_another_estimator_is_refused(tmp_path: Path) -> None:
    root = _static_set(tmp_path / "static")
    _maps(tmp_path / "mine")
    prepare_static_depth(root, FolderDepthEstimator(tmp_path / "mine"))
    before = (root / "depth" / "a.png").stat().st_mtime_ns
    again = prepare_static_depth(root, FolderDepthEstimator(tmp_path / "mine"))
    assert again.frames_written == 0 and (root / "depth" / "a.png").stat().st_mtime_ns == before
    _maps(tmp_path / "other")
    with pytest.raises(DataError, match="--overwrite"):
        prepare_static_depth(root, FolderDepthEstimator(tmp_path / "other"))
    redone = prepare_static_depth(root, FolderDepthEstimator(tmp_path / "other"), overwrite=True)
    assert redone.frames_written == 3
    assert json.loads((root / "depth" / NORMALIZATION_FILE).read_text())["estimator"]["folder"].endswith("other")


def test_missing_map_stops_with_the_record_of_what_was_written(tmp_path: Path) -> None:
    root = _static_set(tmp_path / "static")
    _maps(tmp_path / "mine", names=("a",))  # no maps for b and c
    est = FolderDepthEstimator(tmp_path / "mine")
    est.batch_size = 1  # a is written before b fails
    with pytest.raises(DataError, match="b"):
        prepare_static_depth(root, est)
    assert not (root / "depth" / "b.png").exists()
    assert list(json.loads((root / "depth" / NORMALIZATION_FILE).read_text())["images"]) == ["a"]


def test_cli_on_a_static_set(tmp_path: Path) -> None:
    root = _static_set(tmp_path / "static")
    _maps(tmp_path / "mine")
    res = CliRunner().invoke(app, ["prepare", "depth", "--data", str(root), "--estimator", f"folder:{tmp_path / 'mine'}"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (root / "depth").glob("*.png")) == ["a.png", "b.png", "c.png"]
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    res = CliRunner().invoke(app, ["prepare", "depth", "--data", str(empty), "--estimator", f"folder:{tmp_path}"])
    assert res.exit_code == 1 and "no images" in res.output
