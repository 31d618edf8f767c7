"""Ladder parsing, step caching and table contents, with a fake step runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vosbench.ablation import boost_table, checkmark_table, full_table, load_ladder, run_ladder, write_tables
from vosbench.ablation.tables import to_latex, to_markdown
from vosbench.errors import ConfigError

LADDER = """
[ladder]
name = "toy"
features = ["ResNeSt", "Depth", "TTA"]

[[rungs]]
name = "Baseline"
train_config = "train.toml"
set = { "train.epochs" = 10 }
infer = { flip = false }

[[rungs]]
name = "+ResNeSt"
set = { "model.preset" = "r" }
features = ["ResNeSt"]

[[rungs]]
name = "+Depth"
set = { "model.overrides.depth" = true }
features = ["Depth"]

[[rungs]]
name = "+TTA"
infer = { flip = true }
features = ["TTA"]
"""

# J&F per rung of the fake runner, keyed by what the rung changes
SCORES = {"Baseline": 0.700, "+ResNeSt": 0.729, "+Depth": 0.751, "+TTA": 0.766, "+Ensemble": 0.78}


class FakeRunner:
    def __init__(self):
        self.calls = {"train": 0, "infer": 0, "evaluate": 0}

    def data_fingerprint(self) -> str:
        return "toy-data"

    def check(self, rung) -> None:
        pass

    def train(self, rung, work_dir: Path, progress) -> Path:
        self.calls["train"] += 1
        p = work_dir / "last.pt"
        p.write_text(json.dumps(rung.train_overrides, sort_keys=True))
        return p

    def infer(self, rung, checkpoint: Path, out_dir: Path, progress, ensemble=()) -> None:
        self.calls["infer"] += 1
        self.ensembles = getattr(self, "ensembles", {})
        self.ensembles[rung.name] = [checkpoint, *ensemble]
        (out_dir / "masks.txt").write_text(checkpoint.read_text() + json.dumps(rung.infer_options))

    def evaluate(self, rung, results_dir: Path, progress) -> dict:
        self.calls["evaluate"] += 1
        jf = SCORES[rung.name]
        g = {"J&F-Mean": jf, "J-Mean": jf - 0.02, "J-Recall": 0.9, "J-Decay": 0.1,
             "F-Mean": jf + 0.02, "F-Recall": 0.95, "F-Decay": 0.12}
        return {"global": g, "subsets": {"look-alike": {"J&F-Mean": jf - 0.1}}}


@pytest.fixture
def ladder_file(tmp_path: Path) -> Path:
    (tmp_path / "train.toml").write_text("[train]\nmax_steps = 5\n")
    p = tmp_path / "toy.toml"
    p.write_text(LADDER)
    return p


def test_rungs_inherit_and_accumulate(ladder_file):
    ladder = load_ladder(ladder_file)
    assert [r.name for r in ladder.rungs] == ["Baseline", "+ResNeSt", "+Depth", "+TTA"]
    last = ladder.rungs[-1]
    assert last.train_overrides == {"train.epochs": 10, "model.preset": "r", "model.overrides.depth": True}
    assert last.infer_options == {"flip": True}
    assert last.features == ("ResNeSt", "Depth", "TTA")
    assert ladder.rungs[2].train_config == ladder_file.parent / "train.toml"


def test_second_run_does_no_work_and_tta_rung_reuses_training(ladder_file, tmp_path):
    ladder = load_ladder(ladder_file)
    runner = FakeRunner()
    res = run_ladder(ladder, tmp_path / "out", runner)
    # the +TTA rung only changes inference: its training is the +Depth rung's
    assert runner.calls == {"train": 3, "infer": 4, "evaluate": 4}
    assert res.rungs[3].checkpoint == res.rungs[2].checkpoint
    assert res.rungs[3].ran == {"train": False, "infer": True, "evaluate": True}
    runner2 = FakeRunner()
    res2 = run_ladder(ladder, tmp_path / "out", runner2)
    assert runner2.calls == {"train": 0, "infer": 0, "evaluate": 0}
    assert [r.metrics for r in res2.rungs] == [r.metrics for r in res.rungs]


def test_changed_rung_redoes_only_what_depends_on_it(ladder_file, tmp_path):
    run_ladder(load_ladder(ladder_file), tmp_path / "out", FakeRunner())
    ladder_file.write_text(LADDER.replace("infer = { flip = true }", "infer = { flip = true, scales = [1.0, 1.25] }"))
    runner = FakeRunner()
    run_ladder(load_ladder(ladder_file), tmp_path / "out", runner)
    assert runner.calls == {"train": 0, "infer": 1, "evaluate": 1}


def test_changed_training_config_retrains(ladder_file, tmp_path):
    run_ladder(load_ladder(ladder_file), tmp_path / "out", FakeRunner())
    (ladder_file.parent / "train.toml").write_text("[train]\nmax_steps = 5\nlr = 1e-4\n")
    runner = FakeRunner()
    res = run_ladder(load_ladder(ladder_file), tmp_path / "out", runner)
    # every rung trains from that file: all retrain, and everything downstream is redone
    assert runner.calls == {"train": 3, "infer": 4, "evaluate": 4}
    assert all(r.ran["train"] for r in res.rungs[:3])


def test_interrupted_ladder_resumes(ladder_file, tmp_path):
    class Failing(FakeRunner):
        def infer(self, rung, checkpoint, out_dir, progress):
            if rung.name == "+Depth":
                (out_dir / "half.txt").write_text("x")
                raise RuntimeError("killed")
            super().infer(rung, checkpoint, out_dir, progress)

    with pytest.raises(RuntimeError):
        run_ladder(load_ladder(ladder_file), tmp_path / "out", Failing())
    assert not list((tmp_path / "out" / "infer").glob(".*.vostmp*")), "no half-written results"
    runner = FakeRunner()
    run_ladder(load_ladder(ladder_file), tmp_path / "out", runner)
    assert runner.calls == {"train": 0, "infer": 2, "evaluate": 2}


def test_tables_from_known_metrics(ladder_file, tmp_path):
    res = run_ladder(load_ladder(ladder_file), tmp_path / "out", FakeRunner())
    boost = boost_table(res)
    assert boost["Global Mean"].tolist() == [70.0, 72.9, 75.1, 76.6]
    assert boost["Boost"].tolist() == ["-", "+2.9", "+2.2", "+1.5"]
    sub = boost_table(res, subset="look-alike")
    assert sub["Global Mean"].tolist() == [60.0, 62.9, 65.1, 66.6]
    checks = checkmark_table(res)
    assert checks.loc["+Depth", "ResNeSt"] == "✓" and checks.loc["+Depth", "TTA"] == ""
    assert checks["J&F"].tolist() == [70.0, 72.9, 75.1, 76.6]
    full = full_table(res)
    assert full.loc[0, "J Mean"] == 68.0 and full.loc[3, "F Mean"] == 78.6
    assert full.loc[1, "J&F (look-alike)"] == 62.9
    md = to_markdown(boost)
    assert "| +ResNeSt | 72.9 | +2.9 |" in md
    tex = to_latex(checks, index=True)
    assert r"\checkmark" in tex and r"J\&F" in tex
    written = write_tables(res, tmp_path / "tables")
    assert set(written) >= {"boost.md", "boost.tex", "boost.csv", "checkmarks.csv", "full.md", "ladder.png"}
    assert (tmp_path / "tables" / "ladder.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ladder]\nname='x'\n", "no \\[\\[rungs\\]\\]"),
        ("[[rungs]]\nname='a'\ntrain_config='train.toml'\nbogus=1\n", "unknown key 'bogus'"),
        ("[[rungs]]\nname='a'\n", "needs a train_config"),
        ("[[rungs]]\nname='a'\ntrain_config='missing.toml'\n", "missing.toml not found"),
        ("[ladder]\nfeatures=['A']\n[[rungs]]\nname='a'\ntrain_config='train.toml'\nfeatures=['B']\n", "feature 'B'"),
        ("[[rungs]\n", "invalid TOML"),
    ],
)
def test_bad_ladders(tmp_path, text, message):
    (tmp_path / "train.toml").write_text("")
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_ladder(p)


ABLATIONS = Path(__file__).resolve().parents[2] / "ablations"
PAPER_COLUMNS = {  # SCM Table 2 rows / D-STM Table 2 check-mark columns
    "scm": ["ResNeSt", "Seg. head", "Spatial prior", "Train strategy", "Flip+MS", "Finetune"],
    "dstm": ["ResNeSt", "Lovász", "Depth", "ASPP", "TTA"],
}


def _resolved_model(rung):
    from vosbench.ablation.steps import toml_value
    from vosbench.models import get_preset
    from vosbench.train.run import resolve_run_config

    cfg = resolve_run_config(rung.train_config, overrides=[f"{k}={toml_value(v)}" for k, v in rung.train_overrides.items()])
    return cfg, get_preset(cfg.model.preset, **cfg.model.overrides)


@pytest.mark.parametrize("name", ["scm-cpu", "scm-davis", "dstm-cpu", "dstm-davis"])
def test_shipped_ladders_are_the_papers_rungs(name):
    ladder = load_ladder(ABLATIONS / f"{name}.toml")
    family = name.split("-")[0]
    # one rung per paper row, each switching on exactly the next column, in the paper's order
    assert len(ladder.rungs) == len(PAPER_COLUMNS[family]) + 1
    assert [len(r.features) for r in ladder.rungs] == list(range(len(ladder.rungs)))
    assert [f.split("-")[0] for f in ladder.rungs[-1].features] == PAPER_COLUMNS[family]
    models = [_resolved_model(r)[1] for r in ladder.rungs]  # every preset and override exists
    assert models[0].backbone.startswith("resnet") and "resnest" in models[1].backbone
    last = models[-1]
    if family == "scm":
        assert (last.spatial_prior, last.aspp, last.refine, last.depth) == (True, True, True, False)
        assert not models[2].spatial_prior and models[3].spatial_prior
        assert ladder.rungs[-1].infer_options["finetune_steps"] > 0 and ladder.rungs[-1].infer_options["flip"]
    else:
        assert (last.depth, last.aspp, last.spatial_prior) == (True, True, False) and last.loss.lovasz > 0
        assert models[1].loss.lovasz == 0 < models[2].loss.lovasz and not models[2].depth and models[3].depth
        assert not models[3].aspp and models[4].aspp
    tta = next(i for i, r in enumerate(ladder.rungs) if r.features[-1:] in (("Flip+MS",), ("TTA",)))
    assert len(ladder.rungs[tta].infer_options["scales"]) == 3
    assert len(ladder.rungs[tta - 1].infer_options.get("scales", [1.0])) == 1  # no TTA before its rung


@pytest.mark.parametrize("name", ["scm-cpu", "dstm-cpu", "scm-davis", "dstm-davis"])
def test_ladders_infer_at_the_scale_they_train_at(name):
    """The tiny configs train at half the embedded frames' height: their rungs must infer at 0.5."""
    from vosbench.data.synthetic.profiles import PROFILES

    ladder = load_ladder(ABLATIONS / f"{name}.toml")
    for rung in ladder.rungs:
        cfg, _ = _resolved_model(rung)
        if name.endswith("-cpu"):
            train_scale = sum(cfg.data.short_side) / 2 / PROFILES["small"].size[0]
        else:
            train_scale = 1.0  # DAVIS configs train at full resolution
        scales = rung.infer_options.get("scales", [1.0])
        assert min(scales, key=lambda s: abs(s - train_scale)) == pytest.approx(train_scale, abs=0.01), rung.name


def test_ensemble_rung_averages_with_named_earlier_rungs(ladder_file, tmp_path):
    ladder_file.write_text(LADDER + '\n[[rungs]]\nname = "+Ensemble"\nensemble = ["+ResNeSt"]\n')
    ladder = load_ladder(ladder_file)
    assert ladder.rungs[-1].ensemble == ("+ResNeSt",)
    assert all(r.ensemble == () for r in ladder.rungs[:-1])
    runner = FakeRunner()
    res = run_ladder(ladder, tmp_path / "out", runner)
    # no training of its own: the +TTA rung's model, averaged with the +ResNeSt rung's
    assert runner.calls == {"train": 3, "infer": 5, "evaluate": 5}
    assert runner.ensembles["+Ensemble"] == [res.rungs[3].checkpoint, res.rungs[1].checkpoint]
    assert runner.ensembles["+TTA"] == [res.rungs[3].checkpoint]
    assert res.rungs[4].results_dir != res.rungs[3].results_dir  # same options, other members
    runner2 = FakeRunner()
    run_ladder(ladder, tmp_path / "out", runner2)
    assert runner2.calls == {"train": 0, "infer": 0, "evaluate": 0}


@pytest.mark.parametrize("names", ['["+Later"]', '["+Ensemble"]', '"+ResNeSt"'])
def test_ensemble_must_name_earlier_rungs(ladder_file, names):
    ladder_file.write_text(LADDER + f'\n[[rungs]]\nname = "+Ensemble"\nensemble = {names}\n'
                           '\n[[rungs]]\nname = "+Later"\n')
    with pytest.raises(ConfigError, match="ensemble"):
        load_ladder(ladder_file)


def test_full_scale_scm_ladder_ends_with_finetune_and_ensemble():
    """SCM Table 2's last row: online finetune and model ensemble (two differently trained models)."""
    ladder = load_ladder(ABLATIONS / "scm-davis.toml")
    last = ladder.rungs[-1]
    assert last.ensemble and last.infer_options["finetune_steps"] > 0
    by_name = {r.name: r for r in ladder.rungs}
    assert all(by_name[e].train_overrides != last.train_overrides for e in last.ensemble)


PRETRAIN_LADDER = """
[[rungs]]
name = "Baseline"
train_config = "train.toml"
pretrain_config = "pre.toml"

[[rungs]]
name = "+ResNeSt"
set = { "model.preset" = "r", "train.epochs" = 3 }

[[rungs]]
name = "+TTA"
set = { "train.epochs" = 4 }
infer = { flip = true }
"""


def test_each_network_gets_its_own_pretraining_stage(tmp_path):
    (tmp_path / "train.toml").write_text("[train]\n")
    (tmp_path / "pre.toml").write_text("[data]\nstage = 'static'\n")
    (tmp_path / "p.toml").write_text(PRETRAIN_LADDER)
    ladder = load_ladder(tmp_path / "p.toml")
    assert ladder.rungs[2].pretrain_config == tmp_path / "pre.toml"  # inherited
    runner = FakeRunner()
    trained = []
    original = runner.train

    def train(rung, work_dir, progress):
        trained.append((rung.name, rung.train_config.name, dict(rung.train_overrides)))
        return original(rung, work_dir, progress)

    runner.train = train
    run_ladder(ladder, tmp_path / "out", runner)
    names = [t[0] for t in trained]
    # the pretraining stage takes only the rung's model overrides, so "+TTA" (same network as
    # "+ResNeSt", other training) reuses its pretraining
    assert names == ["Baseline (pretraining)", "Baseline", "+ResNeSt (pretraining)", "+ResNeSt", "+TTA"]
    pre = {t[0]: t for t in trained}
    assert pre["+ResNeSt (pretraining)"][1:] == ("pre.toml", {"model.preset": "r"})
    init = pre["+TTA"][2]["train.init_checkpoint"]
    assert init == pre["+ResNeSt"][2]["train.init_checkpoint"] != pre["Baseline"][2]["train.init_checkpoint"]
    assert Path(init).is_file() and "pretraining" not in init
    # the main stage's key depends on its pretraining: a changed pretraining config retrains both
    (tmp_path / "pre.toml").write_text("[data]\nstage = 'static'\n[optim]\nlr = 1e-4\n")
    runner2 = FakeRunner()
    run_ladder(load_ladder(tmp_path / "p.toml"), tmp_path / "out", runner2)
    assert runner2.calls["train"] == 5


def test_preflight_reports_every_rungs_problem_before_any_work(ladder_file, tmp_path):
    class Picky(FakeRunner):
        def check(self, rung) -> None:
            if rung.name in ("+ResNeSt", "+TTA"):
                raise ConfigError(f"rung {rung.name!r}: bad")

    runner = Picky()
    with pytest.raises(ConfigError) as err:
        run_ladder(load_ladder(ladder_file), tmp_path / "out", runner)
    assert str(err.value).splitlines() == ["rung '+ResNeSt': bad", "rung '+TTA': bad"]
    assert runner.calls["train"] == 0 and not (tmp_path / "out").exists()


def test_two_processes_sharing_a_cache_run_each_step_once(ladder_file, tmp_path):
    """A second ablate on the same cache goes on with the rungs nobody runs, then waits for the step
    the first one is running and reuses it; the first reuses what the second trained."""
    import threading
    import time

    ladder = load_ladder(ladder_file)
    started, go = threading.Event(), threading.Event()

    class Slow(FakeRunner):
        def train(self, rung, work_dir, progress):
            started.set()
            go.wait(10)
            return super().train(rung, work_dir, progress)

    first, second = Slow(), FakeRunner()
    t1 = threading.Thread(target=run_ladder, args=(ladder, tmp_path / "a", first), kwargs={"cache": tmp_path / "c"})
    t1.start()
    assert started.wait(10)  # the first is inside the baseline's training, holding its lock
    t2 = threading.Thread(target=run_ladder, args=(ladder, tmp_path / "b", second), kwargs={"cache": tmp_path / "c"})
    t2.start()
    deadline = time.monotonic() + 10  # the second skips the busy baseline and trains the two rungs after it
    while second.calls["train"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # (and would train more, were it not waiting for the baseline)
    assert t2.is_alive() and second.calls["train"] == 2  # +ResNeSt, +Depth (+TTA reuses +Depth's)
    go.set()
    t1.join(20)
    t2.join(20)
    # every step ran exactly once between the two
    assert first.calls["train"] == 1 and second.calls["train"] == 2
    assert first.calls["infer"] + second.calls["infer"] == 4
    assert first.calls["evaluate"] + second.calls["evaluate"] == 4
    summaries = [json.loads((tmp_path / out / "ladder.json").read_text()) for out in ("a", "b")]
    assert summaries[0] == summaries[1]


def test_step_lock_is_busy_while_another_process_holds_the_flock(tmp_path):
    """A separate process holding the step's lock file with a plain ``flock`` (an independent
    holder, not the code under test) makes a non-waiting ``step_lock`` raise StepBusy; once it lets
    go, the lock is taken."""
    import subprocess
    import sys

    from vosbench.ablation.runner import StepBusy, step_lock

    path = tmp_path / "locks" / "train-abc.lock"
    path.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys\n"
         f"fh = open({str(path)!r}, 'a+b'); fcntl.flock(fh, fcntl.LOCK_EX)\n"
         "print('held', flush=True); sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StepBusy):
            with step_lock(tmp_path, "train", "abc", wait=False):
                pass
    finally:
        holder.communicate("\n", timeout=30)
    entered = []
    with step_lock(tmp_path, "train", "abc", wait=False):
        entered.append(True)
    assert entered == [True]


def test_results_temps_of_a_killed_run_are_swept(ladder_file, tmp_path):
    """An inference folder left in the cache by a killed `ablate` (temp name, its process gone) is
    removed when a ladder next starts on that cache; a live process's temp stays."""
    import os

    from tests.test_bad_inputs import _dead_pid
    from vosbench.fsutil import TEMP_MARK, temp_prefix

    infer = tmp_path / "cache" / "infer"
    infer.mkdir(parents=True)
    dead = infer / f"{temp_prefix('k1').replace(f'-{os.getpid()}-', f'-{_dead_pid()}-')}x{TEMP_MARK}"
    live = infer / f"{temp_prefix('k2')}y{TEMP_MARK}"
    (dead / "val-001").mkdir(parents=True)
    live.mkdir()
    run_ladder(load_ladder(ladder_file), tmp_path / "out", FakeRunner(), cache=tmp_path / "cache")
    assert not dead.exists() and live.is_dir()
