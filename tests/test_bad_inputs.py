"""Every class of bad input and fault of issue 18, plus those earlier tests cover, against the CLI.

Each case of :data:`CASES` builds its inputs under ``tmp_path``, runs one verb and asserts: the exit
code; that stderr is exactly one line, an ``error:`` naming the file or option at fault; no
traceback; and that nothing under ``tmp_path`` was added, changed or removed, except what the case
lists (an empty ``--out`` folder, a temp file the sweep removes, a download the check removes).
``NEW`` marks the classes issue 18 found (each fails on the code before it); the rest were already
one line. The tests after :data:`CASES` cover the classes whose right answer is not an error: the
ground truth a run must not read, a BOM, the temp sweep after a kill -9, workers after SIGTERM.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vosbench_cli.main import app
from tests.conftest import REPO
from tests.data.archive_helpers import ServedFile, http_server, zip_tree
from vosbench.data.imageio import read_mask, write_mask
from vosbench.models import build_model, save_checkpoint
from vosbench.train.config import TrainConfig, apply_overrides, write_config

SIZE = (32, 48)


@dataclass
class Case:
    args: list[str]
    names: str  # the file or option the one error line must name
    code: int = 1
    new: set[str] = field(default_factory=set)  # paths (relative to tmp_path) that may appear
    gone: set[str] = field(default_factory=set)  # paths that may disappear (temp sweep, failed download)


@dataclass
class Env:
    tmp: Path
    make_davis_root: Callable[..., Path]
    monkeypatch: pytest.MonkeyPatch
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)  # closed after the command

    def davis(self, sequences: dict[str, tuple[int, int]] | None = None, **kw) -> Path:
        return self.make_davis_root(sequences or {"a": (3, 1)}, size=SIZE, **kw)

    def checkpoint(self, name: str = "c.pt", seed: int = 0) -> Path:
        torch.manual_seed(seed)
        return save_checkpoint(self.tmp / name, build_model("stm-tiny"))

    def infer(self, data: Path, ckpt: Path, out: str = "out", *extra: str) -> list[str]:
        return ["infer", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(self.tmp / out), *extra]

    def train_config(self, data: Path, *overrides: str) -> Path:
        base = ["model.preset=stm-tiny", f"data.root={data}", "data.split=val", "data.crop=[32, 48]",
                "data.short_side=[32, 40]", "data.samples_per_epoch=1", "data.max_objects=1", "train.batch_size=1",
                "train.epochs=1", "train.precision=fp32", "train.threads=1", "train.save_every=1", "train.log_every=1",
                "train.allow_random_init=true", *overrides]
        path = self.tmp / "tiny.toml"
        write_config(path, TrainConfig.from_dict(apply_overrides({}, base)))
        return path


def _split(env: Env, text: str, **kw) -> Path:
    root = env.davis(**kw)
    (root / "ImageSets" / "2017" / "val.txt").write_text(text, encoding="utf-8")
    return root


def _victim(env: Env) -> None:
    (env.tmp / "victim").mkdir()
    (env.tmp / "victim" / "keep.txt").write_text("not vosbench's")


def _stored_zip(content: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("DAVIS/ImageSets/2017/train.txt", content)
    return buf.getvalue()


def _results(env: Env, root: Path) -> Path:
    import shutil

    results = env.tmp / "results"
    shutil.copytree(root / "Annotations" / "480p", results)
    return results


# --------------------------------------------------------------------------- the cases


def empty_first_frame(env: Env) -> Case:  # NEW: it used to write frame 1's ground truth
    root = env.davis({"a": (3, 1)})
    write_mask(root / "Annotations/480p/a/00000.png", np.zeros(SIZE, np.uint8))
    return Case(env.infer(root, env.checkpoint()), "a/00000.png", new={"out"})


def rerun_other_options(env: Env) -> Case:  # NEW: used to report "skipped" and keep the old masks
    root, ckpt = env.davis(), env.checkpoint()
    assert CliRunner().invoke(app, env.infer(root, ckpt)).exit_code == 0
    return Case(env.infer(root, ckpt, "out", "--flip"), "provenance.json")


def rerun_other_checkpoint(env: Env) -> Case:  # NEW
    root = env.davis()
    assert CliRunner().invoke(app, env.infer(root, env.checkpoint())).exit_code == 0
    return Case(env.infer(root, env.checkpoint("other.pt", seed=1)), "--overwrite")


def nan_checkpoint(env: Env) -> Case:  # NEW: used to give all-background masks and exit 0
    obj = torch.load(env.checkpoint(), weights_only=True)
    key = next(k for k, v in obj["state_dict"].items() if v.is_floating_point())
    obj["state_dict"][key].view(-1)[0] = float("nan")
    torch.save(obj, env.tmp / "nan.pt")
    return Case(env.infer(env.davis(), env.tmp / "nan.pt"), "nan.pt")


def nan_probabilities(env: Env) -> Case:  # NEW
    from vosbench.infer import ensemble

    real = ensemble.EnsembleInference.step
    env.monkeypatch.setattr(ensemble.EnsembleInference, "step", lambda *a, **k: real(*a, **k) * float("nan"))
    return Case(env.infer(env.davis(), env.checkpoint()), "frame 00000", new={"out"})


def split_dotdot_overwrite(env: Env) -> Case:  # NEW: replaced ../victim and deleted its file
    _victim(env)
    return Case(env.infer(_split(env, "a\n../victim\n"), env.checkpoint(), "out", "--overwrite"), "val.txt:2")


def split_absolute(env: Env) -> Case:  # NEW
    return Case(env.infer(_split(env, f"{env.tmp / 'victim'}\n"), env.checkpoint()), "val.txt:1")


def split_backslash(env: Env) -> Case:  # NEW
    return Case(env.infer(_split(env, "a\n..\\victim\n"), env.checkpoint()), "val.txt:2")


def split_control_character(env: Env) -> Case:  # NEW
    return Case(env.infer(_split(env, "# listed\na\x1b[2Jb\n"), env.checkpoint()), "val.txt:2")


def split_bom_then_dotdot(env: Env) -> Case:  # NEW: the BOM is dropped, the name still refused
    return Case(env.infer(_split(env, "\ufeff../victim\n"), env.checkpoint()), "val.txt:1")


def package_submission_dotdot(env: Env) -> Case:  # NEW: wrote a zip with ../ members
    _victim(env)
    root = _split(env, "a\n../victim\n")
    results = _results(env, root)
    return Case(["package-submission", "--results", str(results), "--data", str(root), "--split", "val",
                 "--out", str(env.tmp / "s.zip")], "val.txt:2")


def evaluate_dotdot(env: Env) -> Case:  # NEW
    _victim(env)
    root = _split(env, "a\n../victim\n")
    return Case(["evaluate", "--data", str(root), "--results", str(_results(env, root)), "-j", "1"], "val.txt:2")


def visualize_dotdot(env: Env) -> Case:  # NEW
    _victim(env)
    root = _split(env, "a\n../victim\n")
    return Case(["visualize", "--data", str(root), "--results", str(_results(env, root)),
                 "--out", str(env.tmp / "vis")], "val.txt:2")


def youtube_meta_dotdot(env: Env) -> Case:  # NEW
    meta = {"videos": {"ok": {"objects": {"1": {"frames": ["00000"]}}},
                       "../victim": {"objects": {"1": {"frames": ["00000"]}}}}}
    (env.tmp / "yt" / "valid").mkdir(parents=True)
    (env.tmp / "yt" / "valid" / "meta.json").write_text(json.dumps(meta, indent=1))
    return Case(env.infer(env.tmp / "yt", env.checkpoint(), "out", "--split", "valid"), "meta.json:")


def static_manifest_dotdot(env: Env) -> Case:  # NEW
    root = env.tmp / "static"
    (root / "masks").mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({"items": ["ok", "../../victim"]}, indent=1))
    data = env.davis()
    cfg = env.train_config(data, "data.stage=static", f'data.sources=[{{kind = "static", root = "{root}"}}]')
    return Case(["train", "--config", str(cfg), "--out", str(env.tmp / "run"), "--device", "cpu"], "manifest.json:")


def archive_member_control_character(env: Env) -> Case:  # NEW
    with zipfile.ZipFile(env.tmp / "a.zip", "w") as zf:
        zf.writestr("DAVIS/JPEGImages/480p/a\x07b/00000.jpg", b"x")
    return Case(["prepare", "davis2017", "--root", str(env.tmp / "d"), "--archive", str(env.tmp / "a.zip")], "a.zip")


def download_resumed_corrupt(env: Env) -> Case:  # NEW: the corrupt zip kept its final name, was reused
    old, new = _stored_zip(b"a" * 4000), _stored_zip(b"b" * 4000)
    part = env.tmp / "dl" / "DAVIS-2017-trainval-480p.zip.part"
    part.parent.mkdir()
    part.write_bytes(old[: len(old) // 2])
    base = env.stack.enter_context(http_server({"/DAVIS-2017-trainval-480p.zip": ServedFile(new)}))
    return Case(["prepare", "davis2017", "--root", str(env.tmp / "d"), "--url", f"{base}/DAVIS-2017-trainval-480p.zip",
                 "--download-dir", str(env.tmp / "dl")], "DAVIS-2017-trainval-480p.zip", gone={part.relative_to(env.tmp).as_posix()})


def evaluate_json_folder(env: Env) -> Case:  # NEW: wrote the CSVs, then failed
    root = env.davis({"a": (4, 1)})
    (env.tmp / "j").mkdir()
    return Case(["evaluate", "--data", str(root), "--results", str(_results(env, root)), "--json", str(env.tmp / "j")],
                "j: --json")


def evaluate_full_disk(env: Env) -> Case:  # NEW: named a temp file
    root = env.davis({"a": (4, 1)})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    env.monkeypatch.setattr(os, "fsync", full)
    return Case(["evaluate", "--data", str(root), "--results", str(_results(env, root)), "-j", "1"],
                "results/global_results-val.csv: cannot write the results (No space left")


def train_full_disk(env: Env) -> Case:  # NEW: torch.save's RuntimeError traceback
    real = torch.save

    def to_full_disk(obj, f, *a, **k):  # what torch.save does on a full disk, for a path and for a file
        if isinstance(f, (str, os.PathLike)):
            return real(obj, "/dev/full", *a, **k)
        with open("/dev/full", "wb") as full:
            return real(obj, full, *a, **k)

    env.monkeypatch.setattr(torch, "save", to_full_disk)
    cfg = env.train_config(env.davis())
    return Case(["train", "--config", str(cfg), "--out", str(env.tmp / "run"), "--device", "cpu"],
                "run/step-1.pt", new={"run", "run/config.toml", "run/log.csv"})


def infer_device_mps(env: Env) -> Case:  # NEW (the --device check is issue 15's)
    return Case(env.infer(env.davis(), env.checkpoint(), "out", "--device", "mps"), "--device")


def prepare_url_malformed(env: Env) -> Case:  # NEW
    return Case(["prepare", "davis2017", "--root", str(env.tmp / "d"), "--url", "ftp//bad"], "ftp//bad")


def train_out_file(env: Env) -> Case:  # NEW
    (env.tmp / "run").write_text("a file")
    return Case(["train", "--config", str(env.train_config(env.davis())), "--out", str(env.tmp / "run")], "run: --out")


def visualize_out_file(env: Env) -> Case:  # NEW
    root = env.davis()
    (env.tmp / "vis").write_text("a file")
    return Case(["visualize", "--data", str(root), "--results", str(_results(env, root)), "--out", str(env.tmp / "vis")],
                "vis")


def infer_out_file(env: Env) -> Case:  # NEW
    (env.tmp / "out").write_text("a file")
    return Case(env.infer(env.davis(), env.checkpoint()), "out: --out")


def train_resume_damaged_log(env: Env) -> Case:  # NEW: a traceback (or, without last.pt, a silent new run)
    (env.tmp / "run").mkdir()
    (env.tmp / "run" / "log.csv").write_text("step,epoch,loss\n1,0,0.5\n2,0\nx,0,0.4\n")
    return Case(["train", "--config", str(env.train_config(env.davis())), "--out", str(env.tmp / "run"), "--resume"],
                "log.csv:3")


# already one line before issue 18 (kept here so that this file is the full list)


def missing_checkpoint(env: Env) -> Case:
    return Case(env.infer(env.davis(), env.tmp / "nope.pt"), "nope.pt")


def not_a_checkpoint(env: Env) -> Case:
    (env.tmp / "junk.pt").write_bytes(b"junk")
    return Case(env.infer(env.davis(), env.tmp / "junk.pt"), "junk.pt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def malicious_pickle(env: Env) -> Case:
    (env.tmp / "evil.pt").write_bytes(pickle.dumps(_Evil()))
    return Case(env.infer(env.davis(), env.tmp / "evil.pt"), "evil.pt")


def archive_zip_slip(env: Env) -> Case:
    with zipfile.ZipFile(env.tmp / "a.zip", "w") as zf:
        zf.writestr("DAVIS/../../victim/x.txt", b"x")
    return Case(["prepare", "davis2017", "--root", str(env.tmp / "d"), "--archive", str(env.tmp / "a.zip")], "a.zip")


def archive_truncated(env: Env) -> Case:
    src = env.davis()
    data = zip_tree(src, env.tmp / "full.zip").read_bytes()
    (env.tmp / "t.zip").write_bytes(data[: len(data) // 2])
    return Case(["prepare", "davis2017", "--root", str(env.tmp / "d"), "--archive", str(env.tmp / "t.zip")], "t.zip")


def split_not_utf8(env: Env) -> Case:
    root = env.davis()
    (root / "ImageSets/2017/val.txt").write_bytes(b"\xff\xfea\n")
    return Case(env.infer(root, env.checkpoint()), "val.txt")


def unknown_split(env: Env) -> Case:
    return Case(env.infer(env.davis(), env.checkpoint(), "out", "--split", "nope"), "nope.txt")


def missing_data_root(env: Env) -> Case:
    return Case(env.infer(env.tmp / "nowhere", env.checkpoint()), "nowhere")


def bad_scales(env: Env) -> Case:
    return Case(env.infer(env.davis(), env.checkpoint(), "out", "--scales", "1,x"), "--scales")


def frame_of_another_size(env: Env) -> Case:
    from vosbench.data.imageio import write_frame

    root = env.davis()
    write_frame(root / "JPEGImages/480p/a/00002.jpg", np.zeros((16, 16, 3), np.uint8))
    return Case(env.infer(root, env.checkpoint()), "00002.jpg", new={"out"})


def train_unknown_key(env: Env) -> Case:
    cfg = env.train_config(env.davis())
    return Case(["train", "--config", str(cfg), "--out", str(env.tmp / "run"), "--set", "optim.lrr=1"], "optim.lrr")


def evaluate_missing_results(env: Env) -> Case:
    return Case(["evaluate", "--data", str(env.davis()), "--results", str(env.tmp / "none")], "none")


def submission_out_folder(env: Env) -> Case:
    root = env.davis({"a": (4, 1)})
    (env.tmp / "s.zip").mkdir()
    return Case(["package-submission", "--results", str(_results(env, root)), "--data", str(root), "--split", "val",
                 "--out", str(env.tmp / "s.zip")], "s.zip")


NEW = [empty_first_frame, rerun_other_options, rerun_other_checkpoint, nan_checkpoint, nan_probabilities,
       split_dotdot_overwrite, split_absolute, split_backslash, split_control_character, split_bom_then_dotdot,
       package_submission_dotdot, evaluate_dotdot, visualize_dotdot, youtube_meta_dotdot, static_manifest_dotdot,
       archive_member_control_character, download_resumed_corrupt, evaluate_json_folder, evaluate_full_disk,
       train_full_disk, infer_device_mps, prepare_url_malformed, train_out_file, visualize_out_file, infer_out_file,
       train_resume_damaged_log]
EARLIER = [missing_checkpoint, not_a_checkpoint, malicious_pickle, archive_zip_slip, archive_truncated, split_not_utf8,
           unknown_split, missing_data_root, bad_scales, frame_of_another_size, train_unknown_key,
           evaluate_missing_results, submission_out_folder]
CASES = NEW + EARLIER


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "other"
    return out


def _marks(fn):
    return pytest.param(fn, id=fn.__name__)


@pytest.mark.parametrize("build", [_marks(c) for c in CASES])
def test_bad_input_is_one_line_and_touches_nothing(build, make_davis_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a command that writes into the working folder would show in the tree
    env = Env(tmp_path, make_davis_root, monkeypatch)
    with env.stack:
        case = build(env)
        before = _tree(tmp_path)
        res = CliRunner().invoke(app, case.args)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == case.code, res.output
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert case.names in lines[0], lines[0]
    assert "Traceback" not in res.output and ".vostmp" not in lines[0] and ".tmp" not in lines[0]
    after = _tree(tmp_path)
    added = {p for p in after if p not in before} - case.new
    removed = {p for p in before if p not in after} - case.gone
    changed = {p for p in before if p in after and before[p] != after[p]}
    assert not (added or removed or changed), (added, removed, changed)
    assert not (tmp_path / "pwned").exists()


# --------------------------------------------------------------------------- classes whose answer is not an error


def test_infer_never_reads_later_ground_truth(make_davis_root, tmp_path):
    """DAVIS layout: an object absent from frame 0 is not pasted in from a later annotation, and the
    later annotations are not even opened (here they are not PNGs at all)."""
    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    root = env.davis({"a": (4, 2)})
    ann = root / "Annotations/480p/a"
    first = read_mask(ann / "00000.png")
    write_mask(ann / "00000.png", np.where(first == 2, 0, first).astype(np.uint8))
    (ann / "00002.png").write_bytes(b"ground truth the run must not read")
    res = CliRunner().invoke(app, env.infer(root, env.checkpoint()))
    assert res.exit_code == 0, res.output
    assert all(2 not in np.unique(read_mask(p)) for p in (tmp_path / "out" / "a").glob("*.png"))


def test_bom_in_split_file_is_dropped(make_davis_root, tmp_path):
    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    root = _split(env, "\ufeffa\n")
    res = CliRunner().invoke(app, env.infer(root, env.checkpoint()))
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temps_of_a_killed_run_are_swept_when_the_command_next_starts(make_davis_root, tmp_path):
    """What kill -9 during a write leaves (a temp named by the one scheme, its process gone) is
    removed by the next infer, train, evaluate, visualize and package-submission on that output;
    a live process's temp, and files not named by the scheme, stay."""
    from vosbench.fsutil import TEMP_MARK, temp_prefix

    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    root = env.davis({"a": (4, 1)})
    dead = temp_prefix("x").replace(f"-{os.getpid()}-", f"-{_dead_pid()}-")
    live = temp_prefix("x")
    results = _results(env, root)
    outputs = {
        "out": env.infer(root, env.checkpoint()),
        "run": ["train", "--config", str(env.train_config(root)), "--out", str(tmp_path / "run"), "--device", "cpu"],
        "results": ["evaluate", "--data", str(root), "--results", str(results), "-j", "1"],
        "vis": ["visualize", "--data", str(root), "--results", str(results), "--out", str(tmp_path / "vis")],
        "zips": ["package-submission", "--results", str(results), "--data", str(root), "--split", "val",
                 "--out", str(tmp_path / "zips" / "s.zip")],
    }
    for folder, args in outputs.items():
        out = tmp_path / folder
        out.mkdir(exist_ok=True)
        (out / f"{dead}abc{TEMP_MARK}.pt").write_bytes(b"x" * 1000)  # a checkpoint's temp file
        (out / f"{dead}def{TEMP_MARK}").mkdir()  # a sequence's temp folder
        (out / f"{live}ghi{TEMP_MARK}").write_bytes(b"in use")
        (out / ".keep.tmp").write_bytes(b"not ours")
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, (folder, res.output)
        left = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
        assert left == sorted([".keep.tmp", f"{live}ghi{TEMP_MARK}"]), (folder, left)


_SLOW_EVALUATE = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a background job may inherit SIG_IGN)
import vosbench.metrics.evaluator as ev
real = ev.score_frame
def slow(*a, **k):
    time.sleep(1.0)
    return real(*a, **k)
ev.score_frame = slow
from vosbench_cli.main import app
sys.argv = ["vosbench", "evaluate", "--data", sys.argv[1], "--results", sys.argv[2], "-j", "2"]
app()
"""


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_evaluate_workers_die_with_the_parent(make_davis_root, tmp_path, sig):
    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    root = env.davis({"a": (8, 1), "b": (8, 1)})
    results = _results(env, root)
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_EVALUATE, str(root), str(results)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        workers = _children(proc.pid)
        assert len(workers) >= 2, "the pool never started"
        if sig == signal.SIGINT:  # Ctrl-C: the terminal signals the whole process group
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    deadline = time.monotonic() + 30
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "workers outlived their parent"
    assert proc.returncode != 0
    if sig != signal.SIGKILL:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert lines == ["error: interrupted"], err
    assert not list(results.glob("*.csv"))
