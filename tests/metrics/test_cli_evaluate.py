"""`vosbench evaluate`: success output, and a one-line error with exit code 1 for every bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

import vosbench_cli.evaluate
from tests.metrics.helpers import moving_objects, perturb, write_davis, write_results

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    vosbench_cli.evaluate.register(app)
    return app


APP = _app()


@pytest.fixture
def davis(tmp_path):
    rng = np.random.default_rng(3)
    gt = {n: moving_objects(5, 2, (24, 32), rng) for n in ("alpha", "beta")}
    pred = {n: [perturb(m, rng) for m in masks] for n, masks in gt.items()}
    root = write_davis(tmp_path / "davis", gt)
    res = write_results(tmp_path / "res", pred)
    return root, res


def run(root, res, *extra):
    return runner.invoke(APP, ["evaluate", "--data", str(root), "--results", str(res), "--workers", "1", *extra])


def _error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output  # one line, no traceback
    assert lines[0].startswith("error:")
    return lines[0]


def test_success_prints_tables_and_writes_files(davis, tmp_path):
    root, res = davis
    result = run(root, res, "--json", str(tmp_path / "scores.json"))
    assert result.exit_code == 0, result.output
    assert "J&F-Mean" in result.output and "alpha_1" in result.output and "beta_2" in result.output
    header, values = (res / "global_results-val.csv").read_text().splitlines()
    assert header == "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay"
    assert all(len(v.split(".")[1]) == 3 for v in values.split(","))
    rows = (res / "per-sequence_results-val.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["Sequence", "alpha_1", "alpha_2", "beta_1", "beta_2"]
    data = json.loads((tmp_path / "scores.json").read_text())
    assert f"{data['global']['J&F-Mean']:.3f}" == values.split(",")[0]


def test_missing_sequence(davis):
    root, res = davis
    for p in (res / "beta").iterdir():
        p.unlink()
    (res / "beta").rmdir()
    assert "1 sequence(s) missing: beta" in _error_line(run(root, res))


def test_missing_frames_are_all_listed(davis):
    root, res = davis
    for rel in ("alpha/00001.png", "alpha/00002.png", "beta/00003.png"):
        os.remove(res / rel)
    line = _error_line(run(root, res))
    assert "3 frame(s) missing: alpha/00001.png, alpha/00002.png, beta/00003.png" in line


def test_extra_ids_fail_unless_ignored(davis):
    root, res = davis
    m = np.array(Image.open(res / "beta" / "00002.png"))
    m[0, 0] = 7
    Image.fromarray(m).save(res / "beta" / "00002.png")  # grayscale (L) PNG: accepted for predictions
    line = _error_line(run(root, res))
    assert "beta/00002.png" in line and "id(s) 7" in line and "--ignore-extra-ids" in line
    assert run(root, res, "--ignore-extra-ids").exit_code == 0


def test_size_mismatch(davis):
    root, res = davis
    Image.fromarray(np.zeros((24, 30), np.uint8)).save(res / "alpha" / "00001.png")
    line = _error_line(run(root, res))
    assert "alpha/00001.png" in line and "size 30x24 differs" in line


def test_rgb_png(davis):
    root, res = davis
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(res / "alpha" / "00002.png")
    line = _error_line(run(root, res))
    assert "alpha/00002.png" in line and "RGB" in line


def test_truncated_png(davis):
    root, res = davis
    p = res / "beta" / "00001.png"
    p.write_bytes(p.read_bytes()[:30])
    line = _error_line(run(root, res))
    assert "beta/00001.png" in line and "corrupt or truncated" in line


def test_unreadable_zip(davis, tmp_path):
    root, _ = davis
    bad = tmp_path / "sub.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    assert "sub.zip: results must be a folder <seq>/<frame>.png or a .zip" in _error_line(run(root, bad))


def test_empty_results_dir(davis, tmp_path):
    root, _ = davis
    (tmp_path / "empty").mkdir()
    assert "no predictions found" in _error_line(run(root, tmp_path / "empty"))


def test_results_not_found(davis, tmp_path):
    root, _ = davis
    assert "results not found" in _error_line(run(root, tmp_path / "nope"))


def test_split_lists_sequence_without_annotations(davis):
    root, res = davis
    (root / "ImageSets" / "2017" / "val.txt").write_text("alpha\nbeta\ngamma\n")
    assert "gamma: no annotations" in _error_line(run(root, res))


def test_unknown_split(davis):
    root, res = davis
    assert "split file not found" in _error_line(run(root, res, "--split", "test-dev"))


def test_worker_errors_surface_with_a_pool(davis):
    root, res = davis
    p = res / "alpha" / "00002.png"
    p.write_bytes(p.read_bytes()[:30])
    result = runner.invoke(APP, ["evaluate", "--data", str(root), "--results", str(res), "--workers", "2"])
    assert "alpha/00002.png" in _error_line(result)


def test_unwritable_json_destination(davis, tmp_path):
    root, res = davis
    (tmp_path / "file").write_text("")
    line = _error_line(run(root, res, "--json", str(tmp_path / "file" / "scores.json")))
    assert "cannot write the results" in line


def test_unlistable_folders_are_one_line_errors(davis, monkeypatch):
    """A folder that can't be listed (no read permission; simulated, the tests may run as root)."""
    root, res = davis
    real_listdir, real_iterdir = os.listdir, type(res).iterdir

    def listdir(path):
        if str(path) == str(res / "beta"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", listdir)
    line = _error_line(run(root, res))
    assert f"{res / 'beta'}: cannot list the predictions (Permission denied)" in line
    monkeypatch.setattr(os, "listdir", real_listdir)

    def iterdir(self):
        if self.name == "alpha" and "Annotations" in self.parts:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(type(res), "iterdir", iterdir)
    assert "alpha: cannot list the folder (Permission denied)" in _error_line(run(root, res))


def test_corrupt_member_of_a_submission_zip(davis, tmp_path):
    """Deflate data damaged inside the zip (the central directory intact): zlib.error, not a traceback."""
    import zipfile

    root, res = davis
    zpath = tmp_path / "sub.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for png in sorted(res.glob("*/*.png")):
            zf.writestr(png.relative_to(res).as_posix(), png.read_bytes() * 20)  # compressible: a real deflate stream
    info = zipfile.ZipFile(zpath).getinfo("beta/00002.png")
    data = bytearray(zpath.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + 8
    data[start : start + 40] = b"\xff" * 40
    zpath.write_bytes(bytes(data))
    line = _error_line(run(root, zpath))
    assert "sub.zip:beta/00002.png: cannot read from the zip" in line
