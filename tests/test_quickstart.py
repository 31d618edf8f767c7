"""The README's main command, end to end on the tiny embedded profile (1 training step)."""

import zipfile

from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.metrics import evaluate_results
from vosbench.precision import resolve_numerics


def test_quickstart_end_to_end(tmp_path):
    out = tmp_path / "qs"
    res = CliRunner().invoke(app, ["quickstart", "--out", str(out), "--profile", "tiny", "--max-steps", "1"])
    assert res.exit_code == 0, res.output
    assert "copy frame 0" in res.output and "stm-tiny" in res.output
    zpath = out / "submission-val.zip"
    names = zipfile.ZipFile(zpath).namelist()
    val = (out / "data/ImageSets/2017/val.txt").read_text().split()
    assert {n.split("/")[0] for n in names if n.endswith(".png")} == set(val)
    # the zip holds exactly the evaluated masks: scoring it gives the printed numbers
    folder = evaluate_results(out / "data", out / "results", "val", write_csv=False)
    zipped = evaluate_results(out / "data", zpath, "val", write_csv=False)
    assert zipped.summary == folder.summary
    assert f"{100 * folder.summary.jf_mean:.1f}" in res.output
    output = " ".join(res.output.split())
    assert "trained 1 still-image steps + 1 video steps of batch 4" in output
    here = resolve_numerics("auto", "auto", "train")  # the quickstart's default: the faster precision
    assert f"on {here.device}, precision {here.precision}" in output
    copy = evaluate_results(out / "data", out / "baseline-copy", "val", write_csv=False)
    assert f"J&F {100 * folder.summary.jf_mean:.1f} vs {100 * copy.summary.jf_mean:.1f}" in output
    # where to look next: the val sequence with the lowest J&F (mean over its objects), and the command
    per_seq = folder.per_object_table().groupby("Sequence")["J&F-Mean"].mean()
    worst = per_seq.idxmin()
    assert f"worst val sequence is {worst} (J&F {100 * per_seq.min():.1f})" in output
    assert f"vosbench visualize --results {out / 'results'} --data {out / 'data'} --seq {worst}" in output
    # the video stage started from the still-image stage's checkpoint
    from vosbench.models import load_checkpoint
    from vosbench.train.config import load_config

    assert load_config(out / "train/config.toml").train.init_checkpoint == str(out / "pretrain/last.pt")
    assert load_config(out / "pretrain/config.toml").data.stage == "static"
    assert load_checkpoint(out / "pretrain/last.pt", expect=None)[1]["step"] == 1
    # a re-run reuses the dataset, the finished training and the written sequences
    mtime = (out / "train/last.pt").stat().st_mtime_ns
    mask = out / "results" / val[0] / "00001.png"
    written = mask.stat().st_mtime_ns
    res2 = CliRunner().invoke(app, ["quickstart", "--out", str(out), "--profile", "tiny", "--max-steps", "1"])
    assert res2.exit_code == 0, res2.output
    assert (out / "train/last.pt").stat().st_mtime_ns == mtime
    assert mask.stat().st_mtime_ns == written
    # training on (a higher step cap) makes the earlier masks stale: they are inferred again
    res3 = CliRunner().invoke(app, ["quickstart", "--out", str(out), "--profile", "tiny", "--max-steps", "2"])
    assert res3.exit_code == 0, res3.output
    assert "trained 2 still-image steps + 2 video steps" in " ".join(res3.output.split())
    assert (out / "train/last.pt").stat().st_mtime_ns != mtime
    assert mask.stat().st_mtime_ns != written


def test_quickstart_trains_the_model_configs_stm_tiny_trains():
    """The packaged config is a shorter stm-tiny run: same network, BN and loss settings."""
    from pathlib import Path

    from vosbench.models import get_preset
    from vosbench.quickstart import default_config
    from vosbench.train.run import resolve_run_config

    def model(path):
        cfg = resolve_run_config(path)
        return get_preset(cfg.model.preset, **cfg.model.overrides)

    from vosbench.quickstart import default_pretrain_config

    quick = model(default_config())
    assert quick == model(Path(__file__).resolve().parents[1] / "configs" / "stm-tiny.toml")
    assert quick == model(default_pretrain_config())  # the still-image stage: the same network, every weight carries
    pre = resolve_run_config(default_pretrain_config())
    assert pre.data.stage == "static"
    # docs/cpu-recipe.md measured it as configs/stm-tiny-pretrain.toml: the same run
    assert pre == resolve_run_config(Path(__file__).resolve().parents[1] / "configs" / "stm-tiny-pretrain.toml")
    assert not quick.freeze_bn and quick.loss.iou > 0


def test_quickstart_infers_at_the_scale_its_config_trains_at(tiny_synthetic_root):
    """stm-tiny trains at ~half the embedded frames' height: the quickstart infers at that scale."""
    from vosbench.quickstart import default_config, training_scale
    from vosbench.train.run import resolve_run_config

    lo, hi = resolve_run_config(default_config()).data.short_side
    height = 96  # the tiny profile's frames are 96x160
    assert training_scale(default_config(), tiny_synthetic_root) == round((lo + hi) / 2 / height, 3)
    assert training_scale(default_config(), tiny_synthetic_root) != 1.0
