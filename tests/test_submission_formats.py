"""package-submission --format youtube-vos | mose | lvos: each server's layout, validated against the split."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.data.imageio import read_mask, write_mask
from vosbench.errors import DataError
from vosbench.metrics import evaluate_results
from vosbench.submission import InvalidResultsError, package_submission, validate_results

SIZE = (24, 32)


def _mask(ids: list[int], t: int) -> np.ndarray:
    m = np.zeros(SIZE, np.uint8)
    for k in ids:
        m[2 + 5 * (k - 1) : 6 + 5 * (k - 1), 2 + t : 8 + t] = k
    return m


def _video(split_dir: Path, name: str, stems: list[str], starts: dict[int, int], annotate_all: bool) -> dict[str, np.ndarray]:
    """Frames, annotations (every frame, or each object's first), and the ground-truth masks by stem."""
    masks = {}
    for t, stem in enumerate(stems):
        (split_dir / "JPEGImages" / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((*SIZE, 3), 80, np.uint8)).save(split_dir / "JPEGImages" / name / f"{stem}.jpg")
        m = _mask([k for k, s in starts.items() if t >= s], t)
        masks[stem] = m
        if annotate_all or t in starts.values():
            write_mask(split_dir / "Annotations" / name / f"{stem}.png", m)
    return masks


def _results(folder: Path, gts: dict[str, dict[str, np.ndarray]], skip_before: dict[str, int] | None = None) -> Path:
    for name, masks in gts.items():
        for t, (stem, m) in enumerate(masks.items()):
            if skip_before and t < skip_before.get(name, 0):
                continue
            write_mask(folder / name / f"{stem}.png", m)
    return folder


@pytest.fixture
def youtube(tmp_path):
    root = tmp_path / "ytvos"
    stems = [f"{5 * t:05d}" for t in range(5)]
    gts = {
        "v1": _video(root / "valid", "v1", stems, {1: 0, 2: 3}, annotate_all=True),
        "v2": _video(root / "valid", "v2", stems, {1: 2}, annotate_all=True),  # nothing before frame 2
    }
    meta = {"videos": {
        "v1": {"objects": {"1": {"category": "cat", "frames": stems}, "2": {"category": "dog", "frames": stems[3:]}}},
        "v2": {"objects": {"1": {"category": "cat", "frames": stems[2:]}}},
    }}
    (root / "valid" / "meta.json").write_text(json.dumps(meta))
    return root, gts


def test_youtube_vos_zip_layout_and_it_evaluates_like_the_folder(youtube, tmp_path):
    root, gts = youtube
    results = _results(tmp_path / "res", gts, skip_before={"v2": 2})  # frames before a video's first object: optional
    report = validate_results(results, root, "valid", format="youtube-vos")
    assert report.ok and report.problems == [] and (report.sequences, report.frames) == (2, 8)
    out = tmp_path / "yt.zip"
    summary = package_submission(results, root, "valid", out, format="youtube-vos")
    assert summary.frames == 8
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    assert names[:3] == ["Annotations/", "Annotations/v1/", "Annotations/v1/00000.png"]
    assert "Annotations/v2/00000.png" not in names and "Annotations/v2/00010.png" in names
    folder = evaluate_results(root, results, "valid", workers=1, write_csv=False)
    zipped = evaluate_results(root, out, "valid", workers=1, write_csv=False)
    assert folder.task == zipped.task == "youtube-vos"
    assert folder.summary == zipped.summary and folder.summary.jf_mean == 1.0


def test_youtube_vos_problems_are_listed(youtube, tmp_path):
    root, gts = youtube
    results = _results(tmp_path / "res", gts)
    (results / "v1" / "00010.png").unlink()
    m = read_mask(results / "v2" / "00015.png").copy()
    m[0, 0] = 3  # v2 has one object
    write_mask(results / "v2" / "00015.png", m)
    with pytest.raises(InvalidResultsError) as err:
        package_submission(results, root, "valid", tmp_path / "s.zip", format="youtube-vos")
    msgs = [str(p) for p in err.value.report.errors]
    assert any(m.startswith(f"{results / 'v1' / '00010.png'}: missing mask") for m in msgs)
    assert any("v2/00015.png: predicted object id(s) 3 but sequence 'v2' has 1 object(s) (ids 1 from meta.json)" in m for m in msgs)
    assert not (tmp_path / "s.zip").exists()
    with pytest.raises(DataError, match="cannot be submitted in the youtube-vos format"):
        validate_results(results, root, "val", format="youtube-vos")


def test_mose_valid_first_frame_annotations_only(tmp_path):
    root = tmp_path / "mose"
    stems = [f"{t:05d}" for t in range(4)]
    gts = {n: _video(root / "valid", n, stems, {1: 0, 2: 0}, annotate_all=False) for n in ("a", "b")}
    results = _results(tmp_path / "res", gts)
    out = tmp_path / "mose.zip"
    package_submission(results, root, "valid", out, format="mose")
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    assert len([n for n in names if n.endswith(".png")]) == 8 and "Annotations/b/00003.png" in names
    m = read_mask(results / "a" / "00002.png").copy()
    m[0, 0] = 255
    write_mask(results / "a" / "00002.png", m)
    (report_error,) = validate_results(results, root, "valid", format="mose").errors
    assert "predicted object id(s) 255" in report_error.message and "255 is void" in report_error.message


def test_lvos_valid_layout(tmp_path):
    root = tmp_path / "lvos"
    stems = [f"{t + 1:08d}" for t in range(6)]
    gts = {"v": _video(root / "valid", "v", stems, {1: 1, 2: 3}, annotate_all=True)}
    meta = {"videos": {"v": {"objects": {"1": {"frame_range": {"start": stems[1], "end": stems[5], "frame_nums": 4}},
                                         "2": {"frame_range": {"start": stems[3], "end": stems[5], "frame_nums": 2}}}}}}
    (root / "valid" / "valid_meta.json").write_text(json.dumps(meta))
    results = _results(tmp_path / "res", gts, skip_before={"v": 1})
    out = tmp_path / "lvos.zip"
    summary = package_submission(results, root, "valid", out, format="lvos")
    assert summary.frames == 5
    with zipfile.ZipFile(out) as zf:
        assert "Annotations/v/00000006.png" in zf.namelist() and "Annotations/v/00000001.png" not in zf.namelist()
    assert evaluate_results(root, out, "valid", workers=1, write_csv=False).summary.jf_mean == 1.0


def test_cli_format_option(youtube, tmp_path):
    root, gts = youtube
    results = _results(tmp_path / "res", gts)
    runner = CliRunner()
    base = ["package-submission", "--results", str(results), "--data", str(root)]
    res = runner.invoke(app, [*base, "--split", "valid", "--format", "youtube-vos", "-o", str(tmp_path / "y.zip")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "y.zip").is_file()
    res = runner.invoke(app, [*base, "--split", "valid", "-o", str(tmp_path / "d.zip")])  # davis format: no such split
    assert res.exit_code == 1 and "cannot be submitted in the davis format" in " ".join(res.output.split())
    assert not (tmp_path / "d.zip").exists()
