import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.ablation.steps import lookalike_sequences, toml_value
from vosbench.errors import ConfigError
from vosbench.train.config import parse_value

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value", [True, False, 3, 1e-4, "scm-tiny", [192, 320], {"aspp": False, "key_dim": 32}])
def test_override_values_round_trip_through_train_config_parser(value):
    parsed = parse_value(toml_value(value))
    assert parsed == value and type(parsed) is type(value)


def test_lookalike_sequences_from_manifest(tmp_path):
    assert lookalike_sequences(tmp_path) == set()
    (tmp_path / "manifest.json").write_text(json.dumps({"sequences": {
        "a": {"synthetic": {"lookalike": True}}, "b": {"synthetic": {"lookalike": False}}, "c": {}}}))
    assert lookalike_sequences(tmp_path) == {"a"}


def test_cli_unknown_preset_and_missing_data(tmp_path, make_davis_root):
    (tmp_path / "t.toml").write_text("[model]\npreset = 'no-such-preset'\n")
    (tmp_path / "l.toml").write_text("[[rungs]]\nname='a'\ntrain_config='t.toml'\n")
    runner = CliRunner()
    res = runner.invoke(app, ["ablate", "--config", str(tmp_path / "l.toml")])
    assert res.exit_code == 1 and "no dataset root" in res.output
    res = runner.invoke(app, ["ablate", "--config", str(tmp_path / "l.toml"), "--data", str(tmp_path / "nope")])
    assert res.exit_code == 1 and "dataset root not found" in res.output
    root = make_davis_root()
    res = runner.invoke(app, ["ablate", "--config", str(tmp_path / "l.toml"), "--data", str(root),
                              "--out", str(tmp_path / "out")])
    assert res.exit_code == 1 and "rung 'a'" in res.output and "no-such-preset" in res.output
    assert not (tmp_path / "out" / "train").exists(), "nothing trained before the ladder was checked"
    # bad training overrides and inference options are found before the first rung trains
    stm = Path(__file__).resolve().parents[2] / "configs" / "stm-tiny.toml"
    for rung, message in (
        ('set = { "train.bogus" = 1 }', "unknown config key 'train.bogus'"),
        ("infer = { flipp = true }", "unknown inference option 'flipp'"),
        ("infer = { scales = [0.0] }", "scale 0.0 out of range"),
    ):
        (tmp_path / "l.toml").write_text(
            f"[[rungs]]\nname='a'\ntrain_config='{stm}'\n[[rungs]]\nname='b'\n{rung}\n"
        )
        res = runner.invoke(app, ["ablate", "--config", str(tmp_path / "l.toml"), "--data", str(root),
                                  "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")])
        assert res.exit_code == 1 and "rung 'b'" in res.output and message in " ".join(res.output.split())
        assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_data_fingerprint_covers_manifest_split_lists_and_depth(tmp_path):
    from vosbench.ablation.steps import VosbenchSteps

    (tmp_path / "ImageSets" / "2017").mkdir(parents=True)
    (tmp_path / "ImageSets" / "2017" / "val.txt").write_text("a\n")
    steps = VosbenchSteps(tmp_path)
    seen = {steps.data_fingerprint()}

    def changed() -> bool:
        fp = steps.data_fingerprint()
        new = fp not in seen
        seen.add(fp)
        return new

    assert not changed()  # stable
    (tmp_path / "manifest.json").write_text('{"seed": 0}')
    assert changed()
    (tmp_path / "ImageSets" / "2017" / "val.txt").write_text("a\nb\n")  # with a manifest too
    assert changed()
    depth = tmp_path / "Depth" / "480p" / "a"
    depth.mkdir(parents=True)
    (depth / "normalization.json").write_text('{"estimator": "one"}')
    assert changed()
    (depth / "normalization.json").write_text('{"estimator": "another"}')  # re-prepared depth
    assert changed()
    assert VosbenchSteps(tmp_path, max_steps=5).data_fingerprint() not in seen


def test_real_ladder_with_an_ensemble_rung(tmp_path, tiny_synthetic_root):
    """Real train -> infer -> evaluate steps; the ensemble rung's masks are those of `vosbench infer`
    run on both checkpoints."""
    from vosbench.ablation import load_ladder, run_ladder
    from vosbench.ablation.steps import VosbenchSteps
    from vosbench.data.imageio import read_mask
    from vosbench.infer.run import InferOptions, infer_dataset

    config = Path(__file__).resolve().parents[2] / "configs" / "stm-tiny.toml"
    (tmp_path / "l.toml").write_text(
        f'[ladder]\nname = "ens"\n\n[[rungs]]\nname = "Baseline"\ntrain_config = "{config}"\n'
        '\n[[rungs]]\nname = "+lr"\nset = { "optim.lr" = 1e-3 }\n'
        '\n[[rungs]]\nname = "+Ensemble"\nensemble = ["Baseline"]\n'
    )
    res = run_ladder(load_ladder(tmp_path / "l.toml"), tmp_path / "out",
                     VosbenchSteps(tiny_synthetic_root, max_steps=1), cache=tmp_path / "cache")
    base, lr, ens = res.rungs
    assert ens.checkpoint == lr.checkpoint != base.checkpoint
    assert ens.ran == {"train": False, "infer": True, "evaluate": True}
    direct = tmp_path / "direct"
    infer_dataset(f"{lr.checkpoint},{base.checkpoint}", tiny_synthetic_root, "val", "480p", direct,
                  InferOptions(device="cpu"))
    pngs = sorted(p.relative_to(ens.results_dir) for p in ens.results_dir.glob("*/*.png"))
    assert pngs and pngs == sorted(p.relative_to(direct) for p in direct.glob("*/*.png"))
    for p in pngs:
        assert np.array_equal(read_mask(ens.results_dir / p), read_mask(direct / p)), p
    assert 0.0 <= ens.metrics["J&F-Mean"] <= 1.0


@pytest.mark.parametrize("name", ["scm-davis", "dstm-davis"])
def test_paper_ladders_pass_preflight_on_replaced_data_and_name_the_problems_otherwise(
    name, tmp_path, tiny_synthetic_root
):
    """Every rung's model is built and its init checkpoint (its pretraining stage's) checked; without
    --allow-random-init offline they still pass (the weights are named), but a rung that starts from a
    checkpoint nobody writes is one line."""
    from vosbench.ablation import load_ladder
    from vosbench.ablation.steps import VosbenchSteps

    ladder = load_ladder(REPO / "ablations" / f"{name}.toml")
    steps = VosbenchSteps(tiny_synthetic_root, replace_data=True, allow_random_init=True)
    for rung in ladder.rungs:
        steps.check(rung)
        if rung.pretraining() is not None:
            steps.check(rung.pretraining())
    # without its pretraining stage the baseline points at runs/stm-r50-pretrain/last.pt, which is not there
    import dataclasses

    bare = dataclasses.replace(ladder.rungs[0], pretrain_config=None)
    with pytest.raises(ConfigError, match="init_checkpoint not found"):
        steps.check(bare)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["scm-davis", "dstm-davis"])
def test_paper_scale_ladder_completes_every_rung_on_the_embedded_data(name, tmp_path, tiny_synthetic_root):
    """The full-size ladders run end to end: every pretraining stage, training, inference and
    evaluation, one step per stage on random backbones. The crops are cut (--set) because a CPU
    cannot hold batch 12 of 384x640 clips through ResNeSt-101 (≈4 GB per ResNet-50 clip at 384x384)."""
    res = CliRunner().invoke(app, [
        "ablate", "--config", str(REPO / "ablations" / f"{name}.toml"), "--data", str(tiny_synthetic_root),
        "--max-steps", "1", "--device", "cpu", "--allow-random-init", "--out", str(tmp_path / "out"),
        "--cache", str(tmp_path / "cache"), "--set", "train.batch_size=1", "--set", "data.crop=[64, 64]",
        "--set", "data.short_side=[64, 80]", "--set", "data.workers=0",
    ])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "out" / "ladder.json").read_text())
    from vosbench.ablation import load_ladder

    assert [r["rung"] for r in summary] == [r.name for r in load_ladder(REPO / "ablations" / f"{name}.toml").rungs]
    assert all("J&F-Mean" in r["metrics"] for r in summary)


def _stage_data(steps, stage):
    from vosbench.train.run import resolve_run_config

    return resolve_run_config(stage.train_config, data=steps.data, overrides=steps._overrides(stage)).data


@pytest.mark.parametrize("name", ["scm-davis", "dstm-davis"])
def test_replaced_data_smaller_than_the_crops_trains_at_its_own_resolution(name, tiny_synthetic_root):
    """The tiny profile's 96x160 frames under the full-size crops (384 px short sides): every
    stage is scaled by 96/384, and the note says so once."""
    from vosbench.ablation import load_ladder
    from vosbench.ablation.steps import VosbenchSteps
    from vosbench.train.run import resolve_run_config

    ladder = load_ladder(REPO / "ablations" / f"{name}.toml")
    steps = VosbenchSteps(tiny_synthetic_root, replace_data=True, allow_random_init=True)
    assert steps.frame_short_side("train", "480p") == 96
    n_stages = 0
    for rung in ladder.rungs:
        for stage in (rung, rung.pretraining()):
            if stage is None or stage.train_config is None:
                continue
            as_written = resolve_run_config(stage.train_config, overrides=steps._base_overrides(stage)).data
            assert min(as_written.crop) == 384 and all(c % 64 == 0 for c in as_written.crop)  # so /4 is exact
            data = _stage_data(steps, stage)
            assert data.crop == tuple(c // 4 for c in as_written.crop), stage.name
            assert data.short_side == tuple(round(s / 4) for s in as_written.short_side), stage.name
            n_stages += 1
    assert n_stages >= len(ladder.rungs)
    note = steps.fit_note(ladder.rungs)
    assert note is not None and "96 px" in note
    assert "crop 384x384 -> 96x96, short side [384, 512] -> [96, 128]" in note  # every pretraining config
    if name == "scm-davis":
        assert "crop 384x640 -> 96x160, short side [384, 1080] -> [96, 270]" in note
    # an explicit --set crop that the frames can hold leaves the stage as set
    small = VosbenchSteps(tiny_synthetic_root, replace_data=True, overrides=["data.crop=[64, 64]"])
    assert _stage_data(small, ladder.rungs[0]).crop == (64, 64)
    assert _stage_data(small, ladder.rungs[0]).short_side == (384, 480)  # the frames hold the crop: as written


def test_replaced_data_at_least_the_crops_size_changes_nothing(make_davis_root, tiny_synthetic_root):
    """DAVIS-size frames (480x854) under the full-size ladder, the tiny profile's under the CPU one."""
    from vosbench.ablation import load_ladder
    from vosbench.ablation.steps import VosbenchSteps
    from vosbench.train.run import resolve_run_config

    root = make_davis_root({"a": (1, 1), "b": (1, 2)}, split="train", size=(480, 854))
    for data, ladder_name in ((root, "scm-davis"), (tiny_synthetic_root, "scm-cpu"), (tiny_synthetic_root, "dstm-cpu")):
        ladder = load_ladder(REPO / "ablations" / f"{ladder_name}.toml")
        steps = VosbenchSteps(data, replace_data=True)
        assert steps.fit_note(ladder.rungs) is None
        for rung in ladder.rungs:
            for stage in (rung, rung.pretraining()):
                if stage is None or stage.train_config is None:
                    continue
                as_written = resolve_run_config(stage.train_config, overrides=steps._base_overrides(stage)).data
                data_cfg = _stage_data(steps, stage)
                assert (data_cfg.crop, data_cfg.short_side) == (as_written.crop, as_written.short_side)
