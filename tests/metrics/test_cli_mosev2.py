"""`vosbench evaluate --task mosev2`: the printed tables, and one error line (exit 1) per malformed input."""

from __future__ import annotations

import json

from tests.metrics.test_cli_evaluate import APP, _error_line, runner
from tests.metrics.test_mosev2 import _ids, hand_set
from vosbench.data.imageio import write_mask


def run(root, res, *extra):
    return runner.invoke(APP, ["evaluate", "--data", str(root), "--results", str(res), "--split", "valid",
                               "--workers", "1", *extra])


def test_tables_lead_with_j_and_f_new(tmp_path):
    root, res = hand_set(tmp_path)
    result = run(root, res, "--task", "mosev2")
    assert result.exit_code == 0, result.output
    out = result.output
    header = next(ln for ln in out.splitlines() if "J&F_new" in ln and "Object" not in ln)
    assert header.split()[1] == "J&F_new"  # the first column of the global table
    assert "62.50" in out and "n/a" in out  # reappear J&F_new; object 2's undefined disappearance
    assert "task: MOSEv2 (given with --task)" in out


def _edit_meta(root, edit):
    path = root / "valid" / "meta.json"
    meta = json.loads(path.read_text())
    edit(meta["videos"])
    path.write_text(json.dumps(meta))


def test_missing_meta_entry(tmp_path):
    root, res = hand_set(tmp_path)
    _edit_meta(root, lambda v: v.pop("vid"))
    assert "no entry for video 'vid'" in _error_line(run(root, res, "--task", "mosev2"))


def test_frame_count_mismatch(tmp_path):
    root, res = hand_set(tmp_path)
    _edit_meta(root, lambda v: v["vid"].update(length=4))
    assert "5 annotations" in _error_line(run(root, res, "--task", "mosev2"))


def test_object_the_ground_truth_lacks(tmp_path):
    root, res = hand_set(tmp_path)
    write_mask(res / "vid" / "00001.png", _ids((7, 3, 3)))
    assert "predicted object id(s) 7" in _error_line(run(root, res))


def test_missing_prediction_frame(tmp_path):
    root, res = hand_set(tmp_path)
    (res / "vid" / "00003.png").unlink()
    assert "vid/00003.png" in _error_line(run(root, res))


def test_broken_meta_json(tmp_path):
    root, res = hand_set(tmp_path)
    (root / "valid" / "meta.json").write_text("{")
    assert "not valid JSON" in _error_line(run(root, res, "--task", "mosev2"))
