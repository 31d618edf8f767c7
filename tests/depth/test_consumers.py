"""D-STM training and inference read ``Depth/``; missing maps fail early, naming the folder and the command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vosbench.data.davis import DavisDataset
from vosbench.depth.estimators import FolderDepthEstimator
from vosbench.depth.prepare import prepare_depth
from vosbench.errors import DataError
from vosbench.train.config import AugmentSection, DataSection
from vosbench.train.datasets import ClipDataset, open_sources


def _data(root: Path) -> DataSection:
    return DataSection(root=str(root), split="train", crop=(16, 16), short_side=(16, 20), max_objects=2,
                       samples_per_epoch=2)


def test_depth_training_refuses_missing_depth_before_any_clip(make_davis_root: Callable[..., Path]) -> None:
    root = make_davis_root({"a": (4, 1)}, split="train", size=(16, 16))
    data = _data(root)
    with pytest.raises(DataError, match=r"Depth/480p/a does not exist; create it with `vosbench prepare depth "
                                         r"--data .* --split train --resolution 480p --estimator"):
        ClipDataset(open_sources(data), data, AugmentSection(), depth=True)
    ClipDataset(open_sources(data), data, AugmentSection(), depth=False)  # RGB models do not need it


def test_depth_training_reads_prepared_maps(make_davis_root: Callable[..., Path], tmp_path: Path) -> None:
    root = make_davis_root({"a": (4, 1)}, split="train", size=(16, 16))
    (tmp_path / "m" / "a").mkdir(parents=True)
    for t in range(4):
        np.save(tmp_path / "m" / "a" / f"{t:05d}.npy", np.full((16, 16), float(t), np.float32))
    prepare_depth(root, "train", "480p", FolderDepthEstimator(tmp_path / "m"))
    data = _data(root)
    ds = ClipDataset(open_sources(data), data, AugmentSection(), depth=True)
    ds.set_epoch(0, 1)
    d = ds[0]["depth"]
    assert tuple(d.shape) == (3, 1, 16, 16) and 0.0 <= float(d.min()) and float(d.max()) <= 1.0
    assert len({round(float(d[i].mean()), 3) for i in range(3)}) > 1  # per-frame maps, one per-video scale


def test_inference_missing_depth_names_folder_and_command(make_davis_root: Callable[..., Path]) -> None:
    from vosbench.infer.run import _missing_depth

    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    seq = DavisDataset(root, "val", "480p").sequence("alpha")
    msg = str(_missing_depth(seq))
    assert str(root / "Depth" / "480p" / "alpha") in msg and "vosbench prepare depth --data" in msg
    assert "\n" not in msg


def test_layout_without_depth_folder_says_so() -> None:
    from vosbench.data.davis import VideoSequence

    seq = VideoSequence(name="yt1", frame_paths=(Path("x/00000.jpg"),))  # e.g. a YouTube-VOS sequence
    with pytest.raises(DataError, match=r"'yt1': this dataset layout has no Depth/ folder.*vosbench prepare depth"):
        seq.depth(0)
