"""Split overview and contact sheet (vosbench dataset-info's library side)."""

from __future__ import annotations

import numpy as np
import pytest

from vosbench.data.imageio import DAVIS_PALETTE, read_frame
from vosbench.data.overview import contact_sheet, describe_split, overlay_mask
from vosbench.errors import ConfigError


def test_describe_plain_davis_root_has_unknown_flags(make_davis_root):
    root = make_davis_root({"alpha": (5, 2), "beta": (4, 1)})
    infos = describe_split(root, "val")
    assert [i.name for i in infos] == ["alpha", "beta"]
    assert [i.object_ids for i in infos] == [(1, 2), (1,)]
    assert infos[0].frames == 5 and infos[0].annotated_frames == 5 and (infos[0].height, infos[0].width) == (48, 64)
    assert all(i.lookalike is None and i.distractors is None and not i.depth for i in infos)


def test_describe_synthetic_root_reads_manifest(tiny_synthetic_root):
    infos = {i.name: i for i in describe_split(tiny_synthetic_root, "train")}
    assert any(i.lookalike for i in infos.values())
    for i in infos.values():
        assert i.depth and i.lookalike is not None and i.distractors is not None
        assert set(i.lookalike_ids) <= set(i.object_ids)
        assert bool(i.lookalike_ids) == i.lookalike


def test_overlay_colours_objects_only():
    frame = np.full((8, 8, 3), 100, np.uint8)
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 2
    out = overlay_mask(frame, mask, alpha=0.5)
    blended = np.round(0.5 * 100 + 0.5 * DAVIS_PALETTE[2].astype(float))
    assert np.array_equal(out[3, 3], blended)  # inside: half object colour
    assert np.array_equal(out[2, 4], DAVIS_PALETTE[2])  # outline in the object's colour
    assert out[0, 0].tolist() == [100, 100, 100] and out[7, 7].tolist() == [100, 100, 100]


def test_contact_sheet_grid(make_davis_root, tmp_path):
    root = make_davis_root({f"s{i}": (3, 1) for i in range(5)})
    out = contact_sheet(root, tmp_path / "sheet.png", "val", columns=2, thumb_width=64)
    sheet = read_frame(out)
    assert sheet.shape[1] == 2 * (64 + 4) + 4  # two columns
    assert sheet.shape[0] == 3 * (18 + 48 + 4) + 4  # three rows of label band + 48-pixel thumbnails
    with pytest.raises(ConfigError, match="PNG"):
        contact_sheet(root, tmp_path / "sheet.jpg", "val")
    assert not (tmp_path / "sheet.jpg").exists()
