"""package-submission --format sav: SA-V's per-object layout validated against the split and zipped."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.infer.test_sav import SIZE, write_sav
from vosbench_cli.main import app
from vosbench.metrics import evaluate_results
from vosbench.submission import InvalidResultsError, package_submission

runner = CliRunner()


def _results(data: Path, out: Path) -> Path:
    """Results equal to the ground truth, as infer leaves them: every 24 fps frame, provenance, probs/."""
    for obj_dir in sorted((data / "Annotations_6fps" / "v").iterdir()):
        for t in range(9):
            src = obj_dir / f"{t - t % 4:05d}.png"
            dst = out / "v" / obj_dir.name / f"{t:05d}.png"
            dst.parent.mkdir(parents=True, exist_ok=True)
            m = np.asarray(Image.open(src)) != 0
            Image.fromarray(m.astype(np.uint8), "P").save(dst)
    (out / "v" / "provenance.json").write_text("{}")
    (out / "v" / "probs").mkdir()
    (out / "results.csv").write_text("sequence,obj,J&F,J,F\n")  # SAM 2's evaluator writes it into --pred_root
    (out / "global_results-val.csv").write_text("J&F-Mean\n")
    return out


def test_valid_results_zip_the_annotated_frames_and_score_as_the_folder(tmp_path):
    data = write_sav(tmp_path / "sav")
    res = _results(data, tmp_path / "res")
    summary = package_submission(res, data, "val", tmp_path / "sub.zip", format="sav")
    with zipfile.ZipFile(tmp_path / "sub.zip") as zf:
        pngs = sorted(n for n in zf.namelist() if n.endswith(".png"))
        values = {int(v) for n in pngs for v in np.unique(np.asarray(Image.open(zf.open(n))))}
    assert pngs == [f"v/{o}/{t:05d}.png" for o in ("000", "001", "002") for t in (0, 4, 8)]
    assert summary.frames == 9 and values == {0, 1}
    result = evaluate_results(data, tmp_path / "sub.zip", "val", task="sav", workers=1, write_csv=False)
    assert [o.j.mean for o in result.objects] == [1.0, 1.0, 1.0]
    again = package_submission(res, data, "val", tmp_path / "again.zip", format="sav")
    assert again.sha256 == summary.sha256


def test_every_problem_is_listed_and_nothing_is_written(tmp_path):
    data = write_sav(tmp_path / "sav")
    res = _results(data, tmp_path / "res")
    (res / "v" / "000" / "00004.png").unlink()  # a missing annotated frame
    bad = np.zeros(SIZE, np.uint8)
    bad[1, 1], bad[2, 2] = 1, 2
    Image.fromarray(bad, "L").save(res / "v" / "001" / "00008.png")  # two object values
    shutil.copytree(res / "v" / "001", res / "v" / "007")  # an object the ground truth lacks
    (res / "v" / "002" / "notes.txt").write_text("x")  # stray
    Image.fromarray(np.zeros((5, 5), np.uint8), "L").save(res / "v" / "002" / "00000.png")  # wrong size
    out = tmp_path / "sub.zip"
    out.write_bytes(b"old")
    with pytest.raises(InvalidResultsError) as exc:
        package_submission(res, data, "val", out, format="sav")
    found = "\n".join(str(p) for p in exc.value.report.errors)
    assert "000/00004.png: missing mask for annotated frame 00004" in found
    assert "001/00008.png: holds values 1, 2" in found
    assert "v/007: object folder 007 that the ground truth of 'v' lacks" in found
    assert "notes.txt: stray file" in found
    assert "002/00000.png: mask size 5x5 differs" in found
    assert len(exc.value.report.errors) == 5
    assert out.read_bytes() == b"old"


def test_cli_sav_format_problems_exit_1(tmp_path):
    data = write_sav(tmp_path / "sav")
    res = _results(data, tmp_path / "res")
    shutil.rmtree(res / "v" / "002")
    r = runner.invoke(app, ["package-submission", "--results", str(res), "--split", "val", "--data", str(data),
                            "--format", "sav", "-o", str(tmp_path / "s.zip")])
    assert r.exit_code == 1
    assert "v/002: missing object (3 annotated frames expected)" in r.output
    assert not (tmp_path / "s.zip").exists()
    r = runner.invoke(app, ["package-submission", "--results", str(res), "--split", "valid", "--data", str(data),
                            "--format", "sav", "--check"])
    assert r.exit_code == 1 and "expected one of val, test" in r.output
