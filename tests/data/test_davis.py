import json

import numpy as np
import pytest

from vosbench.data.davis import DavisDataset, build_manifest, write_manifest
from vosbench.data.imageio import write_mask
from vosbench.errors import DataError


def test_reads_tiny_root(make_davis_root):
    root = make_davis_root({"alpha": (5, 2), "beta": (4, 1)})
    ds = DavisDataset(root, "val")
    assert ds.sequence_names == ["alpha", "beta"]
    seq = ds.sequence("alpha")
    assert seq.num_frames == 5 and seq.size == (48, 64)
    assert seq.object_ids == [1, 2]
    assert seq.frame(2).shape == (48, 64, 3)
    assert seq.mask(4).shape == (48, 64)
    assert ds.validate(full=True) == []


def test_real_davis_clips(real_vos_root):
    ds = DavisDataset(real_vos_root, "val")
    seq = ds.sequence("blackswan")
    assert seq.num_frames == 50 and seq.size == (480, 854)
    assert seq.object_ids == [1]
    assert set(np.unique(seq.mask(10))) <= {0, 1}
    assert ds.validate() == []


def test_missing_split_and_root(tmp_path, make_davis_root):
    with pytest.raises(DataError, match="dataset root not found"):
        DavisDataset(tmp_path / "nope")
    root = make_davis_root()
    with pytest.raises(DataError, match="test-dev.txt.*available: val"):
        DavisDataset(root, "test-dev")


def test_split_lists_sequence_without_frames(make_davis_root):
    root = make_davis_root({"alpha": (3, 1)})
    (root / "ImageSets/2017/val.txt").write_text("alpha\nghost\n")
    ds = DavisDataset(root, "val")
    with pytest.raises(DataError, match="ghost"):
        ds.sequence("ghost")
    problems = ds.validate()
    assert len(problems) == 1 and "ghost" in problems[0]


def test_validate_reports_every_problem(make_davis_root):
    root = make_davis_root({"a": (3, 1), "b": (3, 1), "c": (3, 1)})
    (root / "Annotations/480p/a/00000.png").unlink()
    write_mask(root / "Annotations/480p/b/00000.png", np.zeros((10, 10), np.uint8))
    (root / "Annotations/480p/c/00002.png").unlink()
    problems = DavisDataset(root, "val").validate()
    assert len(problems) == 3
    assert "first-frame annotation missing" in problems[0]
    assert "differs from frame size" in problems[1]
    assert "2 annotations for 3 frames" in problems[2]


def test_test_dev_style_first_frame_only(make_davis_root):
    root = make_davis_root({"a": (4, 2)}, split="test-dev", annotate="first")
    ds = DavisDataset(root, "test-dev")
    seq = ds.sequence("a")
    assert seq.has_mask(0) and not seq.has_mask(1) and seq.mask(1) is None
    assert ds.validate() == []


def test_depth_missing_names_folder_and_command(make_davis_root):
    seq = DavisDataset(make_davis_root(), "val").sequence("alpha")
    with pytest.raises(DataError, match=r"Depth/480p/alpha.*vosbench prepare depth --data"):
        seq.depth(0)


def test_manifest(make_davis_root, tmp_path):
    root = make_davis_root({"a": (3, 2)})
    make_davis_root({"t": (2, 1)}, split="train", root=root)
    man = build_manifest(root)
    assert man["splits"] == {"train": ["t"], "val": ["a"]}
    assert man["sequences"]["a"] == {
        "frames": 3, "annotated_frames": 3, "height": 48, "width": 64, "object_ids": [1, 2], "depth": False
    }
    write_manifest(tmp_path / "m.json", man)
    assert json.loads((tmp_path / "m.json").read_text()) == man


def test_unreadable_split_file_is_a_data_error(make_davis_root):
    root = make_davis_root({"a": (2, 1)})
    (root / "ImageSets/2017/val.txt").write_bytes(b"\xff\xfea\n")  # not UTF-8
    with pytest.raises(DataError, match=r"ImageSets/2017/val\.txt: cannot read the split file"):
        DavisDataset(root, "val").sequence_names
