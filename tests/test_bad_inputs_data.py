"""Issue 26, data identity and data order: every class against the CLI (or the library where the
right answer is not an error).

As in :mod:`tests.test_bad_inputs`, each case of :data:`CASES` builds its inputs under ``tmp_path``,
runs one verb and asserts the exit code; one stderr line, an ``error:`` naming the file or option
at fault; no traceback; and nothing under ``tmp_path`` added, changed or removed but what the case
lists. A case that used to hang (a FIFO read) is unblocked by a watchdog after HANG_SECONDS, so it
fails on its message rather than blocks. Every class here failed on the code before issue 26 (exit 0 with a stale, mixed or
wrongly ordered result, a hang, or a read until MemoryError).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vosbench_cli.main import app
from tests.data.archive_helpers import zip_tree
from tests.test_bad_inputs import SIZE, Case, Env, _results, _tree
from vosbench.data.imageio import write_frame, write_mask

HANG_SECONDS = 120


def _ok(args: list[str]) -> None:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output


def _two_roots(env: Env) -> tuple[Path, Path]:
    """Two datasets with the same sequence names and shapes, different frames and masks."""
    a = env.make_davis_root({"a": (3, 1)}, size=SIZE, root=env.tmp / "A", seed=0)
    b = env.make_davis_root({"a": (3, 1)}, size=SIZE, root=env.tmp / "B", seed=1)
    return a, b


def _probs(env: Env, root: Path, name: str, seed: int) -> Path:
    _ok(env.infer(root, env.checkpoint(f"{name}.pt", seed=seed), name, "--save-probs"))
    return env.tmp / name


def _half_overwritten(env: Env) -> tuple[Path, Path]:
    """infer a, b; then `infer --flip --overwrite` fails on b: a is new, b still old."""
    from vosbench.errors import DataError
    from vosbench.infer import run

    root, ckpt = env.davis({"a": (4, 1), "b": (4, 1)}), env.checkpoint()
    _ok(env.infer(root, ckpt))
    real = run.infer_sequence

    def failing(seq, *a, **k):
        if seq.name == "b":
            raise DataError("simulated failure on b")
        return real(seq, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run, "infer_sequence", failing)
        assert CliRunner().invoke(app, env.infer(root, ckpt, "out", "--flip", "--overwrite")).exit_code == 1
    return root, env.tmp / "out"


# --------------------------------------------------------------------------- identity of inputs


def infer_other_dataset_same_names(env: Env) -> Case:  # used to skip every sequence and exit 0
    a, b = _two_roots(env)
    ckpt = env.checkpoint()
    _ok(env.infer(a, ckpt))
    return Case(env.infer(b, ckpt), "inputs.")


def infer_changed_first_annotation(env: Env) -> Case:  # same frames, a fixed first mask: used to skip
    root, ckpt = env.davis({"a": (3, 1)}), env.checkpoint()
    _ok(env.infer(root, ckpt))
    mask = np.zeros(SIZE, np.uint8)
    mask[4:20, 4:20] = 1
    write_mask(root / "Annotations/480p/a/00000.png", mask)
    return Case(env.infer(root, ckpt), "inputs.annotations")


def merge_rerun_other_weights(env: Env) -> Case:  # used to skip every sequence whatever the weights
    root = env.davis()
    p1, p2 = _probs(env, root, "m1", 0), _probs(env, root, "m2", 1)
    _ok(["merge", str(p1), str(p2), "--out", str(env.tmp / "merged")])
    return Case(["merge", str(p1), f"{p2}:3", "--out", str(env.tmp / "merged")], "merge differ")


def merge_rerun_other_member(env: Env) -> Case:  # used to skip every sequence whatever the members
    root = env.davis()
    p1, p2, p3 = _probs(env, root, "m1", 0), _probs(env, root, "m2", 1), _probs(env, root, "m3", 2)
    _ok(["merge", str(p1), str(p2), "--out", str(env.tmp / "merged")])
    return Case(["merge", str(p1), str(p3), "--out", str(env.tmp / "merged")], "merged/a")


def _no_training(*a, **k):
    raise AssertionError("quickstart went on to train on another --profile/--seed's data")


def quickstart_other_seed(env: Env) -> Case:  # used to reuse the seed-0 data and print its table as seed 1's
    from vosbench.data.synthetic import generate_synthetic

    generate_synthetic(env.tmp / "qs" / "data", "tiny", seed=0)

    env.monkeypatch.setattr("vosbench.train.run.train_from_config", _no_training)
    return Case(["quickstart", "--out", str(env.tmp / "qs"), "--profile", "tiny", "--seed", "1", "--device", "cpu"],
                "--seed")


def quickstart_other_profile(env: Env) -> Case:
    from vosbench.data.synthetic import generate_synthetic

    generate_synthetic(env.tmp / "qs" / "data", "tiny", seed=0)
    env.monkeypatch.setattr("vosbench.train.run.train_from_config", _no_training)
    return Case(["quickstart", "--out", str(env.tmp / "qs"), "--profile", "small", "--device", "cpu"], "--profile")


def evaluate_half_overwritten(env: Env) -> Case:  # used to score half old, half new masks
    root, out = _half_overwritten(env)
    return Case(["evaluate", "--data", str(root), "--results", str(out), "-j", "1"], "--allow-mixed")


def package_submission_half_overwritten(env: Env) -> Case:
    root, out = _half_overwritten(env)
    return Case(["package-submission", "--results", str(out), "--data", str(root), "--split", "val",
                 "--out", str(env.tmp / "s.zip")], "--allow-mixed")


# --------------------------------------------------------------------------- frame order


def duplicate_frame_stems(env: Env) -> Case:  # used to become an interleaved 2T-frame video
    root = env.davis({"a": (3, 1)})
    frames = root / "JPEGImages/480p/a"
    write_frame(frames / "00001.png", np.zeros((*SIZE, 3), np.uint8))
    return Case(env.infer(root, env.checkpoint()), "00001.jpg and 00001.png")


def same_number_two_widths(env: Env) -> Case:  # 1.jpg and 00001.jpg are one frame number
    root = env.davis({"a": (3, 1)})
    shutil.copy(root / "JPEGImages/480p/a/00001.jpg", root / "JPEGImages/480p/a/1.jpg")
    return Case(env.infer(root, env.checkpoint()), "two files for frame 1")


def frame_name_not_a_number(env: Env) -> Case:  # used to be propagated in name order
    root = env.davis({"a": (3, 1)})
    shutil.copy(root / "JPEGImages/480p/a/00001.jpg", root / "JPEGImages/480p/a/00001b.jpg")
    return Case(env.infer(root, env.checkpoint()), "00001b.jpg")


# --------------------------------------------------------------------------- non-regular files


def fifo_mask_in_results(env: Env) -> Case:  # used to hang evaluate
    root = env.davis({"a": (4, 1)})
    results = _results(env, root)
    (results / "a/00001.png").unlink()
    os.mkfifo(results / "a/00001.png")
    return Case(["evaluate", "--data", str(root), "--results", str(results), "-j", "1"],
                "a/00001.png: prediction is a FIFO")


def dev_zero_link_in_results(env: Env) -> Case:  # used to read until MemoryError
    root = env.davis({"a": (4, 1)})
    results = _results(env, root)
    (results / "a/00002.png").unlink()
    (results / "a/00002.png").symlink_to("/dev/zero")
    return Case(["evaluate", "--data", str(root), "--results", str(results), "-j", "1"],
                "a/00002.png: prediction is a character device")


def fifo_frame_in_data(env: Env) -> Case:  # used to hang infer on frame 1
    root = env.davis({"a": (3, 1)})
    (root / "JPEGImages/480p/a/00001.jpg").unlink()
    os.mkfifo(root / "JPEGImages/480p/a/00001.jpg")
    return Case(env.infer(root, env.checkpoint()), "00001.jpg: frame file is a FIFO")


def fifo_annotation_in_data(env: Env) -> Case:  # used to hang evaluate on the ground truth
    root = env.davis({"a": (4, 1)})
    results = _results(env, root)
    (root / "Annotations/480p/a/00002.png").unlink()
    os.mkfifo(root / "Annotations/480p/a/00002.png")
    return Case(["evaluate", "--data", str(root), "--results", str(results), "-j", "1"], "a/00002.png: file is a FIFO")


CASES = [infer_other_dataset_same_names, infer_changed_first_annotation, merge_rerun_other_weights,
         merge_rerun_other_member, quickstart_other_seed, quickstart_other_profile, evaluate_half_overwritten,
         package_submission_half_overwritten, duplicate_frame_stems, same_number_two_widths, frame_name_not_a_number,
         fifo_mask_in_results, dev_zero_link_in_results, fifo_frame_in_data,
         fifo_annotation_in_data]


def _unblock_fifos(root: Path, stop: threading.Event) -> None:
    """After HANG_SECONDS, open every FIFO under ``root`` for writing now and then: a reader blocked
    on one gets end-of-file, so a command that would hang ends (and the case fails on its message)."""
    if stop.wait(HANG_SECONDS):
        return
    while not stop.wait(1.0):
        for p in root.rglob("*"):
            with contextlib.suppress(OSError):  # ENXIO: nobody reads it now
                if p.is_fifo():
                    os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.parametrize("build", [pytest.param(c, id=c.__name__) for c in CASES])
def test_bad_data_is_one_line_and_touches_nothing(build, make_davis_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = Env(tmp_path, make_davis_root, monkeypatch)
    with env.stack:
        case = build(env)
        before = _tree(tmp_path)
        stop = threading.Event()
        watchdog = threading.Thread(target=_unblock_fifos, args=(tmp_path, stop), daemon=True)
        watchdog.start()
        try:
            res = CliRunner().invoke(app, case.args)
        finally:
            stop.set()
            watchdog.join()
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == case.code, res.output
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert case.names in lines[0], lines[0]
    assert "Traceback" not in res.output and ".vostmp" not in lines[0]
    after = _tree(tmp_path)
    added = {p for p in after if p not in before} - case.new
    removed = {p for p in before if p not in after} - case.gone
    changed = {p for p in before if p in after and before[p] != after[p]}
    assert not (added or removed or changed), (added, removed, changed)


# --------------------------------------------------------------------------- classes whose answer is not an error


def test_allow_mixed_scores_with_one_warning(make_davis_root, tmp_path):
    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    root, out = _half_overwritten(env)
    res = CliRunner().invoke(app, ["evaluate", "--data", str(root), "--results", str(out), "-j", "1", "--allow-mixed"])
    assert res.exit_code == 0, res.output
    warnings = [ln for ln in res.stderr.splitlines() if "different runs" in ln]
    assert len(warnings) == 1 and "options.flip" in warnings[0], res.stderr


def test_rerun_on_the_same_data_still_skips(make_davis_root, tmp_path):
    """The data fingerprints do not make a plain re-run (or one on a copy keeping file times) redo work."""
    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    root, ckpt = env.davis({"a": (3, 1)}), env.checkpoint()
    _ok(env.infer(root, ckpt))
    shutil.copytree(root, tmp_path / "copy")  # copy2: keeps the times
    res = CliRunner().invoke(app, env.infer(tmp_path / "copy", ckpt))
    assert res.exit_code == 0 and "1 skipped" in res.output, res.output
    record = json.loads((tmp_path / "out/a/provenance.json").read_text())
    assert record["data_root"] == str(root) and set(record["inputs"]) == {"frames", "annotations"}


def test_merge_rerun_the_same_way_skips(make_davis_root, tmp_path):
    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    root = env.davis()
    p1, p2 = _probs(env, root, "m1", 0), _probs(env, root, "m2", 1)
    args = ["merge", str(p1), f"{p2}:2", "--out", str(tmp_path / "merged")]
    _ok(args)
    record = json.loads((tmp_path / "merged/a/provenance.json").read_text())
    assert [m["weight"] for m in record["merge"]] == [pytest.approx(1 / 3), pytest.approx(2 / 3)]
    assert record["merge"][0]["run"]["checkpoints"] and len(record["inputs"]["probs"]) == 2
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and "0 sequences written" in res.output and "1 skipped" in res.output, res.output


def test_dev_zero_link_in_a_submission_is_a_problem_not_a_read(make_davis_root, tmp_path):
    """package-submission lists its problems (one line each, then one summary): the link is one, by type."""
    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    root = env.davis({"a": (4, 1)})
    results = _results(env, root)
    (results / "a/00002.png").unlink()
    (results / "a/00002.png").symlink_to("/dev/zero")
    res = CliRunner().invoke(app, ["package-submission", "--results", str(results), "--data", str(root),
                                   "--split", "val", "--out", str(tmp_path / "s.zip")])
    assert res.exit_code == 1 and res.exception is None or isinstance(res.exception, SystemExit), res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 2 and "a/00002.png" in lines[0] and "character device" in lines[0], res.stderr
    assert "1 problem" in lines[1] and not (tmp_path / "s.zip").exists()


def test_split_listing_a_sequence_twice_is_one_warning_and_one_run(make_davis_root, tmp_path):
    env = Env(tmp_path, make_davis_root, pytest.MonkeyPatch())
    root = env.davis({"a": (3, 1)})
    (root / "ImageSets/2017/val.txt").write_text("a\na\n")
    res = CliRunner().invoke(app, env.infer(root, env.checkpoint()))
    assert res.exit_code == 0, res.output
    warnings = [ln for ln in res.stderr.splitlines() if "more than once" in ln]
    assert len(warnings) == 1, res.stderr
    assert "1 written" in res.output and "0 skipped" in res.output, res.output


def _numbered_root(tmp_path: Path, n: int = 12) -> Path:
    """Sequence ``a`` with frames and masks named 0.jpg ... 11.jpg (no zero padding)."""
    root = tmp_path / "numbered"
    rng = np.random.default_rng(0)
    for t in range(n):
        write_frame(root / f"JPEGImages/480p/a/{t}.jpg", rng.integers(0, 255, (*SIZE, 3)).astype(np.uint8))
        mask = np.zeros(SIZE, np.uint8)
        mask[2 + t: 12 + t, 4:16] = 1
        write_mask(root / f"Annotations/480p/a/{t}.png", mask)
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("a\n")
    return root


def test_frames_are_ordered_by_number_everywhere(tmp_path):
    """0.jpg ... 11.jpg: inference propagates 0, 1, ..., 11 (not 0, 1, 10, 11, 2, ...), and evaluation
    leaves out frame 11 as the last (not 9)."""
    from vosbench.data.davis import DavisDataset
    from vosbench.metrics.benchmarks import open_benchmark

    root = _numbered_root(tmp_path)
    expected = [str(i) for i in range(12)]
    assert DavisDataset(root, "val").sequence("a").frame_names == expected
    (gt,) = open_benchmark(root, "val").ground_truth()
    assert gt.scored_frames == expected[1:-1]


def test_evaluate_scores_the_frames_between_first_and_last_by_number(tmp_path):
    """Predictions right on 1..10 and wrong on 0 and 11 score J = 1: only the unscored ends are wrong."""
    root = _numbered_root(tmp_path)
    results = tmp_path / "results"
    shutil.copytree(root / "Annotations/480p", results)
    for t in (0, 11):
        write_mask(results / f"a/{t}.png", np.zeros(SIZE, np.uint8))
    res = CliRunner().invoke(app, ["evaluate", "--data", str(root), "--results", str(results), "-j", "1"])
    assert res.exit_code == 0, res.output
    assert (results / "global_results-val.csv").read_text().splitlines()[1].startswith("1.000,1.000")


def test_prepare_replaces_a_sequence_whole(tmp_path, make_davis_root):
    """A second archive that brings an 8-frame sequence as 5 frames leaves exactly its 5 (frames and
    annotations), and the manifest says 5."""
    first, second = tmp_path / "src1", tmp_path / "src2"
    make_davis_root({"dogs": (8, 1)}, split="train", root=first, seed=1)
    make_davis_root({"dogs": (5, 1)}, split="val", root=first, seed=1)
    make_davis_root({"dogs": (5, 2)}, split="train", root=second, seed=2)
    make_davis_root({"dogs": (5, 2)}, split="val", root=second, seed=2)
    root = tmp_path / "davis"
    for i, src in enumerate((first, second)):
        zip_path = zip_tree(src, tmp_path / f"DAVIS-2017-trainval-480p-{i}.zip")
        res = CliRunner().invoke(app, ["prepare", "davis2017", "--root", str(root), "--archive", str(zip_path)])
        assert res.exit_code == 0, res.output
    for kind in ("JPEGImages", "Annotations"):
        got = {p.name: p.read_bytes() for p in (root / kind / "480p/dogs").iterdir()}
        want = {p.name: p.read_bytes() for p in (second / kind / "480p/dogs").iterdir()}
        assert got == want, kind
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["sequences"]["dogs"]["frames"] == 5 and manifest["sequences"]["dogs"]["annotated_frames"] == 5
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temp left


def test_ablate_data_key_follows_frames_and_ground_truth(make_davis_root, tmp_path):
    """ablate's cache key changes when a frame is replaced or a later annotation is fixed (same size,
    same mtime: annotations are hashed by content), and not when nothing changed."""
    from vosbench.ablation.steps import VosbenchSteps

    root = make_davis_root({"a": (4, 1)}, size=SIZE)
    steps = VosbenchSteps(root)
    base = steps.data_fingerprint()
    assert steps.data_fingerprint() == base
    ann = root / "Annotations/480p/a/00002.png"
    st = ann.stat()
    mask = np.zeros(SIZE, np.uint8)
    mask[0:8, 0:8] = 1
    write_mask(ann, mask)
    data = ann.read_bytes()
    ann.write_bytes(data[: st.st_size].ljust(st.st_size, b"\0") if len(data) > st.st_size else data)
    os.utime(ann, ns=(st.st_atime_ns, st.st_mtime_ns))
    after_gt = steps.data_fingerprint()
    assert after_gt != base
    write_frame(root / "JPEGImages/480p/a/00003.jpg", np.zeros((*SIZE, 3), np.uint8))
    assert steps.data_fingerprint() not in (base, after_gt)


def test_prepare_youtube_replaces_a_video_whole(tmp_path):
    """The same for the split-archive layout (YouTube-VOS, MOSE): a second train archive bringing
    video aa11 with 2 frames instead of 4 leaves 2 frames and 2 annotations, no stale 00010/00015."""
    from tests.data.test_youtube import write_split
    from vosbench.data.youtube import prepare_youtube_vos

    write_split(tmp_path / "src1", "train", {"aa11": (4, {1: 0})}, annotate_all=True)
    write_split(tmp_path / "src2", "train", {"aa11": (2, {1: 0})}, annotate_all=True)
    root = tmp_path / "ytvos"
    for i in (1, 2):
        prepare_youtube_vos(root, zip_tree(tmp_path / f"src{i}/train", tmp_path / f"train{i}.zip", prefix="train"))
    for kind, suffix in (("JPEGImages", "jpg"), ("Annotations", "png")):
        assert sorted(p.name for p in (root / "train" / kind / "aa11").iterdir()) == [f"00000.{suffix}", f"00005.{suffix}"]
    assert json.loads((root / "manifest.json").read_text())["sequences"]["aa11"]["frames"] == 2
