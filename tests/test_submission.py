"""package-submission: validation finds every problem, the zip is deterministic, atomic and round-trips."""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.data.imageio import DAVIS_PALETTE_FLAT, read_mask, write_mask
from vosbench.errors import DataError
from vosbench.submission import (
    ZIP_DATE_TIME,
    InvalidResultsError,
    package_submission,
    validate_results,
)


def _messages(report) -> list[str]:
    return [str(p) for p in report.problems]


def test_clean_results_validate(davis_gt_results):
    root, results = davis_gt_results
    report = validate_results(results, root, "val")
    assert report.ok and report.problems == []
    assert (report.sequences, report.frames) == (2, 9)


def test_every_problem_reported_at_once(davis_gt_results):
    root, results = davis_gt_results
    # missing sequence
    shutil.rmtree(results / "beta")
    # missing frame
    (results / "alpha" / "00001.png").unlink()
    # wrong size
    write_mask(results / "alpha" / "00002.png", np.zeros((40, 64), np.uint8))
    # RGB PNG
    Image.new("RGB", (64, 48)).save(results / "alpha" / "00003.png")
    # truncated PNG
    data = (results / "alpha" / "00004.png").read_bytes()
    (results / "alpha" / "00004.png").write_bytes(data[: len(data) // 2])
    # stray file and folder, in the root and in a sequence
    (results / "notes.txt").write_text("x")
    (results / "gamma").mkdir()
    (results / "alpha" / "00099.png").write_bytes(data)
    (results / "alpha" / "sub").mkdir()
    (results / ".DS_Store").write_text("x")  # hidden entries only warn: they are not zipped
    (results / ".beta.x1y2.partial").mkdir()

    report = validate_results(results, root, "val")
    msgs = _messages(report)
    assert not report.ok
    assert sorted(p.path.name for p in report.warnings) == [".DS_Store", ".beta.x1y2.partial"]
    assert all("hidden" in p.message for p in report.warnings)

    def has(path: Path, text: str) -> bool:
        return any(m.startswith(f"{path}:") and text in m for m in msgs)

    assert has(results / "beta", "missing sequence")
    assert has(results / "alpha" / "00001.png", "missing mask for frame 00001.jpg")
    assert has(results / "alpha" / "00002.png", "size 64x40 differs from the frame size 64x48")
    assert has(results / "alpha" / "00003.png", "RGB")
    assert has(results / "alpha" / "00004.png", "truncated")
    assert has(results / "notes.txt", "stray file")
    assert has(results / "gamma", "stray folder")
    assert has(results / "alpha" / "00099.png", "stray file")
    assert has(results / "alpha" / "sub", "stray folder")
    assert len(report.errors) == 9


def test_outputs_of_evaluate_and_infer_are_not_stray(davis_gt_results, tmp_path):
    root, results = davis_gt_results
    (results / "global_results-val.csv").write_text("J&F-Mean\n1.0\n")
    (results / "per-sequence_results-val.csv").write_text("Sequence\n")
    (results / "alpha" / "probs").mkdir()
    (results / "alpha" / "probs" / "00000.npz").write_bytes(b"x")
    (results / "alpha" / "provenance.json").write_text("{}")
    assert validate_results(results, root, "val").problems == []
    package_submission(results, root, "val", tmp_path / "s.zip")
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        assert all(n.endswith((".png", "/")) and "probs" not in n for n in zf.namelist())  # provenance not zipped
    (results / "beta" / "probs").write_text("a file, not infer's folder")
    assert [p.path for p in validate_results(results, root, "val").errors] == [results / "beta" / "probs"]


def _toolkit_palette() -> list[int]:
    """The palette of the official toolkit's ``save_mask`` (the PASCAL-VOC colour map: 192, where the DAVIS files have 191)."""
    pal = []
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def test_masks_are_read_by_their_indices_whatever_the_palette(davis_gt_results, tmp_path):
    """The server reads indices: another palette, grey 8-bit and 1-bit PNGs are all accepted,
    and the zip holds the same indices with the DAVIS palette."""
    root, results = davis_gt_results
    toolkit = _toolkit_palette()
    assert toolkit != DAVIS_PALETTE_FLAT and 192 in toolkit
    for path in sorted((results / "alpha").glob("*.png")):
        img = Image.fromarray(read_mask(path), mode="P")
        img.putpalette(toolkit)
        img.save(path)
    for path in sorted((results / "beta").glob("*.png"))[:2]:
        Image.fromarray(read_mask(path), mode="L").save(path)
    for path in sorted((results / "beta").glob("*.png"))[2:]:
        Image.fromarray(read_mask(path).astype(bool)).save(path)  # beta has one object: 1-bit is enough
    assert Image.open(results / "beta" / "00003.png").mode == "1"
    report = validate_results(results, root, "val")
    assert report.ok and report.problems == []
    out = tmp_path / "s.zip"
    package_submission(results, root, "val", out)
    masks = _zip_masks(out)
    for name, m in masks.items():
        np.testing.assert_array_equal(m, read_mask(root / "Annotations" / "480p" / name))
    with zipfile.ZipFile(out) as zf:
        assert all(Image.open(io.BytesIO(zf.read(n))).getpalette() == DAVIS_PALETTE_FLAT for n in masks)


@pytest.mark.parametrize("kind", ["16-bit", "RGB"])
def test_16bit_and_rgb_masks_are_errors(davis_gt_results, kind):
    root, results = davis_gt_results
    path = results / "beta" / "00002.png"
    m = read_mask(path)
    Image.fromarray(m.astype(np.uint16) if kind == "16-bit" else np.stack([m] * 3, -1)).save(path)
    report = validate_results(results, root, "val")
    assert [p.path for p in report.errors] == [path]
    assert kind in report.errors[0].message


def test_void_and_unknown_ids_are_refused_with_evaluates_message(davis_gt_results):
    from vosbench.metrics import evaluate_results

    root, results = davis_gt_results
    for t in (1, 3):  # beta has one object; id 4 and void appear later
        path = results / "beta" / f"{t:05d}.png"
        m = read_mask(path).copy()
        m[0, 0] = 4
        m[0, 1] = 255
        write_mask(path, m)
    report = validate_results(results, root, "val")
    assert [p.path.name for p in report.errors] == ["00001.png", "00003.png"]
    assert "predicted object id(s) 4, 255 but sequence 'beta' has 1 object(s)" in report.errors[0].message
    assert "255 is void" in report.errors[0].message
    with pytest.raises(DataError) as err:  # frame 1 is scored by evaluate (3 is the last: not scored)
        evaluate_results(root, results, workers=1, write_csv=False)
    assert str(err.value) == str(report.errors[0])
    with pytest.raises(InvalidResultsError):
        package_submission(results, root, "val", results.parent / "s.zip")


def test_missing_results_folder_and_split(davis_gt_results, tmp_path):
    root, results = davis_gt_results
    with pytest.raises(DataError, match="results folder not found"):
        validate_results(tmp_path / "nope", root, "val")
    with pytest.raises(DataError, match="split file not found"):
        validate_results(results, root, "test-dev")


def _zip_masks(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as zf:
        return {
            n: np.asarray(Image.open(io.BytesIO(zf.read(n)))) for n in zf.namelist() if not n.endswith("/")
        }


def test_zip_layout_round_trip_and_metadata(davis_gt_results, tmp_path):
    root, results = davis_gt_results
    out = tmp_path / "sub" / "submission.zip"
    summary = package_submission(results, root, "val", out)
    assert out.is_file() and summary.size_bytes == out.stat().st_size
    assert (summary.sequences, summary.frames) == (2, 9)
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert names == sorted(names)
        assert names[0] == "alpha/" and "beta/00003.png" in names
        for info in zf.infolist():
            assert info.date_time == ZIP_DATE_TIME
            assert info.compress_type == zipfile.ZIP_STORED
            assert (info.external_attr >> 16) in (0o100644, 0o040755)
    masks = _zip_masks(out)
    assert len(masks) == 9
    for name, m in masks.items():
        np.testing.assert_array_equal(m, read_mask(results / name))
    with zipfile.ZipFile(out) as zf:
        for name in masks:
            assert Image.open(io.BytesIO(zf.read(name))).getpalette() == DAVIS_PALETTE_FLAT


def test_zip_bytes_are_deterministic(davis_gt_results, tmp_path):
    root, results = davis_gt_results
    a = package_submission(results, root, "val", tmp_path / "a.zip")
    # same masks re-saved with different PNG encoder settings and newer file times
    for p in sorted(results.rglob("*.png")):
        img = Image.open(p)
        img.load()
        img.save(p, optimize=True, compress_level=1)
        os.utime(p, (2_000_000_000, 2_000_000_000))
    b = package_submission(results, root, "val", tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert a.sha256 == b.sha256


def test_invalid_results_write_no_zip(davis_gt_results, tmp_path):
    root, results = davis_gt_results
    (results / "alpha" / "00001.png").unlink()
    (results / "stray.txt").write_text("x")
    out = tmp_path / "s.zip"
    with pytest.raises(InvalidResultsError, match="2 problems") as info:
        package_submission(results, root, "val", out)
    assert len(info.value.report.errors) == 2
    assert not out.exists()
    assert list(tmp_path.glob("*.zip*")) == [] and list(tmp_path.glob(".s.zip*")) == []


def test_unwritable_output_leaves_nothing(davis_gt_results, tmp_path):
    root, results = davis_gt_results
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(DataError, match="afile is a file, not a folder"):
        package_submission(results, root, "val", blocker / "sub" / "s.zip")
    assert blocker.read_text() == "x"
    with pytest.raises(DataError, match="cannot write the zip"):  # /proc refuses new files, even to root
        package_submission(results, root, "val", Path("/proc/vosbench-test.zip"))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root ignores permissions
            with pytest.raises(DataError, match="cannot write the zip"):
                package_submission(results, root, "val", locked / "s.zip")
            assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)
    with pytest.raises(DataError, match="outside the results folder"):
        package_submission(results, root, "val", results / "alpha" / "s.zip")
    with pytest.raises(DataError, match="is a folder"):
        package_submission(results, root, "val", locked)


def test_failure_mid_write_leaves_no_partial_zip(davis_gt_results, tmp_path, monkeypatch):
    root, results = davis_gt_results
    out = tmp_path / "s.zip"
    out.write_bytes(b"previous zip")
    from vosbench import submission

    calls = {"n": 0}
    real = submission.encode_mask_png

    def flaky(mask):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError(28, "No space left on device")
        return real(mask)

    monkeypatch.setattr(submission, "encode_mask_png", flaky)
    with pytest.raises(DataError, match="No space left on device"):
        package_submission(results, root, "val", out)
    assert calls["n"] == 4
    assert out.read_bytes() == b"previous zip"  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["davis", "results", "s.zip"]


def _cli(runner: CliRunner, results: Path, root: Path, split: str, out_flag: str, out: Path):
    args = ["package-submission", "--results", results, "--split", split, "--data", root, out_flag, out]
    return runner.invoke(app, [str(a) for a in args])


def test_cli_success_and_failure(davis_gt_results, tmp_path):
    root, results = davis_gt_results
    runner = CliRunner()
    out = tmp_path / "ok.zip"
    res = _cli(runner, results, root, "val", "-o", out)
    assert res.exit_code == 0, res.output
    assert out.is_file()
    assert "sequences" in res.output and "9" in res.output

    (results / "alpha" / "00001.png").unlink()
    Image.new("RGB", (64, 48)).save(results / "beta" / "00002.png")
    (results / "[bold]notes.txt").write_text("rich markup in a name is printed as is")
    bad = tmp_path / "bad.zip"
    res = _cli(runner, results, root, "val", "--out", bad)
    assert res.exit_code == 1
    text = " ".join(res.output.split())
    assert "alpha/00001.png: missing mask" in text
    assert "beta/00002.png: mask is RGB" in text
    assert "[bold]notes.txt: stray file" in text
    assert "3 problems" in text
    assert not bad.exists()

    res = _cli(runner, results, root, "train", "-o", bad)
    assert res.exit_code != 0 and "train" in res.output


def test_cli_check_only(davis_gt_results, tmp_path):
    root, results = davis_gt_results
    runner = CliRunner()
    base = ["package-submission", "--results", str(results), "--split", "val", "--data", str(root)]
    res = runner.invoke(app, [*base, "--check"])
    assert res.exit_code == 0, res.output
    assert "ok:" in res.output and "9 frames" in res.output
    res = runner.invoke(app, base)
    assert res.exit_code == 1 and "--out" in res.output
    (results / "beta" / "00001.png").unlink()
    res = runner.invoke(app, [*base, "--check"])
    assert res.exit_code == 1
    assert "beta/00001.png: missing mask" in " ".join(res.output.split())
    assert list(tmp_path.glob("*.zip")) == []


def test_zip_evaluates_like_the_folder(davis_gt_results, tmp_path):
    from vosbench.metrics import evaluate_results

    root, results = davis_gt_results
    # perturb the predictions so the scores are not all 1
    for i, p in enumerate(sorted((results / "alpha").glob("*.png"))[1:]):
        write_mask(p, np.roll(read_mask(p), 2 + i, axis=1))
    folder = evaluate_results(root, results, split="val", workers=1)  # writes its CSVs into results/
    assert (results / "global_results-val.csv").is_file()
    out = tmp_path / "s.zip"
    package_submission(results, root, "val", out)  # the evaluation CSVs are not stray files
    with zipfile.ZipFile(out) as zf:
        assert not any(n.endswith(".csv") for n in zf.namelist())
    zipped = evaluate_results(root, out, split="val", workers=1, write_csv=False)
    assert folder.summary.values() == zipped.summary.values()
    assert folder.summary.values()[0] < 1.0
    assert folder.per_frame_table().equals(zipped.per_frame_table())


RECIPES = sorted((Path(__file__).resolve().parents[1] / "submissions").glob("*.toml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipes_load(path: Path):
    recipe_mod = pytest.importorskip("vosbench.infer.recipe")
    recipe = recipe_mod.load_recipe(path)
    assert recipe.name == path.stem
    runs = path.parent.parent / "runs"
    for m in recipe.members:  # every member is a run folder's last.pt under <repo>/runs, or a hub model
        if m.hf_reference is not None:
            assert "/" in m.hf_reference and not Path(m.hf_reference).is_absolute()  # a hub id, not a folder
            continue
        assert m.checkpoint.name == "last.pt"
        assert m.checkpoint.resolve().parent.parent == runs.resolve()
    # the members' native scale is among the TTA scales: the tiny configs train at half resolution
    assert (0.5 if "tiny" in path.stem else 1.0) in recipe.inference["scales"]


def test_recipes_match_the_papers():
    recipe_mod = pytest.importorskip("vosbench.infer.recipe")
    folder = Path(__file__).resolve().parents[1] / "submissions"
    scm = recipe_mod.load_recipe(folder / "scm-davis2020.toml")
    assert len(scm.members) >= 2 and all("scm-r101" in str(m.checkpoint) for m in scm.members)
    assert scm.inference["flip"] and len(scm.inference["scales"]) > 1 and scm.inference["finetune_steps"] > 0
    dstm = recipe_mod.load_recipe(folder / "dstm-davis2020.toml")
    assert [m.checkpoint.parent.name for m in dstm.members] == ["dstm-r50"]
    assert len(dstm.inference["scales"]) > 1 and dstm.inference["finetune_steps"] == 0


def test_sam2_recipe_ensembles_a_hub_model_with_both_specialists():
    recipe_mod = pytest.importorskip("vosbench.infer.recipe")
    recipe = recipe_mod.load_recipe(Path(__file__).resolve().parents[1] / "submissions" / "sam2-scm-dstm.toml")
    assert [m.hf_reference for m in recipe.members] == ["facebook/sam2.1-hiera-tiny", None, None]
    assert [m.checkpoint.parent.name for m in recipe.members[1:]] == ["scm-r101-a", "dstm-r50"]
    assert recipe.inference["flip"] and len(recipe.inference["scales"]) > 1
    assert recipe.inference["finetune_steps"] == 0  # hf: members refuse online finetuning
