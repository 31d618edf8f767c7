"""`vosbench infer` through Typer's CliRunner: success, summary, one-line errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.data.imageio import read_mask

runner = CliRunner()


def test_infer_cli_runs_recipe_and_skips_on_rerun(make_davis_root, tiny_checkpoint, tmp_path):
    root = make_davis_root({"alpha": (3, 2)}, size=(32, 48))
    recipe = tmp_path / "entry.toml"
    ckpt = tiny_checkpoint("stm-tiny")
    recipe.write_text(f'[[members]]\ncheckpoint = "{ckpt}"\n[inference]\nmem_every = 2\nmax_mem_frames = 3\n')
    out = tmp_path / "out"
    args = ["infer", "--ensemble", str(recipe), "--data", str(root), "--out", str(out), "--scales", "1.0"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "1 written (3 frames" in res.output and "peak RSS" in res.output and "stm-tiny" in res.output
    assert read_mask(out / "alpha" / "00002.png").shape == (32, 48)
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "0 written" in res.output and "1 skipped" in res.output


def test_infer_cli_depth_estimator_for_dstm(make_davis_root, tiny_checkpoint, tmp_path):
    pytest.importorskip("transformers")
    from vosbench.depth.tiny import write_tiny_depth_model

    est = write_tiny_depth_model(tmp_path / "est", input_size=28)
    root = make_davis_root({"alpha": (2, 1)}, size=(32, 48))
    out = tmp_path / "out"
    base = ["infer", "--checkpoint", str(tiny_checkpoint("dstm-tiny")), "--data", str(root), "--out", str(out)]
    res = runner.invoke(app, base)
    assert res.exit_code == 1 and "no depth maps" in res.output and "--depth-estimator" in res.output
    res = runner.invoke(app, [*base, "--depth-estimator", str(est)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (out / "alpha").iterdir()) == ["00000.png", "00001.png", "provenance.json"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # scratch depth removed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "exactly one of --checkpoint"),
        (["--checkpoint", "{ckpt}", "--ensemble", "{ckpt}"], "exactly one of --checkpoint"),
        (["--checkpoint", "{missing}"], "checkpoint not found"),
        (["--checkpoint", "{ckpt}", "--scales", "1,x"], "--scales must be comma-separated"),
        (["--checkpoint", "{ckpt}", "--split", "test"], "split file not found"),
        (["--ensemble", "{missing_recipe}"], "recipe not found"),
    ],
)
def test_infer_cli_bad_input_is_one_line(make_davis_root, tiny_checkpoint, tmp_path, extra, message):
    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    fill = {"ckpt": str(tiny_checkpoint("stm-tiny")), "missing": str(tmp_path / "nope.pt"),
            "missing_recipe": str(tmp_path / "nope.toml")}
    args = ["infer", "--data", str(root), "--out", str(tmp_path / "out"), *[a.format(**fill) for a in extra]]
    res = runner.invoke(app, args)
    assert res.exit_code == 1
    assert message in res.output
    assert "Traceback" not in res.output and res.output.strip().startswith("error:")
    assert not (tmp_path / "out").exists()


def test_infer_cli_torchrun_rank_takes_its_share(make_davis_root, tiny_checkpoint, tmp_path, monkeypatch):
    root = make_davis_root({"alpha": (2, 1), "beta": (2, 1), "gamma": (2, 1)}, size=(16, 16))
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "out"
    res = runner.invoke(app, ["infer", "--checkpoint", str(tiny_checkpoint("stm-tiny")), "--data", str(root),
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["beta"]
    assert "rank 1/2" in res.output


def test_infer_cli_checkpoint_is_one_path(make_davis_root, tiny_checkpoint, tmp_path):
    """--checkpoint takes a path as is: a ',' or ':2' in it is not an ensemble list or weight."""
    import shutil

    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    odd = tmp_path / "run,seed:2.pt"
    shutil.copy(tiny_checkpoint("stm-tiny"), odd)
    out = tmp_path / "out"
    res = runner.invoke(app, ["infer", "--checkpoint", str(odd), "--data", str(root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "run,seed:2.pt (stm-tiny, w=1)" in res.output
    assert sorted(p.name for p in (out / "alpha").iterdir()) == ["00000.png", "00001.png", "provenance.json"]


def test_infer_cli_unknown_device_is_one_line(make_davis_root, tiny_checkpoint, tmp_path):
    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    res = runner.invoke(app, ["infer", "--checkpoint", str(tiny_checkpoint("stm-tiny")), "--data", str(root),
                              "--out", str(tmp_path / "out"), "--device", "gpu"])
    assert res.exit_code == 1 and "--device must be auto, cpu, cuda or cuda:N" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "out").exists()
