"""package-submission --format mosev2: every frame of every video, only meta.json's objects,
nothing written while any problem remains."""

from __future__ import annotations

import json
import zipfile

import pytest
from typer.testing import CliRunner

from tests.test_submission_formats import _mask, _video
from vosbench_cli.main import app
from vosbench.data.imageio import write_mask
from vosbench.errors import DataError
from vosbench.submission import InvalidResultsError, package_submission, validate_results

STEMS = [f"{t:05d}" for t in range(4)]


@pytest.fixture
def mosev2(tmp_path):
    """valid: first-frame annotations only (as released), meta.json; results for every frame."""
    root = tmp_path / "mosev2"
    for name in ("a", "b"):
        _video(root / "valid", name, STEMS, {1: 0, 2: 0}, annotate_all=False)
    meta = {"videos": {n: {"length": 4, "height": 24, "width": 32, "objects": {"1": {}, "2": {}}} for n in ("a", "b")}}
    (root / "valid" / "meta.json").write_text(json.dumps(meta))
    results = tmp_path / "res"
    for name in ("a", "b"):
        for t, stem in enumerate(STEMS):
            write_mask(results / name / f"{stem}.png", _mask([1, 2], t))
    return root, results


def test_every_frame_under_annotations(mosev2, tmp_path):
    root, results = mosev2
    summary = package_submission(results, root, "valid", tmp_path / "s.zip", format="mosev2")
    assert summary.frames == 8
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        pngs = sorted(n for n in zf.namelist() if n.endswith(".png"))
    assert pngs == [f"Annotations/{v}/{s}.png" for v in ("a", "b") for s in STEMS]


def test_first_frame_missing_and_extra_object_are_refused(mosev2, tmp_path):
    root, results = mosev2
    (results / "a" / "00000.png").unlink()  # the scorer indexes frames by position: frame 0 too
    write_mask(results / "b" / "00002.png", _mask([1, 3], 2))
    with pytest.raises(InvalidResultsError) as err:
        package_submission(results, root, "valid", tmp_path / "s.zip", format="mosev2")
    msgs = [str(p) for p in err.value.report.errors]
    assert len(msgs) == 2
    assert any(m.endswith("a/00000.png: missing mask for frame 00000.jpg") for m in msgs)
    assert any("b/00002.png: predicted object id(s) 3 but sequence 'b' has 2 object(s) (ids 1, 2 from meta.json)" in m
               for m in msgs)
    assert not (tmp_path / "s.zip").exists()


def test_meta_problems_are_errors(mosev2, tmp_path):
    root, results = mosev2
    path = root / "valid" / "meta.json"
    meta = json.loads(path.read_text())
    meta["videos"]["a"]["length"] = 5
    del meta["videos"]["b"]
    path.write_text(json.dumps(meta))
    msgs = [str(p) for p in validate_results(results, root, "valid", format="mosev2").errors]
    assert any("4 frames but meta.json gives length 5 for video 'a'" in m for m in msgs)
    assert any("no entry for video 'b'" in m for m in msgs)


def test_cli_one_line_and_exit_1(mosev2, tmp_path):
    root, results = mosev2
    (results / "b" / "00003.png").unlink()
    out = tmp_path / "s.zip"
    result = CliRunner().invoke(app, ["package-submission", "--results", str(results), "--split", "valid",
                                      "--data", str(root), "--format", "mosev2", "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "b/00003.png: missing mask" in result.output
    assert not out.exists()


def test_a_youtube_vos_root_is_not_a_mosev2_split(tmp_path):
    root = tmp_path / "yt"
    _video(root / "valid", "a", STEMS, {1: 0}, annotate_all=False)
    (root / "valid" / "meta.json").write_text(json.dumps({"videos": {"a": {"objects": {"1": {"frames": ["00000"]}}}}}))
    with pytest.raises(DataError):
        validate_results(tmp_path, root, "valid", format="mosev2")
