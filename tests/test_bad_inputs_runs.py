"""Issue 26, run safety: the classes of :mod:`tests.test_bad_inputs` for training, locks, ensemble
weights, temps, signals and write failures.

Each case of :data:`CASES` runs one verb and asserts what ``tests/test_bad_inputs.py`` asserts: the
exit code; one stderr line, an ``error:`` naming the file or option; no traceback; nothing under
``tmp_path`` added, changed or removed beyond what the case lists; plus the case's own ``check``
(e.g. that no checkpoint holds NaN weights). Every class here failed on the code before issue 26
(a traceback, no line, or exit 0 with a wrong result). The tests after :data:`CASES` cover the
classes whose right answer is not an error: resume from the newest intact checkpoint, weights
that overflow a sum, a folder named like ``DIR:WEIGHT``, temp sweeps, SIGTERM, real short writes.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import tests.test_bad_inputs as bad_inputs
from tests.conftest import REPO
from tests.test_bad_inputs import SIZE, Env, _dead_pid
from vosbench.data.imageio import read_mask
from vosbench_cli.main import app

LOCK = ".vosbench.lock"


@dataclass
class Case(bad_inputs.Case):
    check: Callable[[], None] | None = None  # more assertions once the command has run


def _train(env: Env, root: Path, *extra: str, out: str = "run") -> list[str]:
    return ["train", "--config", str(env.train_config(root, "train.epochs=4")), "--out", str(env.tmp / out),
            "--device", "cpu", *extra]


def _finite_checkpoints(folder: Path) -> None:
    for p in folder.glob("*.pt"):
        state = torch.load(p, weights_only=True)["state_dict"]
        assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()), p


# --------------------------------------------------------------------------- the cases


BAD_CONFIG = {  # --set value -> the key the line names (each was accepted, or a traceback, before)
    "augment.scale=[0, 0]": "augment.scale",  # trained on empty samples with loss 0.0
    "augment.scale=[-1, 1]": "augment.scale",
    "data.short_side=[1, 1]": "data.short_side",  # empty samples, loss 0.0
    "augment.hue=5": "augment.hue",
    "optim.lr_decay_epochs=[-5]": "optim.lr_decay_epochs",
    "optim.grad_clip=inf": "optim.grad_clip",
    "augment.rotate=nan": "augment.rotate",  # a traceback
    "augment.translate=-0.1": "augment.translate",  # a traceback
    "train.seed=-1": "train.seed",  # a traceback
    "optim.weight_decay=inf": "optim.weight_decay",  # exit 0 with a NaN checkpoint
    "optim.lr=inf": "optim.lr",
}


def test_every_numeric_config_value_has_a_range():
    """The range table covers every number of every section (a new key cannot slip in unchecked)."""
    import dataclasses
    import typing

    from vosbench.train.config import RANGES, TrainConfig

    numeric = set()
    for section in dataclasses.fields(TrainConfig):
        hints = typing.get_type_hints(section.default_factory)  # type: ignore[arg-type]
        for name, hint in hints.items():
            args = typing.get_args(hint) or (hint,)
            if all(a in (int, float) for a in args) and hint is not bool:
                numeric.add(f"{section.name}.{name}")
    assert numeric - set(RANGES) == set(), numeric - set(RANGES)


def _bad_config(setting: str) -> Callable[[Env], Case]:
    def build(env: Env) -> Case:
        return Case(_train(env, env.davis(), "--max-steps", "1", "--set", setting), BAD_CONFIG[setting])

    build.__name__ = f"config_{setting.split('=')[0]}_{setting.split('=')[1].strip('[]').replace(', ', '_')}"
    return build


def nan_weights_on_a_saved_step(env: Env) -> Case:
    """The update of step 2 makes the weights NaN (its loss was finite): step 2 used to be saved as
    last.pt, then step 3's NaN loss named that file the "last good checkpoint"."""
    real = torch.optim.Adam.step
    calls = {"n": 0}

    def poisoned(self, *a, **k):
        out = real(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == 2:
            with torch.no_grad():
                for group in self.param_groups:
                    for p in group["params"]:
                        p.fill_(float("nan"))
        return out

    env.monkeypatch.setattr(torch.optim.Adam, "step", poisoned)

    def check() -> None:
        _finite_checkpoints(env.tmp / "run")
        assert torch.load(env.tmp / "run" / "last.pt", weights_only=True)["step"] == 1

    return Case(_train(env, env.davis(), "--max-steps", "3"),
                f"last good checkpoint: {env.tmp / 'run' / 'last.pt'} (step 1)",
                new={"run", "run/config.toml", "run/log.csv", "run/step-1.pt", "run/last.pt"}, check=check)


def train_into_a_folder_of_step_checkpoints(env: Env) -> Case:
    """No last.pt but step-N.pt files: a new run used to start over there and prune them (a mixed folder)."""
    root = env.davis()
    assert CliRunner().invoke(app, _train(env, root, "--max-steps", "2")).exit_code == 0
    (env.tmp / "run" / "last.pt").unlink()
    return Case(_train(env, root, "--max-steps", "3"), "--resume")


def _holder(env: Env, out: Path) -> None:
    """Another process holding ``out``'s lock (plain filelock, as any vosbench version would take it)."""
    out.mkdir(parents=True, exist_ok=True)
    code = ("import sys\nfrom filelock import FileLock\nlock = FileLock(sys.argv[1]); lock.acquire()\n"
            "open(sys.argv[1], 'r+').write('vosbench train, pid 4242 on elsewhere')\n"
            "print('held', flush=True)\nsys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out / LOCK)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"

    def stop() -> None:
        proc.stdin.close()
        proc.wait(timeout=30)

    env.stack.callback(stop)


def train_while_another_run_writes(env: Env) -> Case:  # both used to exit 0, files interleaved
    _holder(env, env.tmp / "run")
    return Case(_train(env, env.davis(), "--max-steps", "1"), "pid 4242")


def infer_while_another_run_writes(env: Env) -> Case:
    _holder(env, env.tmp / "out")
    return Case(env.infer(env.davis(), env.checkpoint()), "pid 4242")


def _probs(env: Env, name: str, seed: int = 0, size: tuple[int, int] = SIZE, data: str = "davis") -> Path:
    """A folder of saved probabilities (infer --save-probs) of sequence ``a``."""
    root = env.make_davis_root({"a": (3, 1)}, size=size, root=env.tmp / data)
    args = env.infer(root, env.checkpoint(f"{name}.pt", seed=seed), name, "--save-probs")
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return env.tmp / name


def merge_while_another_run_writes(env: Env) -> Case:
    probs = _probs(env, "p")
    _holder(env, env.tmp / "m")
    return Case(["merge", str(probs), "--out", str(env.tmp / "m")], "pid 4242")


def merge_frames_of_other_sizes(env: Env) -> Case:  # a traceback (a tensor size mismatch)
    small, big = _probs(env, "small"), _probs(env, "big", size=(48, 64), data="davis-big")
    return Case(["merge", str(small), str(big), "--out", str(env.tmp / "m")], "big/a/probs/00000.npz", new={"m"})


def infinite_member_weight(env: Env) -> Case:  # "the model produced non-finite probabilities"
    a, b = env.checkpoint("a.pt"), env.checkpoint("b.pt", seed=1)
    return Case(["infer", "--ensemble", f"{a}:inf,{b}", "--data", str(env.davis()), "--out", str(env.tmp / "out")],
                "weight")


def infinite_finetune_lr(env: Env) -> Case:  # "the model produced non-finite probabilities"
    return Case(env.infer(env.davis(), env.checkpoint(), "out", "--finetune-steps", "1", "--finetune-lr", "inf"),
                "learning rate")


def _ladder(env: Env, head: str) -> list[str]:
    ckpt = env.checkpoint()
    (env.tmp / "l.toml").write_text(f'[ladder]\n{head}\n\n[[rungs]]\nname = "base"\ncheckpoint = "{ckpt.name}"\n')
    return ["ablate", "--config", str(env.tmp / "l.toml"), "--data", str(env.davis()), "--device", "cpu"]


def ladder_name_outside(env: Env) -> Case:  # wrote its tables to runs/ablate/../../x
    return Case(_ladder(env, 'name = "../../x"'), "'../../x'")


def ladder_value_of_wrong_type(env: Env) -> Case:  # a traceback
    return Case(_ladder(env, 'name = "l"\nfeatures = "abc"'), "features")


def _long(env: Env) -> str:
    return str(env.tmp / ("x" * 300))


def infer_name_too_long(env: Env) -> Case:  # a traceback
    return Case(env.infer(env.davis(), env.checkpoint(), "x" * 300), "File name too long")


def train_name_too_long(env: Env) -> Case:  # a traceback
    return Case(["train", "--config", str(env.train_config(env.davis())), "--out", _long(env), "--device", "cpu"],
                "File name too long")


def visualize_name_too_long(env: Env) -> Case:  # a traceback
    root = env.davis()
    return Case(["visualize", "--data", str(root), "--results", str(root / "Annotations" / "480p"),
                 "--out", _long(env)], "File name too long")


def train_on_single_frame_videos(env: Env) -> Case:  # used without a word
    return Case(_train(env, env.davis({"a": (1, 1), "b": (1, 1)}), "--max-steps", "1"), "single annotated frame")


CASES = [*(_bad_config(s) for s in BAD_CONFIG), nan_weights_on_a_saved_step, train_into_a_folder_of_step_checkpoints,
         train_while_another_run_writes, infer_while_another_run_writes, merge_while_another_run_writes,
         merge_frames_of_other_sizes, infinite_member_weight, infinite_finetune_lr, ladder_name_outside,
         ladder_value_of_wrong_type, infer_name_too_long, train_name_too_long, visualize_name_too_long,
         train_on_single_frame_videos]


@pytest.mark.parametrize("build", [pytest.param(c, id=c.__name__) for c in CASES])
def test_bad_run_is_one_line_and_touches_nothing(build, make_davis_root, tmp_path, monkeypatch):
    """The assertions of tests/test_bad_inputs.py (one line, exit code, nothing else touched), then the case's own."""
    cases: list[Case] = []

    def keep(env: Env) -> Case:
        cases.append(build(env))
        return cases[-1]

    bad_inputs.test_bad_input_is_one_line_and_touches_nothing(keep, make_davis_root, tmp_path, monkeypatch)
    if cases[0].check is not None:
        cases[0].check()


# --------------------------------------------------------------------------- classes whose answer is not an error


def _log_steps(run: Path) -> list[int]:
    return [int(line.split(",")[0]) for line in (run / "log.csv").read_text().splitlines()[1:]]


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_resume_continues_from_the_newest_intact_step_checkpoint(make_davis_root, tmp_path, damage):
    """last.pt gone (or cut short): --resume used to start over, cut log.csv and prune the old
    step files into a mixed folder. It continues from step-2.pt, keeps log rows 1-2 and the
    checkpoints it did not replace."""
    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    root = env.davis()
    run = tmp_path / "run"
    assert CliRunner().invoke(app, _train(env, root, "--max-steps", "2")).exit_code == 0
    rows = (run / "log.csv").read_text().splitlines()  # header, step 1, step 2 (with their wall-clock seconds)
    files = {n: (run / n).stat().st_ino for n in ("step-1.pt", "step-2.pt")}  # a rewrite (atomic) changes the inode
    if damage == "missing":
        (run / "last.pt").unlink()
    else:
        data = (run / "last.pt").read_bytes()
        (run / "last.pt").unlink()  # last.pt is a hard link to step-2.pt: cut short a copy of its own
        (run / "last.pt").write_bytes(data[: len(data) // 2])
    res = CliRunner().invoke(app, _train(env, root, "--max-steps", "3", "--resume"))
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    assert _log_steps(run) == [1, 2, 3]
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 3
    assert (run / "log.csv").read_text().splitlines()[:3] == rows  # the run's own rows, not a new run's
    assert {n: (run / n).stat().st_ino for n in files} == files  # not replaced by a new run's steps 1-2
    if damage == "truncated":
        said = "".join(res.stderr.split())  # rich wraps the warning
        assert "resumingfrom" in said and "step-2.ptinstead" in said, res.stderr


def test_ensemble_weights_that_overflow_a_sum_still_average(make_davis_root, tmp_path):
    """Weights 1e308 + 1e308 overflow to inf; the masks were all background. Normalised without
    overflow they equal the masks of weights 1 and 1."""
    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    root = env.davis({"a": (4, 1)})
    a, b = env.checkpoint("a.pt"), env.checkpoint("b.pt", seed=1)
    for out, w in (("one", "1"), ("huge", "1e308")):
        res = CliRunner().invoke(app, ["infer", "--ensemble", f"{a}:{w},{b}:{w}", "--data", str(root),
                                       "--out", str(tmp_path / out)])
        assert res.exit_code == 0, res.output
    frames = sorted((tmp_path / "one" / "a").glob("*.png"))
    assert len(frames) == 4
    assert any(read_mask(f).any() for f in frames[1:])  # not all background
    for f in frames:
        assert np.array_equal(read_mask(f), read_mask(tmp_path / "huge" / "a" / f.name)), f.name


def test_a_folder_named_like_dir_colon_weight_is_that_folder(make_davis_root, tmp_path):
    """``run-12:30`` is a folder of its own: it used to be read as ``run-12`` with weight 30 (and
    merged, where a folder ``run-12`` exists)."""
    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    own, other = _probs(env, "own", seed=0), _probs(env, "other", seed=1)
    named = tmp_path / "run-12:30"
    shutil.copytree(own, named)
    shutil.copytree(other, tmp_path / "run-12")
    for src, out in ((named, "m1"), (own, "m2")):
        res = CliRunner().invoke(app, ["merge", str(src), "--out", str(tmp_path / out)])
        assert res.exit_code == 0, res.output
    frames = sorted((tmp_path / "m2" / "a").glob("*.png"))
    assert frames
    assert all(np.array_equal(read_mask(f), read_mask(tmp_path / "m1" / "a" / f.name)) for f in frames)
    differ = [f for f in frames if not np.array_equal(read_mask(f), read_mask(tmp_path / "other" / "a" / f.name))]
    assert differ, "the two checkpoints' masks are the same: the test cannot tell the folders apart"
    # DIR:WEIGHT where DIR exists as given is still a weight
    res = CliRunner().invoke(app, ["merge", f"{own}:2", str(other), "--out", str(tmp_path / "m3")])
    assert res.exit_code == 0, res.output
    assert "w=0.667" in res.output


def test_merge_and_prepare_synthetic_sweep_dead_temps(make_davis_root, tmp_path):
    """A merge or prepare synthetic killed mid-write leaves a temp folder; the next run removes it
    (a live process's temp and files not named by the scheme stay)."""
    from vosbench.fsutil import TEMP_MARK, temp_prefix

    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    probs = _probs(env, "p")
    dead = temp_prefix("x").replace(f"-{os.getpid()}-", f"-{_dead_pid()}-")
    live = temp_prefix("x")
    runs = {
        tmp_path / "m": ["merge", str(probs), "--out", str(tmp_path / "m")],
        tmp_path / "data": ["prepare", "synthetic", "--root", str(tmp_path / "data" / "synth"), "--profile", "tiny"],
    }
    planted = {"dead temp folder": f"{dead}abc{TEMP_MARK}", "live temp": f"{live}ghi{TEMP_MARK}", "other": ".keep.tmp"}
    for folder in runs:
        folder.mkdir()
        (folder / planted["dead temp folder"]).mkdir()
        (folder / planted["dead temp folder"] / "00000.png").write_bytes(b"x" * 1000)
        (folder / planted["live temp"]).write_bytes(b"in use")
        (folder / planted["other"]).write_bytes(b"not ours")
    results = {folder: CliRunner().invoke(app, args) for folder, args in runs.items()}
    assert all(r.exit_code == 0 for r in results.values()), {f: r.output for f, r in results.items()}
    hidden = {folder: sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) for folder in runs}
    assert hidden == {folder: sorted([planted["live temp"], planted["other"]]) for folder in runs}


_SLOW = """
import functools, importlib, sys, time
module, _, path = sys.argv[1].partition(":")
owner = importlib.import_module(module)
*parents, name = path.split(".")
for p in parents:
    owner = getattr(owner, p)
real = getattr(owner, name)
@functools.wraps(real)
def slow(*a, **k):
    time.sleep(0.3)
    return real(*a, **k)
setattr(owner, name, slow)
from vosbench_cli.main import app
sys.argv = ["vosbench", *sys.argv[2:]]
app()
"""


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".vostmp" in p.name or p.name == LOCK]


@pytest.mark.parametrize("verb", ["train", "infer"])
def test_sigterm_ends_a_run_like_ctrl_c(make_davis_root, tmp_path, verb):
    """SIGTERM (a scheduler's stop, ``kill``) used to end train and infer without a line, leaving
    their temps; now it is one line, a non-zero exit, and no temp or lock left."""
    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    if verb == "train":
        root = env.davis({"a": (4, 1)})
        args = ["train", "--config", str(env.train_config(root, "train.epochs=200")), "--out", str(tmp_path / "run"),
                "--device", "cpu"]
        out, started, slow = tmp_path / "run", tmp_path / "run" / "step-1.pt", "vosbench.train.loop:clip_forward"
    else:
        root = env.davis({"a": (30, 1), "b": (30, 1)})
        args = env.infer(root, env.checkpoint(), "out", "--device", "cpu")
        out, started, slow = tmp_path / "out", None, "vosbench.infer.engine:InferenceCore.step"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW, slow, *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (started is not None and started.exists()) or (
                    started is None and out.is_dir() and any(".vostmp" in p.name for p in out.iterdir())):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode not in (0, -signal.SIGTERM), err
    assert lines and lines[-1].startswith("error: ") and "SIGTERM" in lines[-1], err
    assert "Traceback" not in err
    assert not _leftovers(out), _leftovers(out)


def _limited(limit: int) -> Callable[[], None]:
    def set_limit() -> None:  # in the child: a real short write (EFBIG) where a file would pass `limit` bytes
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return set_limit


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="POSIX file-size limit")
def test_a_real_short_write_of_a_checkpoint_is_one_line(make_davis_root, tmp_path):
    """torch.save hitting a full disk mid-file raised "unexpected pos" (a RuntimeError traceback:
    torch's zip writer swallows the OSError); a file-size limit gives the same short write without a
    small file system (the /dev/full test of tests/test_bad_inputs.py fails at the first write)."""
    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    out = tmp_path / "run"
    res = subprocess.run([sys.executable, "-m", "vosbench_cli.main", *_train(env, env.davis(), "--max-steps", "1")],
                         cwd=tmp_path, capture_output=True, text=True, preexec_fn=_limited(200_000), timeout=300)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 1, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "run/step-1.pt" in lines[0], res.stderr
    assert "File too large" in lines[0]
    assert not _leftovers(out), _leftovers(out)
    assert not list(out.glob("*.pt"))


def test_some_single_frame_videos_are_one_warning(make_davis_root, tmp_path):
    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    root = env.davis({"a": (1, 1), "b": (3, 1)})
    res = CliRunner().invoke(app, _train(env, root, "--max-steps", "1"))
    assert res.exit_code == 0, res.output
    warnings = [ln for ln in res.stderr.splitlines() if "single annotated frame" in ln]
    assert len(warnings) == 1 and "a" in warnings[0], res.stderr
