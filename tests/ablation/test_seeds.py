"""`run_ladder(..., seeds=N)`: one cached training per seed, and the seed statistics / interval tables
checked on hand-made numbers against hand computations (t quantiles from a printed t table)."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest

from tests.ablation.test_ladder import LADDER, FakeRunner
from vosbench.ablation import (
    boost_table,
    checkmark_table,
    full_table,
    load_ladder,
    run_ladder,
    subset_boost_table,
    write_tables,
)
from vosbench.ablation.stats import boost_intervals, seed_summary, seed_values, t_interval

# two-sided 95 % Student-t quantiles t(0.975, df), from a printed table
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 9: 2.262}

# J&F (percent) per rung and seed; "+TTA" is an inference-only rung
VALUES = {
    "Baseline": [10.0, 12.0, 14.0],
    "+ResNeSt": [13.0, 14.0, 18.0],  # paired differences 3, 2, 4: mean 3, sd 1
    "+Depth": [12.0, 17.0, 17.0],  # differences -1, 3, -1: mean 1/3, sd sqrt(16/3)
    "+TTA": [12.5, 17.5, 17.5],  # differences 0.5 on every seed: sd 0
}


class SeededRunner(FakeRunner):
    """The fake runner, scoring each rung by the seed its checkpoint was trained with."""

    def evaluate(self, rung, results_dir: Path, progress) -> dict:
        self.calls["evaluate"] += 1
        trained_with = json.loads((results_dir / "masks.txt").read_text().split("}{")[0] + "}")
        seed = trained_with.get("train.seed", 0)
        jf = VALUES[rung.name][seed] / 100
        g = {"J&F-Mean": jf, "J-Mean": jf - 0.02, "J-Recall": 0.5, "J-Decay": 0.1,
             "F-Mean": jf + 0.02, "F-Recall": 0.5, "F-Decay": 0.1}
        return {"global": g, "subsets": {"look-alike": {"J&F-Mean": jf / 2}}}


@pytest.fixture
def ladder(tmp_path: Path):
    (tmp_path / "train.toml").write_text("[train]\nmax_steps = 5\n")
    (tmp_path / "toy.toml").write_text(LADDER)
    return load_ladder(tmp_path / "toy.toml")


def _hand_interval(diffs: list[float]) -> tuple[float, float, float]:
    mean = sum(diffs) / len(diffs)
    half = T975[len(diffs) - 1] * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return mean, mean - half, mean + half


@pytest.mark.parametrize("values", [[3.0, 2.0, 4.0], [-1.0, 3.0, -1.0], [0.1, 0.4], [1.0, 2.0, 3.0, 4.0, 10.0],
                                    [float(i * i % 7) for i in range(10)]])
def test_t_interval_matches_table_quantiles(values):
    mean, low, high = t_interval(values)
    ref = _hand_interval(values)
    assert mean == pytest.approx(ref[0])
    # the printed table has 3 decimals: bounds agree to that precision of the quantile
    assert low == pytest.approx(ref[1], abs=1e-3 * abs(ref[2] - ref[0]) + 1e-9)
    assert high == pytest.approx(ref[2], abs=1e-3 * abs(ref[2] - ref[0]) + 1e-9)


def test_t_interval_of_one_value_has_no_bounds():
    mean, low, high = t_interval([4.0])
    assert mean == 4.0 and math.isnan(low) and math.isnan(high)


def test_each_seed_trains_once_and_seed_zero_is_the_single_seed_cache(ladder, tmp_path):
    single = SeededRunner()
    one = run_ladder(ladder, tmp_path / "out", single, cache=tmp_path / "cache")
    assert single.calls == {"train": 3, "infer": 4, "evaluate": 4}
    runner = SeededRunner()
    res = run_ladder(ladder, tmp_path / "out", runner, cache=tmp_path / "cache", seeds=3)
    # seed 0 is the single-seed run's cache; seeds 1 and 2 train the 3 training rungs each
    assert runner.calls == {"train": 6, "infer": 8, "evaluate": 8}
    assert [r.checkpoint for r in res.seeds[0]] == [r.checkpoint for r in one.rungs]
    assert res.rungs == res.seeds[0]
    assert len({r.checkpoint for rungs in res.seeds for r in rungs[:3]}) == 9  # one checkpoint per rung and seed
    for rungs in res.seeds:  # the inference-only rung reuses its own seed's training
        assert rungs[3].checkpoint == rungs[2].checkpoint
    assert [[r.seed for r in rungs] for rungs in res.seeds] == [[s] * 4 for s in range(3)]
    assert json.loads(res.seeds[2][0].checkpoint.read_text())["train.seed"] == 2
    assert "train.seed" not in json.loads(res.seeds[0][0].checkpoint.read_text())
    again = SeededRunner()
    run_ladder(ladder, tmp_path / "out", again, cache=tmp_path / "cache", seeds=3)
    assert again.calls == {"train": 0, "infer": 0, "evaluate": 0}
    rows = json.loads((tmp_path / "out" / "ladder.json").read_text())
    assert [(r["rung"], r["seed"]) for r in rows][:5] == [("Baseline", 0), ("+ResNeSt", 0), ("+Depth", 0),
                                                         ("+TTA", 0), ("Baseline", 1)]


def test_boost_intervals_on_hand_made_numbers(ladder, tmp_path):
    res = run_ladder(ladder, tmp_path / "out", SeededRunner(), seeds=3)
    ci = boost_intervals(res)
    assert list(ci.index) == list(VALUES)
    for name, vals in VALUES.items():
        assert ci.loc[name, "mean"] == pytest.approx(sum(vals) / 3)
        assert ci.loc[name, "std"] == pytest.approx(statistics.stdev(vals))
        assert ci.loc[name, "n"] == 3
    assert math.isnan(ci.loc["Baseline", "boost"]) and pd.isna(ci.loc["Baseline", "significant"])
    names = list(VALUES)
    for prev, cur in zip(names, names[1:]):
        diffs = [b - a for a, b in zip(VALUES[prev], VALUES[cur])]
        if statistics.stdev(diffs) == 0:
            continue
        mean, low, high = _hand_interval(diffs)
        assert ci.loc[cur, "boost"] == pytest.approx(mean)
        assert ci.loc[cur, "low"] == pytest.approx(low, abs=1e-3) and ci.loc[cur, "high"] == pytest.approx(high, abs=1e-3)
    # +ResNeSt: 3 ± 4.303/sqrt(3) = [0.52, 5.48] -> significant; +Depth: 1/3 ± 5.74 -> not
    assert bool(ci.loc["+ResNeSt", "significant"]) and not bool(ci.loc["+Depth", "significant"])
    # the same +0.5 on every seed: a zero-width interval that excludes 0
    assert ci.loc["+TTA", "low"] == pytest.approx(0.5) and bool(ci.loc["+TTA", "significant"])
    sub = boost_intervals(res, subset="look-alike")
    assert sub.loc["+ResNeSt", "boost"] == pytest.approx(1.5)
    summary = seed_summary(res)
    assert summary.loc["+Depth", ("J-Mean", "mean")] == pytest.approx(46.0 / 3 - 2)
    tidy = seed_values(res)
    assert len(tidy) == 4 * 3 * (7 + 1)
    assert tidy.query("rung == '+Depth' and seed == 1 and metric == 'J&F-Mean' and subset == 'all'")["value"].item() \
        == pytest.approx(17.0)


def test_multi_seed_tables_show_mean_std_and_marked_intervals(ladder, tmp_path):
    res = run_ladder(ladder, tmp_path / "out", SeededRunner(), seeds=3)
    boost = boost_table(res)
    assert boost["Global Mean"].tolist() == ["12.0 ± 2.0", "15.0 ± 2.6", "15.3 ± 2.9", "15.8 ± 2.9"]
    assert boost["Boost"].tolist() == ["-", "+3.0 [+0.5, +5.5]", "+0.3 [-5.4, +6.1] n.s.", "+0.5 [+0.5, +0.5]"]
    assert checkmark_table(res).loc["+ResNeSt", "J&F"] == "15.0 ± 2.6"
    full = full_table(res)
    assert full.loc[0, "J Mean"] == "10.0 ± 2.0" and full.loc[1, "J&F (look-alike)"] == "7.5 ± 1.3"
    written = write_tables(res, tmp_path / "tables")
    md = (tmp_path / "tables" / "boost.md").read_text()
    assert md.startswith("Mean ± std over 3 seeds") and "t-interval" in md
    assert "| +Depth | 15.3 ± 2.9 | +0.3 [-5.4, +6.1] n.s. |" in md
    ci = pd.read_csv(written["boost-ci.csv"])
    assert set(ci["subset"]) == {"all", "look-alike"}
    # look-alike = half of every value: +ResNeSt 6.5, 7, 9 (mean 7.5, sd sqrt(1.75)); paired differences
    # 1.5, 1, 2: mean 1.5, sd 0.5, half-width 4.303 * 0.5 / sqrt(3) = 1.24
    sub = subset_boost_table(res)
    assert list(sub.columns) == ["Methods", "J&F (all)", "Boost (all)",
                                 "J&F (look-alike)", "Boost (look-alike)"]
    row = sub.set_index("Methods").loc["+ResNeSt"]
    assert row.tolist() == ["15.0 ± 2.6", "+3.0 [+0.5, +5.5]", "7.5 ± 1.3", "+1.5 [+0.3, +2.7]"]
    assert "| +ResNeSt | 15.0 ± 2.6 | +3.0 [+0.5, +5.5] | 7.5 ± 1.3 | +1.5 [+0.3, +2.7] |" in \
        written["boost-subsets.md"].read_text()
    assert len(pd.read_csv(written["seeds.csv"])) == 4 * 3 * 8


def test_single_seed_tables_are_unchanged(ladder, tmp_path):
    res = run_ladder(ladder, tmp_path / "out", SeededRunner(), seeds=1)
    assert boost_table(res)["Boost"].tolist() == ["-", "+3.0", "-1.0", "+0.5"]
    assert subset_boost_table(res)["Boost (look-alike)"].tolist() == ["-", "+1.5", "-0.5", "+0.2"]
    write_tables(res, tmp_path / "tables")
    assert (tmp_path / "tables" / "boost.md").read_text().startswith("| Methods |")
    assert not (tmp_path / "tables" / "boost-ci.csv").exists()


def test_cli_seeds_trains_each_seed_and_prints_intervals(tmp_path, tiny_synthetic_root):
    from typer.testing import CliRunner

    from vosbench_cli.main import app

    config = Path(__file__).resolve().parents[2] / "configs" / "stm-tiny.toml"
    (tmp_path / "l.toml").write_text(f'[ladder]\nname = "two"\n\n[[rungs]]\nname = "Baseline"\ntrain_config = "{config}"\n'
                                     '\n[[rungs]]\nname = "+lr"\nset = { "optim.lr" = 1e-3 }\n')
    args = ["ablate", "--config", str(tmp_path / "l.toml"), "--data", str(tiny_synthetic_root), "--max-steps", "1",
            "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--seeds", "2"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "cache" / "train").glob("*/last.pt"))) == 4  # 2 rungs x 2 seeds
    output = " ".join(res.output.split())
    assert "Mean ± std over 2 seeds" in output and "±" in output
    rows = json.loads((tmp_path / "out" / "ladder.json").read_text())
    assert sorted((r["rung"], r["seed"]) for r in rows) == [("+lr", 0), ("+lr", 1), ("Baseline", 0), ("Baseline", 1)]
    bad = CliRunner().invoke(app, [*args[:-1], "0"])
    assert bad.exit_code != 0


def test_each_seed_pretrains_too(tmp_path):
    (tmp_path / "train.toml").write_text("[train]\nmax_steps = 5\n")
    (tmp_path / "pre.toml").write_text("[train]\nmax_steps = 3\n")
    (tmp_path / "toy.toml").write_text(LADDER.replace('train_config = "train.toml"',
                                                      'train_config = "train.toml"\npretrain_config = "pre.toml"'))
    ladder = load_ladder(tmp_path / "toy.toml")
    runner = SeededRunner()
    res = run_ladder(ladder, tmp_path / "out", runner, seeds=2)
    # 3 networks (the +TTA rung is +Depth's) x (pretraining + training) x 2 seeds
    assert runner.calls["train"] == 12
    for seed, rungs in enumerate(res.seeds):
        trained = json.loads(rungs[1].checkpoint.read_text())
        pretrained = json.loads(Path(trained["train.init_checkpoint"]).read_text())
        assert trained.get("train.seed", 0) == pretrained.get("train.seed", 0) == seed
