from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vosbench.data.davis import DavisDataset
from vosbench.depth.estimators import DepthEstimator, FolderDepthEstimator, FrameKey, make_estimator
from vosbench.depth.prepare import NORMALIZATION_FILE, PercentileNormalization, normalize_depth, prepare_depth
from vosbench.errors import ConfigError, DataError


class CountingEstimator(DepthEstimator):
    """Depth = mean colour; counts the frames it is asked for."""

    batch_size = 2

    def __init__(self) -> None:
        self.frames_seen = 0

    def predict(self, frames: Sequence[np.ndarray], keys: Sequence[FrameKey] | None = None) -> list[np.ndarray]:
        self.frames_seen += len(frames)
        return [f.astype(np.float32).mean(axis=2) for f in frames]

    def describe(self) -> dict:
        return {"estimator": "counting"}


def _pngs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


def test_tiny_model_writes_uint16_maps_of_frame_size(make_davis_root, tiny_depth_model: Path) -> None:
    root = make_davis_root({"alpha": (5, 2), "beta": (3, 1)}, size=(48, 64))
    est = make_estimator(str(tiny_depth_model), batch_size=2)
    summary = prepare_depth(root, "val", "480p", est)
    assert [s.status for s in summary.sequences] == ["written", "written"]
    assert summary.frames_written == 8
    ds = DavisDataset(root, "val", "480p")
    for seq in ds:
        out = root / "Depth" / "480p" / seq.name
        assert _pngs(out) == [f"{n}.png" for n in seq.frame_names]
        for p in out.glob("*.png"):
            arr = np.asarray(Image.open(p))
            assert arr.dtype == np.uint16 and arr.shape == (48, 64)
        meta = json.loads((out / NORMALIZATION_FILE).read_text())
        assert meta["low"] < meta["high"] and meta["frames"] == seq.num_frames
        assert meta["estimator"]["output"] == "disparity"
        # one range for the whole video: ~1% of all pixels at 0 and ~1% at 1, not per frame
        stack = np.stack([seq.depth(i) for i in range(seq.num_frames)])
        assert stack.min() == 0.0 and stack.max() == 1.0
        assert 0.002 < np.mean(stack == 0.0) < 0.03 and 0.002 < np.mean(stack == 1.0) < 0.03
    assert not list((root / "Depth" / "480p").glob(".*")), "temp folders left behind"
    assert not list((root / "Depth" / "480p").rglob("*.npy")), "raw predictions left behind"


def test_folder_import_round_trips_with_one_scale_per_video(make_davis_root, tmp_path: Path) -> None:
    root = make_davis_root({"alpha": (4, 1)}, size=(24, 32))
    rng = np.random.default_rng(1)
    maps_dir = tmp_path / "mine" / "alpha"
    maps_dir.mkdir(parents=True)
    raw = [rng.uniform(0, 1, (24, 32)).astype(np.float32) * (t + 1) for t in range(4)]  # scale grows
    for t, d in enumerate(raw):
        np.save(maps_dir / f"{t:05d}.npy", d)
    summary = prepare_depth(root, "val", "480p", FolderDepthEstimator(tmp_path / "mine"))
    low, high = np.percentile(np.stack(raw), [1.0, 99.0])
    assert summary.sequences[0].low == pytest.approx(low) and summary.sequences[0].high == pytest.approx(high)
    seq = DavisDataset(root, "val", "480p").sequence("alpha")
    for t, d in enumerate(raw):
        np.testing.assert_allclose(seq.depth(t), normalize_depth(d, low, high), atol=1 / 65535)
    # the shared scale keeps frame 0 (small raw values) dark and frame 3 bright
    assert seq.depth(0).mean() < 0.2 < 0.4 < seq.depth(3).mean()


def test_disparity_import_flips_near_and_far(make_davis_root, tmp_path: Path) -> None:
    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    ramp = np.tile(np.linspace(0, 1000, 16, dtype=np.float32), (16, 1))
    for t in range(2):
        (tmp_path / "m" / "alpha").mkdir(parents=True, exist_ok=True)
        Image.fromarray(ramp.astype(np.uint16)).save(tmp_path / "m" / "alpha" / f"{t:05d}.png")
    prepare_depth(root, "val", "480p", make_estimator(f"folder:{tmp_path / 'm'}", kind="disparity"))
    d = DavisDataset(root, "val", "480p").sequence("alpha").depth(0)
    assert d[0, 0] == 1.0 and d[0, -1] == 0.0  # largest disparity = nearest = 0


def test_rerun_skips_finished_and_overwrite_redoes(make_davis_root) -> None:
    root = make_davis_root({"alpha": (3, 1), "beta": (2, 1)}, size=(16, 24))
    est = CountingEstimator()
    prepare_depth(root, "val", "480p", est)
    assert est.frames_seen == 5
    files = sorted((root / "Depth" / "480p").rglob("*"))
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    again = prepare_depth(root, "val", "480p", est)
    assert est.frames_seen == 5 and [s.status for s in again.sequences] == ["skipped", "skipped"]
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes
    # an incomplete sequence (a PNG removed) is redone, the finished one is not
    (root / "Depth" / "480p" / "beta" / "00001.png").unlink()
    third = prepare_depth(root, "val", "480p", est)
    assert [s.status for s in third.sequences] == ["skipped", "written"] and est.frames_seen == 7
    assert (root / "Depth" / "480p" / "beta" / "00001.png").is_file()
    redo = prepare_depth(root, "val", "480p", est, overwrite=True)
    assert [s.status for s in redo.sequences] == ["written", "written"] and est.frames_seen == 12


def test_skip_with_another_estimator_warns(make_davis_root, caplog: pytest.LogCaptureFixture) -> None:
    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    prepare_depth(root, "val", "480p", CountingEstimator())
    other = CountingEstimator()
    other.describe = lambda: {"estimator": "other"}  # type: ignore[method-assign]
    summary = prepare_depth(root, "val", "480p", other)
    assert summary.sequences[0].status == "skipped" and "--overwrite" in summary.sequences[0].note
    assert "made by" in caplog.text


def test_corrupt_frame_names_it_and_leaves_nothing_partial(make_davis_root) -> None:
    root = make_davis_root({"alpha": (2, 1), "beta": (4, 1)}, size=(16, 16))
    bad = root / "JPEGImages" / "480p" / "beta" / "00002.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated JPEG
    with pytest.raises(DataError, match=r"beta/00002\.jpg"):
        prepare_depth(root, "val", "480p", CountingEstimator())
    depth = root / "Depth" / "480p"
    assert not (depth / "beta").exists()
    assert [p.name for p in depth.iterdir()] == ["alpha"]  # no temp folder, no partial PNG
    assert len(_pngs(depth / "alpha")) == 2
    # --overwrite that fails keeps the previous, complete maps
    before = {p.name: p.read_bytes() for p in (depth / "alpha").iterdir()}
    (root / "JPEGImages" / "480p" / "alpha" / "00001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"alpha/00001\.jpg"):
        prepare_depth(root, "val", "480p", CountingEstimator(), overwrite=True)
    assert {p.name: p.read_bytes() for p in (depth / "alpha").iterdir()} == before
    assert [p.name for p in depth.iterdir()] == ["alpha"]


def test_missing_depth_error_names_folder_and_command(make_davis_root) -> None:
    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    seq = DavisDataset(root, "val", "480p").sequence("alpha")
    with pytest.raises(DataError, match=r"Depth/480p/alpha.*vosbench prepare depth --data .* --estimator"):
        seq.depth(0)


def test_constant_depth_gives_zeros_and_bad_percentiles_refused(make_davis_root) -> None:
    class Flat(CountingEstimator):
        def predict(self, frames, keys=None):
            return [np.full(f.shape[:2], 3.0, np.float32) for f in frames]

    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    summary = prepare_depth(root, "val", "480p", Flat())
    assert summary.sequences[0].low == summary.sequences[0].high == 3.0
    assert DavisDataset(root, "val", "480p").sequence("alpha").depth(1).max() == 0.0
    with pytest.raises(ConfigError, match="percentiles"):
        PercentileNormalization(low=50, high=10)


def test_maps_made_elsewhere_are_never_replaced_silently(make_davis_root) -> None:
    root = make_davis_root({"alpha": (2, 1), "beta": (2, 1)}, size=(16, 16))
    depth = root / "Depth" / "480p"
    rendered = np.full((16, 16), 0.25, np.float32)
    from vosbench.data.imageio import write_depth

    for t in range(2):  # complete rendered depth for alpha (no normalization.json), half for beta
        write_depth(depth / "alpha" / f"{t:05d}.png", rendered)
    write_depth(depth / "beta" / "00000.png", rendered)
    est = CountingEstimator()
    with pytest.raises(DataError, match=r"beta: holds depth maps for only some frames.*--overwrite"):
        prepare_depth(root, "val", "480p", est)
    assert est.frames_seen == 0  # refused before any work
    (depth / "beta" / "00000.png").unlink()
    summary = prepare_depth(root, "val", "480p", est)
    assert [s.status for s in summary.sequences] == ["skipped", "written"]
    assert "without normalization.json" in summary.sequences[0].note
    assert DavisDataset(root, "val", "480p").sequence("alpha").depth(0).max() == pytest.approx(0.25, abs=1e-4)
    prepare_depth(root, "val", "480p", est, overwrite=True)
    assert (depth / "alpha" / NORMALIZATION_FILE).is_file()


@pytest.mark.slow
def test_real_davis_clips_with_tiny_model(real_vos_root: Path, tiny_depth_model: Path, tmp_path: Path) -> None:
    root = tmp_path / "real"  # own root: the session-wide real_vos_root must stay without Depth/
    root.mkdir()
    for sub in ("JPEGImages", "ImageSets"):
        (root / sub).symlink_to(real_vos_root / sub)
    summary = prepare_depth(root, "val", "480p", make_estimator(str(tiny_depth_model), batch_size=8))
    assert len(summary.written) == 5 and not (real_vos_root / "Depth").exists()
    for seq in DavisDataset(root, "val", "480p"):
        d = seq.depth(seq.num_frames - 1)
        assert d.shape == seq.size and 0.0 <= d.min() < d.max() <= 1.0


def test_unwritable_depth_folder_is_a_data_error(make_davis_root) -> None:
    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    (root / "Depth").write_text("a file where the Depth/ folder goes")
    with pytest.raises(DataError, match=r"Depth.*cannot write depth maps"):
        prepare_depth(root, "val", "480p", CountingEstimator())
    assert (root / "Depth").read_text().startswith("a file")


def test_temps_of_a_killed_run_are_swept(make_davis_root) -> None:
    """A sequence folder left by a killed `prepare depth` (temp name, its process gone) is removed by
    the next run; a live process's temp stays."""
    from tests.test_bad_inputs import _dead_pid
    from vosbench.fsutil import TEMP_MARK, temp_prefix

    root = make_davis_root({"alpha": (2, 1)}, size=(16, 24))
    depth = root / "Depth" / "480p"
    depth.mkdir(parents=True)
    dead = depth / f"{temp_prefix('alpha').replace(f'-{os.getpid()}-', f'-{_dead_pid()}-')}x{TEMP_MARK}"
    live = depth / f"{temp_prefix('alpha')}y{TEMP_MARK}"
    dead.mkdir()
    (dead / "raw.npy").write_bytes(b"x" * 100)
    live.mkdir()
    prepare_depth(root, "val", "480p", CountingEstimator())
    assert sorted(p.name for p in depth.iterdir()) == sorted(["alpha", live.name])
