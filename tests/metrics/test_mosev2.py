"""MOSEv2 (`--task mosev2`): each rule on hand-computed masks, the layout, and the evaluation files.

Expected values are worked out by hand in the comments (J's +1 smoothing, the two boundary
tolerances, the disappearance / reappearance segments); the footprint and the large-object F
are checked against scikit-image's ``disk`` and a literal full-frame OpenCV dilation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.morphology import disk

from tests.metrics.reference import reference_bmap
from vosbench.data.imageio import write_mask
from vosbench.errors import DataError
from vosbench.metrics import evaluate_results, open_benchmark
from vosbench.metrics.mosev2 import adaptive_radius, davis_radius, frame_values, segments, skimage_disk

S = (100, 100)  # diagonal 141.42: D = 1.131, DAVIS radius ceil(D) = 2


def _pixel(y: int, x: int, shape=S) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y, x] = True
    return m


def test_j_is_smoothed_and_one_when_both_empty():
    gt = np.zeros(S, bool)
    gt[10:12, 10:12] = True  # 4 pixels
    pred = np.zeros(S, bool)
    pred[10, 11:13] = True  # 2 pixels, 1 shared: (1 + 1) / (5 + 1)
    assert frame_values(gt, pred)[0] == pytest.approx(2 / 6)
    empty = np.zeros(S, bool)
    assert frame_values(empty, empty) == (1.0, 1.0, 1.0)
    three = np.zeros(S, bool)
    three[0, :3] = True  # GT empty, 3 predicted pixels: J = 1 / 4, F = 0 (precision 0)
    assert frame_values(empty, three) == (pytest.approx(0.25), 0.0, 0.0)
    # GT of 1 pixel, nothing predicted: J = 1 / 2, F = 0 (recall 0)
    assert frame_values(_pixel(5, 5), empty) == (pytest.approx(0.5), 0.0, 0.0)


def test_adaptive_tolerance_from_the_area_capped_at_davis():
    shape = (480, 854)
    d = 0.008 * math.hypot(480, 854)  # 7.837
    assert davis_radius(shape) == pytest.approx(d)
    assert adaptive_radius(1, shape) == 1  # ceil(0.1)
    assert adaptive_radius(100, shape) == 1  # ceil(1.0)
    assert adaptive_radius(101, shape) == 2
    assert adaptive_radius(4900, shape) == 7  # ceil(7.0) < D
    assert adaptive_radius(4901, shape) == pytest.approx(d)  # ceil(7.001) = 8, capped at D
    assert adaptive_radius(0, shape) == pytest.approx(d)  # empty GT: ceil(0.1 x diagonal), capped


def test_small_object_f_uses_davis_radius_and_f_new_the_area_radius():
    # GT pixel (50, 50), predicted pixel (50, 52). Boundaries (seg2bmap): each pixel's own and its
    # north, west and north-west neighbours: GT columns 49-50, prediction columns 51-52, rows 49-50.
    # F: radius ceil(1.131) = 2 matches every pixel (horizontal distance <= 2): F = 1.
    # F_new: area 1 -> radius ceil(0.1) = 1: only columns 50 and 51 meet, P = R = 2/4: F_new = 0.5.
    # J = (0 + 1) / (2 + 1).
    j, f, f_new = frame_values(_pixel(50, 50), _pixel(50, 52))
    assert (j, f, f_new) == (pytest.approx(1 / 3), 1.0, 0.5)


@pytest.mark.parametrize("radius", [1.131, 7.837207665999416, 2.5, 0.9, 3.0, 8])
def test_footprint_is_scikit_images_disk_for_any_radius(radius):
    np.testing.assert_array_equal(skimage_disk(radius), disk(radius))


def _literal_f(gt: np.ndarray, pred: np.ndarray, footprint: np.ndarray) -> float:
    """Full-frame boundaries, full-frame OpenCV dilation with ``footprint``, the DAVIS edge cases."""
    gb, pb = reference_bmap(gt).astype(np.uint8), reference_bmap(pred).astype(np.uint8)
    g_dil, p_dil = cv2.dilate(gb, footprint), cv2.dilate(pb, footprint)
    n_g, n_p = gb.sum(), pb.sum()
    precision, recall = np.sum(pb & g_dil) / n_p, np.sum(gb & p_dil) / n_g
    return float(2 * precision * recall / (precision + recall))


def test_large_object_f_is_capped_with_the_unrounded_davis_radius():
    # A 100x200 box at 480x854 (area 20000: ceil(0.1 x 141.4) = 15, capped at D = 7.837): F and
    # F_new both use disk(7.837), whose rows at -8 and +8 are empty, so a box predicted 8 rows
    # lower matches less than with DAVIS's radius 8.
    shape = (480, 854)
    gt = np.zeros(shape, bool)
    gt[100:200, 300:500] = True
    pred = np.roll(gt, 8, axis=0)
    j, f, f_new = frame_values(gt, pred)
    d = davis_radius(shape)
    assert f == f_new == pytest.approx(_literal_f(gt, pred, disk(d)), abs=1e-15)
    assert f < _literal_f(gt, pred, disk(8))
    assert j == pytest.approx((92 * 200 + 1) / (108 * 200 + 1))


def test_segments_by_hand():
    # scored frames:        0  1  2  3  4  5  6
    absent = np.array([0, 1, 1, 0, 0, 1, 0], bool)
    assert segments(absent) == ([(1, 3), (5, 6)], [(3, 5), (6, 7)])
    # away from the first scored frame: that run is no disappearance; the return is a reappearance
    assert segments(np.array([1, 1, 0, 0, 1], bool)) == ([(4, 5)], [(2, 4)])
    assert segments(np.array([0, 0, 0], bool)) == ([], [])
    assert segments(np.array([1, 1, 1], bool)) == ([], [])


def write_root(root: Path, videos: dict[str, tuple[list[np.ndarray], dict]], split: str = "valid") -> Path:
    """MOSEv2 split: annotations, black JPEG frames, meta.json (entries as given)."""
    meta = {}
    for name, (masks, entry) in videos.items():
        for t, m in enumerate(masks):
            write_mask(root / split / "Annotations" / name / f"{t:05d}.png", m)
            frame = root / split / "JPEGImages" / name / f"{t:05d}.jpg"
            frame.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(frame), np.zeros((*m.shape, 3), np.uint8))
        meta[name] = entry
    (root / split / "meta.json").write_text(json.dumps({"videos": meta}))
    return root


def _ids(*pixels: tuple[int, int, int]) -> np.ndarray:
    m = np.zeros(S, np.uint8)
    for oid, y, x in pixels:
        m[y, x] = oid
    return m


def hand_set(tmp_path: Path) -> tuple[Path, Path]:
    """One video, 5 frames (scored: 1..3), objects 1 and 2, each one pixel where present.

    object 1: frame 1 predicted 2 columns off (J 1/3, F 1, F_new 1/2), frame 2 absent and not
    predicted (1, 1, 1), frame 3 exact (1, 1, 1): J 7/9, F 1, F_new 5/6; disappearance [frame 2]
    (J&F_new 100), reappearance [frame 3] (100).
    object 2: absent on frames 1-2; frame 1 predicted with 3 pixels (J 1/4, F 0), frame 2 not
    predicted (1, 1), frame 3 missed (J 1/2, F 0): J 7/12, F = F_new = 1/3; no disappearance
    (away from the first scored frame), reappearance [frame 3] (J 1/2, F_new 0: 25).
    """
    gt = [_ids((1, 50, 50), (2, 20, 20)), _ids((1, 50, 50)), _ids(), _ids((1, 50, 50), (2, 20, 20)), _ids((1, 50, 50))]
    pred = [_ids((1, 50, 50), (2, 20, 20)), _ids((1, 50, 52), (2, 70, 10), (2, 70, 11), (2, 70, 12)), _ids(),
            _ids((1, 50, 50)), _ids()]
    root = write_root(tmp_path / "mosev2", {"vid": (gt, {"length": 5, "objects": {"1": {}, "2": {}}})})
    res = tmp_path / "res"
    for t, m in enumerate(pred):
        write_mask(res / "vid" / f"{t:05d}.png", m)
    return root, res


def test_hand_set_per_object_and_global(tmp_path):
    root, res = hand_set(tmp_path)
    result = evaluate_results(root, res, "valid", workers=1, json_path=tmp_path / "out.json")
    assert result.task == "mosev2"  # detected from meta.json's lengths
    out = json.loads((tmp_path / "out.json").read_text())
    obj = {o["name"]: o for o in out["objects"]}
    o1, o2 = obj["vid_1"], obj["vid_2"]
    assert list(o1)[3:6] == ["J", "F", "F_new"]
    assert o1["J"]["mean"] == pytest.approx(7 / 9)
    assert o1["F"]["mean"] == pytest.approx(1.0)
    assert o1["F_new"]["mean"] == pytest.approx(5 / 6)
    assert o1["F_new_per_frame"] == pytest.approx([0.5, 1.0, 1.0])
    assert o1["mosev2"]["disappear_J&F_new"] == pytest.approx(100)
    assert o1["mosev2"]["reappear_J&F_new"] == pytest.approx(100)
    assert o2["J"]["mean"] == pytest.approx(7 / 12)
    assert o2["F"]["mean"] == o2["F_new"]["mean"] == pytest.approx(1 / 3)
    assert o2["mosev2"]["disappear_J&F_new"] is None
    assert o2["mosev2"]["reappear_J&F_new"] == pytest.approx(25)
    b = out["benchmark"]
    j, f_new, f = (7 / 9 + 7 / 12) / 2, (5 / 6 + 1 / 3) / 2, (1 + 1 / 3) / 2
    assert list(b) == ["J&F_new", "J", "F_new", "disappear_J&F_new", "reappear_J&F_new", "F", "J&F"]
    assert b["J"] == pytest.approx(100 * j)
    assert b["F_new"] == pytest.approx(100 * f_new)
    assert b["F"] == pytest.approx(100 * f)
    assert b["J&F_new"] == pytest.approx(100 * (j + f_new) / 2)
    assert b["J&F"] == pytest.approx(100 * (j + f) / 2)
    assert b["disappear_J&F_new"] == pytest.approx(100)  # object 1 only
    assert b["reappear_J&F_new"] == pytest.approx(100 * ((1 + 0.5) / 2 + (1 + 0) / 2) / 2)  # 62.5
    # the CSVs keep the other tasks' shape: J and (the scorer's) F
    rows = (res / "per-sequence_results-valid.csv").read_text().splitlines()
    assert rows[0] == "Sequence,J-Mean,F-Mean"
    assert rows[1] == f"vid_1,{7 / 9:.3f},1.000"


def test_youtube_vos_meta_is_not_mosev2(tmp_path):
    root, _ = hand_set(tmp_path)
    meta = {"videos": {"vid": {"objects": {"1": {"category": "x", "frames": ["00000"]}}}}}
    (root / "valid" / "meta.json").write_text(json.dumps(meta))
    assert open_benchmark(root, "valid").task == "youtube-vos"
    meta["videos"]["vid"]["length"] = 5  # objects with frame lists and a length: MOSEv2
    (root / "valid" / "meta.json").write_text(json.dumps(meta))
    assert open_benchmark(root, "valid").task == "mosev2"


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["videos"].pop("vid"), "no entry for video 'vid'"),
    (lambda m: m["videos"]["vid"].update(length=6), "5 annotations"),
    (lambda m: m["videos"]["vid"].update(objects=["1", "x"]), '"objects" must map or list integer ids'),
])
def test_malformed_meta_is_one_error(tmp_path, edit, message):
    root, res = hand_set(tmp_path)
    path = root / "valid" / "meta.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match=message):
        evaluate_results(root, res, "valid", workers=1, task="mosev2")


def test_predicted_object_the_ground_truth_lacks(tmp_path):
    root, res = hand_set(tmp_path)
    write_mask(res / "vid" / "00002.png", _ids((3, 1, 1)))
    with pytest.raises(DataError, match=r"predicted object id\(s\) 3 .*ids 1, 2 from meta.json"):
        evaluate_results(root, res, "valid", workers=1)
