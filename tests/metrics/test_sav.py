"""`--task sav`: each rule of SAM 2's SA-V evaluator on hand-computed masks, the per-object layout,
and one-line refusals (exit 1) of malformed SA-V inputs."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.metrics.test_cli_evaluate import APP
from vosbench.errors import DataError
from vosbench.metrics import evaluate_results

runner = CliRunner()
SHAPE = (12, 16)  # diagonal 20: boundary tolerance ceil(0.008 * 20) = 1 pixel




def _png(path: Path, mask: np.ndarray, value: int = 1, mode: str = "P") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(mask, np.uint8) * value, mode).save(path)


def _box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[y0:y1, x0:x1] = True
    return m


EMPTY = np.zeros(SHAPE, bool)
SQUARE = _box(2, 4, 2, 4)  # 4 pixels


def _write(root: Path, videos: dict[str, dict[str, list[np.ndarray]]], *, frames: bool = False, listed=None) -> Path:
    """``videos``: video -> object folder -> masks of its annotated frames 00000, 00004, ..."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sav_val.txt").write_text("".join(f"{v}\n" for v in (listed if listed is not None else videos)))
    for video, objects in videos.items():
        for obj, masks in objects.items():
            for i, m in enumerate(masks):
                _png(root / "Annotations_6fps" / video / obj / f"{4 * i:05d}.png", m, 255, "L")
        if frames:
            n = 4 * (max(len(m) for m in objects.values()) - 1) + 1
            (root / "JPEGImages_24fps" / video).mkdir(parents=True, exist_ok=True)
            for t in range(n):
                Image.new("RGB", SHAPE[::-1]).save(root / "JPEGImages_24fps" / video / f"{t:05d}.jpg")
    return root


def _results(folder: Path, videos: dict[str, dict[str, list[np.ndarray]]]) -> Path:
    for video, objects in videos.items():
        for obj, masks in objects.items():
            for i, m in enumerate(masks):
                _png(folder / video / obj / f"{4 * i:05d}.png", m)
    return folder


def _score(tmp_path, gt, pred):
    root = _write(tmp_path / "sav", gt)
    res = _results(tmp_path / "res", pred)
    result = evaluate_results(root, res, "val", task="sav", workers=1, write_csv=False)
    return {(o.sequence, o.object_id): (o.j.mean, o.f.mean) for o in result.objects}, result


def test_first_and_last_annotated_frames_are_not_scored(tmp_path):
    gt = {"v": {"000": [SQUARE, SQUARE, SQUARE]}}
    pred = {"v": {"000": [EMPTY, SQUARE, EMPTY]}}  # wrong only where not scored
    scores, _ = _score(tmp_path, gt, pred)
    assert scores == {("v", 0): (1.0, 1.0)}


def test_object_joins_on_first_frame_where_gt_or_prediction_shows_it(tmp_path):
    # object 000: empty in both on frame 1, then found exactly on 2 and 3 -> frame 1 not averaged in
    # object 001: prediction shows it on frame 1 where the GT is empty -> J = F = 0 there, counted
    late = [EMPTY, EMPTY, SQUARE, SQUARE, SQUARE]
    gt = {"v": {"000": late, "001": late}}
    pred = {"v": {"000": [EMPTY, EMPTY, SQUARE, SQUARE, EMPTY], "001": [EMPTY, SQUARE, SQUARE, SQUARE, EMPTY]}}
    scores, _ = _score(tmp_path, gt, pred)
    assert scores[("v", 0)] == (1.0, 1.0)
    assert scores[("v", 1)] == pytest.approx((2 / 3, 2 / 3))


def test_two_empty_masks_after_the_start_score_one(tmp_path):
    gt = {"v": {"000": [SQUARE, SQUARE, EMPTY, SQUARE, SQUARE]}}
    pred = {"v": {"000": [SQUARE, EMPTY, EMPTY, SQUARE, SQUARE]}}  # frame 1 missed (0), frame 2 both empty (1)
    scores, _ = _score(tmp_path, gt, pred)
    assert scores[("v", 0)] == pytest.approx((2 / 3, 2 / 3))


def test_jaccard_and_boundary_by_hand(tmp_path):
    # GT 2x2 square; prediction shifted one pixel right: J = 2 / 6; every boundary pixel lies within
    # the 1-pixel tolerance of the other boundary, so F = 1
    shifted = _box(2, 4, 3, 5)
    wide = _box(2, 4, 2, 6)  # 2x4: J = 4 / 8
    gt = {"v": {"000": [SQUARE] * 3, "001": [SQUARE] * 3}}
    pred = {"v": {"000": [SQUARE, shifted, SQUARE], "001": [SQUARE, wide, SQUARE]}}
    scores, _ = _score(tmp_path, gt, pred)
    assert scores[("v", 0)] == pytest.approx((1 / 3, 1.0))
    assert scores[("v", 1)][0] == pytest.approx(0.5)


def test_overlapping_objects_are_scored_each_on_its_own_mask(tmp_path):
    person = _box(1, 10, 2, 12)
    hand = _box(3, 5, 4, 6)  # inside the person
    gt = {"v": {"000": [person] * 3, "001": [hand] * 3}}
    scores, _ = _score(tmp_path, gt, gt)
    assert scores == {("v", 0): (1.0, 1.0), ("v", 1): (1.0, 1.0)}


def test_object_absent_from_every_scored_gt_frame_is_not_reported(tmp_path):
    gt = {"v": {"000": [SQUARE, EMPTY, SQUARE], "001": [SQUARE] * 3}}
    pred = {"v": {"000": [SQUARE, SQUARE, SQUARE], "001": [SQUARE] * 3}}
    scores, _ = _score(tmp_path, gt, pred)
    assert set(scores) == {("v", 1)}


def test_global_weighs_every_object_not_every_video(tmp_path):
    # video a: one object, J = 0; video b: three objects, J = 1 -> global J = 3/4 (a per-video mean gives 1/2)
    gt = {"a": {"000": [SQUARE] * 3}, "b": {f"{k:03d}": [SQUARE] * 3 for k in range(3)}}
    pred = {"a": {"000": [SQUARE, EMPTY, SQUARE]}, "b": gt["b"]}
    _, result = _score(tmp_path, gt, pred)
    assert result.summary.j_mean == pytest.approx(0.75)
    assert result.extra["J"] == pytest.approx(75.0)
    assert result.extra["J&F"] == pytest.approx((result.extra["J"] + result.extra["F"]) / 2)


def test_cli_prints_the_global_values_once_in_percent(tmp_path):
    gt = {"a": {"000": [SQUARE] * 3}, "b": {f"{k:03d}": [SQUARE] * 3 for k in range(3)}}
    root = _write(tmp_path / "sav", gt)
    res = _results(tmp_path / "res", {"a": {"000": [SQUARE, EMPTY, SQUARE]}, "b": gt["b"]})
    out = runner.invoke(APP, ["evaluate", "--data", str(root), "--results", str(res), "-j", "1"])
    assert out.exit_code == 0, out.output
    assert "75.0" in out.output and "7500" not in out.output and "task: SA-V (detected: sav_val.txt)" in out.output


def test_results_in_a_zip_with_a_top_folder(tmp_path):
    gt = {"v": {"000": [SQUARE] * 3}}
    root = _write(tmp_path / "sav", gt)
    res = _results(tmp_path / "res", {"v": {"000": [SQUARE, _box(2, 4, 2, 6), SQUARE]}})
    zpath = tmp_path / "sub.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(res.rglob("*.png")):
            zf.write(p, f"top/{p.relative_to(res).as_posix()}")
    result = evaluate_results(root, zpath, "val", task="sav", workers=1, write_csv=False)
    assert result.objects[0].j.mean == pytest.approx(0.5)


def _cli_error(tmp_path, gt, pred, *, frames=False, listed=None) -> str:
    root = _write(tmp_path / "sav", gt, frames=frames, listed=listed)
    res = _results(tmp_path / "res", pred)
    out = runner.invoke(APP, ["evaluate", "--data", str(root), "--results", str(res), "--task", "sav", "-j", "1"])
    assert out.exit_code == 1, out.output
    lines = [ln for ln in out.output.strip().splitlines() if ln.strip()]
    assert lines[0].startswith("error:")
    return " ".join(ln.strip() for ln in lines)


def test_two_values_in_prediction_png_one_line(tmp_path):
    gt = {"v": {"000": [SQUARE] * 3}}
    root = _write(tmp_path / "sav", gt)
    res = _results(tmp_path / "res", gt)
    bad = np.zeros(SHAPE, np.uint8)
    bad[2:4, 2:4], bad[6, 6] = 1, 2
    Image.fromarray(bad, "L").save(res / "v" / "000" / "00004.png")
    out = runner.invoke(APP, ["evaluate", "--data", str(root), "--results", str(res), "--task", "sav", "-j", "1"])
    assert out.exit_code == 1
    assert "00004.png" in out.output and "holds values 1, 2" in out.output
    with pytest.raises(DataError, match="one object per PNG"):
        evaluate_results(root, res, "val", task="sav", workers=1, write_csv=False)


def test_object_folder_the_ground_truth_lacks_is_refused(tmp_path):
    gt = {"v": {"000": [SQUARE] * 3}}
    msg = _cli_error(tmp_path, gt, {"v": {"000": [SQUARE] * 3, "007": [SQUARE] * 3}})
    assert "v/007" in msg and "ground truth lacks" in msg


def test_missing_prediction_frame_is_listed(tmp_path):
    gt = {"v": {"000": [SQUARE] * 4}}
    msg = _cli_error(tmp_path, gt, {"v": {"000": [SQUARE] * 2}})  # 00008 (scored) missing
    assert "v/000/00008.png" in msg


def test_annotation_without_a_frame_is_refused(tmp_path):
    gt = {"v": {"000": [SQUARE] * 3}}
    root = _write(tmp_path / "sav", gt, frames=True)
    (root / "JPEGImages_24fps" / "v" / "00008.jpg").unlink()  # the last annotated frame has no image
    res = _results(tmp_path / "res", gt)
    out = runner.invoke(APP, ["evaluate", "--data", str(root), "--results", str(res), "--task", "sav", "-j", "1"])
    assert out.exit_code == 1
    assert "00008" in out.output and "no frame among the 8" in out.output


def test_video_listed_without_annotations_is_refused(tmp_path):
    gt = {"v": {"000": [SQUARE] * 3}}
    msg = _cli_error(tmp_path, gt, gt, listed=["v", "w"])
    assert "no annotation folder for video 'w'" in msg


def test_missing_split_file_is_refused(tmp_path):
    gt = {"v": {"000": [SQUARE] * 3}}
    root = _write(tmp_path / "sav", gt)
    res = _results(tmp_path / "res", gt)
    out = runner.invoke(APP, ["evaluate", "--data", str(root), "--results", str(res), "--task", "sav", "--split", "test"])
    assert out.exit_code == 1
    assert "sav_test.txt: SA-V split file not found" in out.output


def test_object_with_two_annotated_frames_is_refused(tmp_path):
    msg = _cli_error(tmp_path, {"v": {"000": [SQUARE] * 2}}, {"v": {"000": [SQUARE] * 2}})
    assert "at least 3 needed" in msg


def test_label_map_results_are_refused_for_sav(tmp_path):
    gt = {"v": {"000": [SQUARE] * 3}}
    root = _write(tmp_path / "sav", gt)
    res = tmp_path / "res"
    for i in range(3):
        _png(res / "v" / f"{4 * i:05d}.png", SQUARE)
    with pytest.raises(DataError, match="no predictions found"):
        evaluate_results(root, res, "val", task="sav", workers=1, write_csv=False)


@pytest.mark.slow
def test_equal_to_sam2_sav_evaluator(tmp_path):
    """benchmarks/sav_crosscheck.py against SAM 2's sav_dataset/ (set SAV_EVALUATOR to that folder)."""
    import os
    import subprocess
    import sys

    reference = os.environ.get("SAV_EVALUATOR")
    if not reference or not Path(reference, "utils", "sav_benchmark.py").is_file():
        pytest.skip("SAV_EVALUATOR does not name SAM 2's sav_dataset/ folder")
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "sav_crosscheck.py"
    out = subprocess.run([sys.executable, str(script), "--reference", reference, "--work", str(tmp_path), "--videos", "6"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
