"""Agreement with vos-benchmark (on sequences where every object is visible in frame 1) and with
the literal official formulation on the real DAVIS clips."""

import cv2
import numpy as np
import pytest

# pinned in the `test` extra: a missing install fails these tests instead of silently skipping them
from vos_benchmark import evaluator as vos_evaluator

from tests.metrics.helpers import moving_objects, perturb, write_davis, write_results
from tests.metrics.reference import reference_f, reference_j
from vosbench.data.imageio import read_mask
from vosbench.metrics import DavisEvaluator, evaluate_results


def vos_benchmark_means(gt: list[np.ndarray], pred: list[np.ndarray]) -> tuple[dict, dict]:
    """vos-benchmark's per-object J and F means (it reports percentages)."""
    ev = vos_evaluator.Evaluator(name="seq")
    for g, p in zip(gt[1:-1], pred[1:-1]):
        ev.feed_frame(p, g)
    iou, boundary = ev.conclude()
    return {k: v / 100 for k, v in iou.items()}, {k: v / 100 for k, v in boundary.items()}


def test_per_object_means_equal_vos_benchmark(tmp_path):
    rng = np.random.default_rng(42)
    sizes = [(48, 64), (90, 160), (120, 200), (60, 60)]  # tolerances 1, 2, 2, 1 pixels
    gt, pred = {}, {}
    for i, size in enumerate(sizes):
        masks = moving_objects(int(rng.integers(6, 12)), int(rng.integers(1, 5)), size, rng)
        assert all(set(range(1, int(masks[0].max()) + 1)) <= set(np.unique(m).tolist()) for m in masks)
        gt[f"v{i}"] = masks
        pred[f"v{i}"] = [perturb(m, rng) for m in masks]
    root = write_davis(tmp_path / "davis", gt)
    res = write_results(tmp_path / "res", pred)
    result = evaluate_results(root, res, workers=1, write_csv=False)
    checked = 0
    for obj in result.objects:
        j_ref, f_ref = vos_benchmark_means(gt[obj.sequence], pred[obj.sequence])
        assert obj.j.mean == pytest.approx(j_ref[obj.object_id], abs=1e-9)
        assert obj.f.mean == pytest.approx(f_ref[obj.object_id], abs=1e-9)
        checked += 1
    assert checked >= len(sizes)


def _eroded(g: np.ndarray) -> np.ndarray:
    """A prediction from real GT: every object eroded by a 5x5 square, void dropped."""
    return cv2.erode(np.where(g == 255, 0, g).astype(np.uint8), np.ones((5, 5), np.uint8))


def _real_gt(root) -> dict[str, list[np.ndarray]]:
    seqs = (root / "ImageSets" / "2017" / "val.txt").read_text().split()
    return {n: [read_mask(p) for p in sorted((root / "Annotations" / "480p" / n).glob("*.png"))] for n in seqs}


def test_real_clips_with_eroded_gt_match_official_formulation(real_vos_root):
    gts = _real_gt(real_vos_root)
    ev = DavisEvaluator(real_vos_root, "val")
    for name, masks in gts.items():
        ev.process_sequence(name, {f"{t:05d}": _eroded(g) for t, g in enumerate(masks)})
    result = ev.evaluate(require_all=True)
    assert [s.name for s in result.sequences] == ["blackswan", "dog", "libby", "bmx-trees", "car-shadow"]
    for s in result.sequences:
        for t in range(len(s.frames)):
            g, p = gts[s.name][t + 1], _eroded(gts[s.name][t + 1])
            for k in range(s.n_objects):
                assert s.j[k, t] == reference_j(g == k + 1, p == k + 1)
                if t == len(s.frames) // 2:  # the slow full-frame skimage reference on one frame per clip
                    assert s.f[k, t] == reference_f(g == k + 1, p == k + 1)
    # erosion by 2 pixels keeps every boundary within the 8-pixel tolerance, but costs area
    assert result.summary.f_mean > 0.9 and 0.3 < result.summary.j_mean < 0.99


@pytest.mark.slow
def test_real_clips_equal_vos_benchmark(real_vos_root, tmp_path):
    gts = _real_gt(real_vos_root)
    preds = {n: [_eroded(g) for g in masks] for n, masks in gts.items()}
    write_results(tmp_path / "res", preds)
    result = evaluate_results(real_vos_root, tmp_path / "res", workers=2)
    assert (tmp_path / "res" / "per-sequence_results-val.csv").read_text().count("\n") == 1 + len(result.objects)
    for obj in result.objects:
        g = gts[obj.sequence]
        if obj.object_id not in np.unique(g[1]):
            continue  # vos-benchmark drops leading frames where the object is absent
        j_ref, f_ref = vos_benchmark_means(g, preds[obj.sequence])
        assert obj.j.mean == pytest.approx(j_ref[obj.object_id], abs=1e-9)
        assert obj.f.mean == pytest.approx(f_ref[obj.object_id], abs=1e-9)
