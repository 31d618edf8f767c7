"""DAVIS-2016, late objects, YouTube-VOS, MOSE and LVOS: layouts, rules and cross-checks.

vos-benchmark (its Evaluator, fed the files as PIL reads them) is the reference for DAVIS-2016
and late objects; the literal full-frame J/F of tests/metrics/reference.py for the others.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from vos_benchmark import evaluator as vos_evaluator

from tests.metrics.helpers import moving_objects, perturb, write_davis, write_results
from tests.metrics.reference import reference_f, reference_j
from vosbench.data.imageio import write_mask
from vosbench.errors import DataError
from vosbench.metrics import evaluate_results


def _grey(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8), mode="L").save(path)


def _vos_benchmark(gt_dir: Path, pred_dir: Path) -> tuple[dict, dict]:
    """vos-benchmark's per-object means (fractions) for one sequence, reading the files itself."""
    ev = vos_evaluator.Evaluator(name=gt_dir.name)
    for p in sorted(gt_dir.glob("*.png"))[1:-1]:
        ev.feed_frame(np.array(Image.open(pred_dir / p.name)), np.array(Image.open(p)))
    iou, boundary = ev.conclude()
    return {k: v / 100 for k, v in iou.items()}, {k: v / 100 for k, v in boundary.items()}


def _davis2016(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, Path]:
    """DAVIS-2016 as distributed: grey 0/255 masks, ImageSets/480p/val.txt of frame lines; grey 0/255 predictions.
    The object is absent from the first scored frames of one sequence, and predicted there in another."""
    root, res = tmp_path / "davis2016", tmp_path / "res2016"
    lines = []
    for i, (size, n) in enumerate([((48, 64), 7), ((90, 160), 9), ((60, 60), 6)]):
        name = f"seq{i}"
        masks = [np.where(m > 0, 255, 0).astype(np.uint8) for m in moving_objects(n, 1, size, rng)]
        if i in (1, 2):
            for t in (1, 2):
                masks[t][:] = 0  # the object is absent from the first scored frames
        for t, m in enumerate(masks):
            _grey(root / "Annotations" / "480p" / name / f"{t:05d}.png", m)
            pred = np.where(perturb(np.where(m > 0, 1, 0).astype(np.uint8), rng) > 0, 255, 0).astype(np.uint8)
            if i == 1 and t in (1, 2):
                pred[:] = 0  # ... and not predicted there: not scored
            if i == 2 and t == 2:
                pred[:] = 0
                pred[:5, :5] = 255  # ... but predicted on frame 2: scored from there (J = 0)
            _grey(res / name / f"{t:05d}.png", pred)
            lines.append(f"/JPEGImages/480p/{name}/{t:05d}.jpg /Annotations/480p/{name}/{t:05d}.png")
    (root / "ImageSets" / "480p").mkdir(parents=True)
    (root / "ImageSets" / "480p" / "val.txt").write_text("\n".join(lines) + "\n")
    return root, res


def test_davis2016_as_distributed_equals_vos_benchmark(tmp_path):
    root, res = _davis2016(tmp_path, np.random.default_rng(7))
    result = evaluate_results(root, res, workers=1, json_path=tmp_path / "s.json")
    assert result.task == "davis2016" and "0 and 255" in result.detected
    assert [o.name for o in result.objects] == ["seq0_1", "seq1_1", "seq2_1"]  # one object per sequence
    for o in result.objects:
        j_ref, f_ref = _vos_benchmark(root / "Annotations" / "480p" / o.sequence, res / o.sequence)
        assert o.j.mean == pytest.approx(j_ref[255], abs=1e-9)
        assert o.f.mean == pytest.approx(f_ref[255], abs=1e-9)
    # the object of seq1 is absent (in GT and prediction) on frames 1-2: not scored there
    s1, s2 = result.sequences[1:]
    assert np.isnan(s1.j[0, :2]).all() and not np.isnan(s1.j[0, 2:]).any()
    assert np.isnan(s2.j[0, 0]) and s2.j[0, 1] == 0.0
    # the official CSVs and the JSON keep their shape
    assert (res / "global_results-val.csv").read_text().startswith("J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n")
    assert (res / "per-sequence_results-val.csv").read_text().splitlines()[1].startswith("seq0_1,")
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["task"] == "davis2016" and len(doc["objects"][1]["J_per_frame"]) == len(s1.frames) - 2


def test_davis2016_forced_on_palette_masks_written_with_id_1(tmp_path):
    rng = np.random.default_rng(1)
    gt = {"a": moving_objects(6, 1, (40, 50), rng)}
    pred = {"a": [perturb(m, rng) for m in gt["a"]]}
    root = write_davis(tmp_path / "d", gt)
    res = write_results(tmp_path / "r", pred)
    auto = evaluate_results(root, res, workers=1, write_csv=False)
    forced = evaluate_results(root, res, workers=1, write_csv=False, task="davis2016")
    assert (auto.task, forced.task) == ("davis2017", "davis2016")
    # one object visible everywhere: both rules give the same numbers
    assert forced.objects[0].j.mean == pytest.approx(auto.objects[0].j.mean, abs=1e-12)


def test_late_objects_are_detected_and_equal_vos_benchmark(tmp_path):
    rng = np.random.default_rng(5)
    gt, pred = {}, {}
    for name, size in (("late", (60, 80)), ("plain", (48, 64))):
        masks = moving_objects(8, 3, size, rng)
        if name == "late":
            for t in range(4):  # object 3 first appears on frame 4, object 2 on frame 2
                masks[t][masks[t] == 3] = 0
            for t in range(2):
                masks[t][masks[t] == 2] = 0
        gt[name] = masks
        pred[name] = [perturb(m, rng) for m in masks]
        pred[name] = [np.where(np.isin(p, np.unique(np.concatenate([m.ravel() for m in masks]))), p, 0).astype(np.uint8)
                      for p in pred[name]]
    root = write_davis(tmp_path / "d", gt)
    res = write_results(tmp_path / "r", pred)
    with pytest.raises(DataError, match="predicted object id"):  # as the official toolkit refuses them
        evaluate_results(root, res, workers=1, write_csv=False, task="davis2017")
    official = evaluate_results(root, res, workers=1, write_csv=False, task="davis2017", ignore_extra_ids=True)
    assert [o.name for o in official.objects if o.sequence == "late"] == ["late_1"]  # the official rules ignore them
    result = evaluate_results(root, res, workers=1, write_csv=False)
    assert result.task == "late" and "late: id(s) 2" in result.detected
    names = [o.name for o in result.objects]
    assert names == ["late_1", "late_2", "late_3", "plain_1", "plain_2", "plain_3"]
    for o in result.objects:
        j_ref, f_ref = _vos_benchmark(root / "Annotations" / "480p" / o.sequence, res / o.sequence)
        assert o.j.mean == pytest.approx(j_ref[o.object_id], abs=1e-9)
        assert o.f.mean == pytest.approx(f_ref[o.object_id], abs=1e-9)


def test_grey_and_1bit_predictions_equal_palette_ones(tmp_path):
    rng = np.random.default_rng(2)
    gt = {"a": moving_objects(5, 1, (30, 40), rng)}
    pred = {"a": [perturb(m, rng) for m in gt["a"]]}
    root = write_davis(tmp_path / "d", gt)
    palette = evaluate_results(root, write_results(tmp_path / "p", pred), workers=1, write_csv=False)
    for mode in ("L", "1"):
        folder = tmp_path / mode
        for t, m in enumerate(pred["a"]):
            (folder / "a").mkdir(parents=True, exist_ok=True)
            Image.fromarray(m.astype(bool) if mode == "1" else m, mode=None if mode == "1" else "L").save(folder / "a" / f"{t:05d}.png")
        assert Image.open(folder / "a" / "00001.png").mode == mode
        other = evaluate_results(root, folder, workers=1, write_csv=False)
        assert other.summary == palette.summary


@pytest.mark.parametrize("kind", ["16-bit", "RGB"])
def test_16bit_and_rgb_predictions_are_refused_naming_the_file(tmp_path, kind):
    rng = np.random.default_rng(2)
    gt = {"a": moving_objects(4, 1, (30, 40), rng)}
    root = write_davis(tmp_path / "d", gt)
    res = write_results(tmp_path / "r", gt)
    bad = res / "a" / "00001.png"
    if kind == "16-bit":
        Image.fromarray(gt["a"][1].astype(np.uint16)).save(bad)
    else:
        Image.fromarray(np.stack([gt["a"][1]] * 3, -1)).save(bad)
    with pytest.raises(DataError) as err:
        evaluate_results(root, res, workers=1, write_csv=False)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{bad}:") and kind in msg


def test_void_id_in_a_prediction_is_refused(tmp_path):
    rng = np.random.default_rng(4)
    gt = {"a": moving_objects(4, 2, (30, 40), rng)}
    pred = {"a": [m.copy() for m in gt["a"]]}
    pred["a"][2][0, 0] = 255
    root = write_davis(tmp_path / "d", gt)
    res = write_results(tmp_path / "r", pred)
    with pytest.raises(DataError, match=r"a/00002\.png: predicted object id\(s\) 255 but sequence 'a' has 2 object\(s\) .*255 is void"):
        evaluate_results(root, res, workers=1, write_csv=False)


# --- YouTube-VOS, MOSE, LVOS -------------------------------------------------------------------


def _frames_and_masks(folder: Path, name: str, masks: list[np.ndarray], stems: list[str], annotate=None) -> None:
    for stem, m in zip(stems, masks):
        img = Image.fromarray(np.full((*m.shape, 3), 90, np.uint8))
        (folder / "JPEGImages" / name).mkdir(parents=True, exist_ok=True)
        img.save(folder / "JPEGImages" / name / f"{stem}.jpg")
        if annotate is None or stem in annotate:
            write_mask(folder / "Annotations" / name / f"{stem}.png", m)


def _late_masks(rng, n=7, size=(40, 56)) -> list[np.ndarray]:
    masks = moving_objects(n, 2, size, rng)
    for t in range(3):  # object 2 appears on frame 3
        masks[t][masks[t] == 2] = 0
    return masks


def _ref_means(gts, preds, oid, frames) -> tuple[float, float]:
    j = [reference_j(gts[t] == oid, preds[t] == oid) for t in frames]
    f = [reference_f(gts[t] == oid, preds[t] == oid) for t in frames]
    return float(np.mean(j)), float(np.mean(f))


def test_youtube_vos_scores_each_object_after_its_first_appearance_with_seen_unseen(tmp_path):
    rng = np.random.default_rng(11)
    root = tmp_path / "ytvos"
    masks = _late_masks(rng)
    preds = [perturb(m, rng) for m in masks]
    stems = [f"{5 * t:05d}" for t in range(len(masks))]
    _frames_and_masks(root / "valid", "vid", masks, stems)
    meta = {"videos": {"vid": {"objects": {"1": {"category": "cat", "frames": stems},
                                           "2": {"category": "zebra", "frames": stems[3:]}}}}}
    (root / "valid" / "meta.json").write_text(json.dumps(meta))
    (root / "train").mkdir()
    (root / "train" / "meta.json").write_text(json.dumps({"videos": {"t": {"objects": {"1": {"category": "cat", "frames": ["00000"]}}}}}))
    res = tmp_path / "res"
    for stem, p in zip(stems, preds):
        write_mask(res / "vid" / f"{stem}.png", p)
    result = evaluate_results(root, res, "valid", workers=1, write_csv=False)
    assert result.task == "youtube-vos"
    o1, o2 = result.objects
    assert _ref_means(masks, preds, 1, range(1, 7)) == pytest.approx((o1.j.mean, o1.f.mean), abs=1e-12)
    assert _ref_means(masks, preds, 2, range(4, 7)) == pytest.approx((o2.j.mean, o2.f.mean), abs=1e-12)
    extra = result.extra
    assert extra["J-seen"] == o1.j.mean and extra["F-unseen"] == o2.f.mean
    assert extra["Overall"] == pytest.approx((o1.j.mean + o1.f.mean + o2.j.mean + o2.f.mean) / 4)


def test_mose_layout_scores_first_frame_objects_on_frames_1_to_t_minus_2(tmp_path):
    rng = np.random.default_rng(12)
    root = tmp_path / "mose"
    masks = moving_objects(6, 2, (36, 48), rng)
    preds = [perturb(m, rng) for m in masks]
    stems = [f"{t:05d}" for t in range(6)]
    _frames_and_masks(root / "train", "v", masks, stems)
    write_results(tmp_path / "res", {"v": preds})
    result = evaluate_results(root, tmp_path / "res", "train", workers=1, write_csv=False)
    assert result.task == "mose" and [o.name for o in result.objects] == ["v_1", "v_2"]
    for o in result.objects:
        assert _ref_means(masks, preds, o.object_id, range(1, 5)) == pytest.approx((o.j.mean, o.f.mean), abs=1e-12)


def test_lvos_frame_ranges_and_variance(tmp_path):
    rng = np.random.default_rng(13)
    root = tmp_path / "lvos"
    masks = _late_masks(rng, n=8)
    preds = [perturb(m, rng) for m in masks]
    stems = [f"{t + 1:08d}" for t in range(8)]
    _frames_and_masks(root / "valid", "v", masks, stems)
    meta = {"videos": {"v": {"objects": {"1": {"frame_range": {"start": stems[0], "end": stems[7], "frame_nums": 7}},
                                         "2": {"frame_range": {"start": stems[3], "end": stems[7], "frame_nums": 4}}}}}}
    (root / "valid" / "valid_meta.json").write_text(json.dumps(meta))
    (root / "valid" / "unseen_videos.txt").write_text("v\n")
    res = tmp_path / "res"
    for stem, p in zip(stems, preds):
        write_mask(res / "v" / f"{stem}.png", p)
    result = evaluate_results(root, res, "valid", workers=1, write_csv=False)
    assert result.task == "lvos"
    o1, o2 = result.objects
    assert _ref_means(masks, preds, 1, range(0, 7)) == pytest.approx((o1.j.mean, o1.f.mean), abs=1e-12)
    assert _ref_means(masks, preds, 2, range(3, 7)) == pytest.approx((o2.j.mean, o2.f.mean), abs=1e-12)

    def v(oid, frames):
        jf = [(reference_j(masks[t] == oid, preds[t] == oid) + reference_f(masks[t] == oid, preds[t] == oid)) / 2 for t in frames]
        mean = sum(jf) / len(jf)
        return math.sqrt(round(sum((mean - x) ** 2 for x in jf) / len(jf), 4))

    assert result.extra["V-Mean"] == pytest.approx((v(1, range(0, 7)) + v(2, range(3, 7))) / 2, abs=1e-12)
    assert "J-unseen" in result.extra and "J-seen" not in result.extra


def test_cli_prints_the_task_used(tmp_path):
    from typer.testing import CliRunner

    from vosbench_cli.main import app

    root, res = _davis2016(tmp_path, np.random.default_rng(3))
    out = CliRunner().invoke(app, ["evaluate", "--data", str(root), "--results", str(res), "-j", "1"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "task: DAVIS-2016 (detected: every first annotation holds only 0 and 255" in text
    forced = CliRunner().invoke(app, ["evaluate", "--data", str(root), "--results", str(res), "-j", "1", "--task", "davis2016"])
    assert forced.exit_code == 0 and "task: DAVIS-2016 (given with --task)" in " ".join(forced.output.split())


@pytest.mark.slow
def test_real_clips_as_davis2016_equal_vos_benchmark(real_vos_root, tmp_path):
    """The real DAVIS clips turned into DAVIS-2016 as distributed (every object = 255, grey), with
    eroded predictions in the same encoding: every sequence equals vos-benchmark to 1e-9."""
    import cv2

    root, res = tmp_path / "d16", tmp_path / "r16"
    lines = []
    for name in (real_vos_root / "ImageSets" / "2017" / "val.txt").read_text().split():
        for p in sorted((real_vos_root / "Annotations" / "480p" / name).glob("*.png")):
            g = np.where(np.array(Image.open(p)) > 0, 255, 0).astype(np.uint8)
            _grey(root / "Annotations" / "480p" / name / p.name, g)
            _grey(res / name / p.name, cv2.erode(g, np.ones((7, 7), np.uint8)))
            lines.append(f"/JPEGImages/480p/{name}/{p.stem}.jpg /Annotations/480p/{name}/{p.name}")
    (root / "ImageSets" / "480p").mkdir(parents=True)
    (root / "ImageSets" / "480p" / "val.txt").write_text("\n".join(lines) + "\n")
    result = evaluate_results(root, res, workers=2, write_csv=False)
    assert result.task == "davis2016" and len(result.objects) == 5
    for o in result.objects:
        j_ref, f_ref = _vos_benchmark(root / "Annotations" / "480p" / o.sequence, res / o.sequence)
        assert o.j.mean == pytest.approx(j_ref[255], abs=1e-9)
        assert o.f.mean == pytest.approx(f_ref[255], abs=1e-9)
