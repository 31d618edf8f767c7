"""infer_dataset end to end with tiny random-init checkpoints on tiny DAVIS-layout folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vosbench.data.imageio import has_davis_palette, read_mask, write_depth, write_frame, write_mask
from vosbench.errors import CheckpointError, ConfigError, DataError
from vosbench.infer import InferOptions, MemberSpec, Recipe, infer_dataset
from vosbench.progress import NullProgress

SIZE = (32, 48)
SEQS = {"alpha": (3, 2), "beta": (2, 1)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_checkpoint):
    """One full run of stm-tiny on a two-sequence root (shared by the tests that compare to it)."""
    root = tmp_path_factory.mktemp("ref")
    data = _davis(root / "data")
    out = root / "out"
    summary = infer_dataset(str(tiny_checkpoint("stm-tiny")), data, out=out, options=InferOptions(save_probs=True))
    return data, out, summary


def _davis(root: Path, seqs=None, size=SIZE, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    h, w = size
    seqs = seqs or SEQS
    for name, (n, k) in seqs.items():
        for t in range(n):
            m = np.zeros((h, w), np.uint8)
            for obj in range(1, k + 1):
                y, x = 4 + 12 * (obj - 1) % (h - 12), 4 + 2 * t + 10 * obj
                m[y : y + 10, x : x + 10] = obj
            img = rng.integers(0, 80, (h, w, 3)).astype(np.uint8)
            img[m > 0] = 200
            write_frame(root / "JPEGImages" / "480p" / name / f"{t:05d}.jpg", img)
            write_mask(root / "Annotations" / "480p" / name / f"{t:05d}.png", m)
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{n}\n" for n in seqs))
    return root


def _pngs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_outputs_palette_pngs_at_original_names_and_size(reference):
    data, out, summary = reference
    assert [s.status for s in summary.sequences] == ["written", "written"]
    assert summary.frames == 5 and summary.fps > 0 and summary.peak_rss_mb > 0
    for name, (n, k) in SEQS.items():
        files = sorted(p.name for p in (out / name).glob("*.png"))
        assert files == [f"{t:05d}.png" for t in range(n)]
        first = read_mask(out / name / "00000.png")
        assert np.array_equal(first, read_mask(data / "Annotations" / "480p" / name / "00000.png"))
        for t in range(n):
            m = read_mask(out / name / f"{t:05d}.png")
            assert m.shape == SIZE and set(np.unique(m)) <= set(range(k + 1))
        assert has_davis_palette(out / name / "00001.png")
        probs = np.load(out / name / "probs" / f"{n - 1:05d}.npz")
        assert probs["probs"].shape == (k + 1, *SIZE) and probs["probs"].dtype == np.uint8
        assert list(probs["object_ids"]) == list(range(1, k + 1))
        assert np.abs(probs["probs"].astype(int).sum(0) - 255).max() <= k + 1
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp leftovers


class _StopAt(NullProgress):
    """Interrupts the run when the given sequence starts (as a kill would)."""

    def __init__(self, name: str):
        self.name = name

    def start(self, description: str, total: int | None = None) -> None:
        if description == self.name:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_to_identical_output(reference, tiny_checkpoint, tmp_path):
    data, ref_out, _ = reference
    out = tmp_path / "out"
    ckpt = str(tiny_checkpoint("stm-tiny"))
    opts = InferOptions(save_probs=True)
    with pytest.raises(KeyboardInterrupt):
        infer_dataset(ckpt, data, out=out, options=opts, progress=_StopAt("beta"))
    assert sorted(p.name for p in out.iterdir()) == ["alpha"]  # beta not half-written
    stamp = (out / "alpha" / "00001.png").stat().st_mtime_ns
    summary = infer_dataset(ckpt, data, out=out, options=opts)
    assert [s.status for s in summary.sequences] == ["skipped", "written"]
    assert (out / "alpha" / "00001.png").stat().st_mtime_ns == stamp
    assert _pngs(out) == _pngs(ref_out)
    again = infer_dataset(ckpt, data, out=out, options=InferOptions(overwrite=True))
    assert [s.status for s in again.sequences] == ["written", "written"]
    assert _pngs(out) == _pngs(ref_out)


def test_ensemble_of_one_equals_the_checkpoint(reference, tiny_checkpoint, tmp_path):
    data, ref_out, _ = reference
    recipe = Recipe(members=[MemberSpec(tiny_checkpoint("stm-tiny"), weight=2.5)])
    infer_dataset(recipe, data, out=tmp_path / "ens", options=InferOptions(save_probs=True))
    assert _pngs(tmp_path / "ens") == _pngs(ref_out)
    a = np.load(tmp_path / "ens" / "alpha" / "probs" / "00002.npz")["probs"]
    b = np.load(ref_out / "alpha" / "probs" / "00002.npz")["probs"]
    assert np.array_equal(a, b)


def test_sharding_takes_every_world_size_th_sequence(reference, tiny_checkpoint, tmp_path):
    data, ref_out, _ = reference
    summary = infer_dataset(str(tiny_checkpoint("stm-tiny")), data, out=tmp_path, rank=1, world_size=2)
    assert [s.name for s in summary.sequences] == ["beta"]
    assert _pngs(tmp_path) == {k: v for k, v in _pngs(ref_out).items() if k.startswith("beta/")}


def test_late_object_joins_on_its_first_annotated_frame(tiny_checkpoint, tmp_path):
    data = _davis(tmp_path / "data", {"late": (4, 2)})
    ann = data / "Annotations" / "480p" / "late"
    m0 = read_mask(ann / "00000.png")
    write_mask(ann / "00000.png", np.where(m0 == 2, 0, m0).astype(np.uint8))
    write_mask(ann / "00001.png", np.where(read_mask(ann / "00001.png") == 2, 0, 1).astype(np.uint8) * 0)
    # DAVIS layout, default --given first: later annotations are ground truth, never read
    summary = infer_dataset(str(tiny_checkpoint("stm-tiny")), data, out=tmp_path / "first")
    assert summary.sequences[0].objects == 1
    assert not any(2 in np.unique(read_mask(p)) for p in (tmp_path / "first" / "late").glob("*.png"))
    summary = infer_dataset(str(tiny_checkpoint("stm-tiny")), data, out=tmp_path / "out",
                            options=InferOptions(given="first-appearance"))
    assert summary.sequences[0].objects == 2
    out = tmp_path / "out" / "late"
    assert 2 not in np.unique(read_mask(out / "00000.png"))
    assert 2 not in np.unique(read_mask(out / "00001.png"))
    # object 2 first appears in the annotation of frame 2: its ground truth is pasted there
    assert np.array_equal(read_mask(out / "00002.png") == 2, read_mask(ann / "00002.png") == 2)


def test_empty_first_mask_is_an_error_unless_objects_appear_later(tiny_checkpoint, tmp_path):
    data = _davis(tmp_path / "data", {"empty": (3, 1)})
    write_mask(data / "Annotations" / "480p" / "empty" / "00000.png", np.zeros(SIZE, np.uint8))
    with pytest.raises(DataError, match=r"empty/00000\.png: sequence 'empty': the first-frame annotation has no objects"):
        infer_dataset(str(tiny_checkpoint("stm-tiny")), data, out=tmp_path / "out")
    assert not (tmp_path / "out" / "empty").exists()
    # the YouTube-VOS protocol supplies the object from frame 1's annotation
    summary = infer_dataset(str(tiny_checkpoint("stm-tiny")), data, out=tmp_path / "out",
                            options=InferOptions(given="first-appearance"))
    assert summary.sequences[0].objects == 1
    assert not read_mask(tmp_path / "out" / "empty" / "00000.png").any()


def test_frame_of_another_size_fails_without_partial_output(tiny_checkpoint, tmp_path):
    data = _davis(tmp_path / "data", {"odd": (3, 1)})
    write_frame(data / "JPEGImages" / "480p" / "odd" / "00002.jpg", np.zeros((40, 48, 3), np.uint8))
    with pytest.raises(DataError, match="00002.jpg: frame size 48x40 differs"):
        infer_dataset(str(tiny_checkpoint("stm-tiny")), data, out=tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_depth_checkpoint_needs_depth(tiny_checkpoint, tmp_path):
    data = _davis(tmp_path / "data", {"d": (2, 1)})
    with pytest.raises(DataError, match="no depth maps.*--depth-estimator"):
        infer_dataset(str(tiny_checkpoint("dstm-tiny")), data, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_scm_and_dstm_ensemble_with_dataset_depth(tiny_checkpoint, tmp_path):
    data = _davis(tmp_path / "data", {"d": (2, 2)})
    for t in range(2):
        write_depth(data / "Depth" / "480p" / "d" / f"{t:05d}.png", np.full(SIZE, t / 3, np.float32))
    ens = f"{tiny_checkpoint('scm-tiny')}:2,{tiny_checkpoint('dstm-tiny')}"
    summary = infer_dataset(ens, data, out=tmp_path / "out", options=InferOptions(save_probs=True))
    assert summary.members[0].startswith("scm-tiny-0.pt (scm-tiny, w=0.667)")
    p = np.load(tmp_path / "out" / "d" / "probs" / "00001.npz")
    assert p["probs"].shape == (3, *SIZE)


def test_bad_checkpoints_and_outputs(tiny_checkpoint, tmp_path):
    data = _davis(tmp_path / "data", {"s": (2, 1)})
    with pytest.raises(CheckpointError, match="not found"):
        infer_dataset(str(tmp_path / "nope.pt"), data, out=tmp_path / "o1")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a vosbench checkpoint"):
        infer_dataset(str(tmp_path / "junk.pt"), data, out=tmp_path / "o2")
    obj = torch.load(tiny_checkpoint("stm-tiny"), weights_only=True)
    obj["config"]["name"] = "stm-huge"
    obj["config"]["bogus_part"] = True
    torch.save(obj, tmp_path / "unknown.pt")
    with pytest.raises(CheckpointError, match="unknown.pt"):
        infer_dataset(str(tmp_path / "unknown.pt"), data, out=tmp_path / "o3")
    assert not any((tmp_path / o).exists() for o in ("o1", "o2", "o3"))
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="not writable"):
            infer_dataset(str(tiny_checkpoint("stm-tiny")), data, out=locked / "out")
    empty = _davis(tmp_path / "data2", {"s": (2, 1)})
    shutil.rmtree(empty / "JPEGImages" / "480p" / "s")
    (empty / "JPEGImages" / "480p" / "s").mkdir()
    with pytest.raises(DataError, match="no frames"):
        infer_dataset(str(tiny_checkpoint("stm-tiny")), empty, out=tmp_path / "o4")
    assert not (tmp_path / "o4").exists()


@pytest.mark.slow  # ~40 s on a loaded 2-core machine
def test_embedded_dataset_end_to_end_with_dataset_depth(tiny_synthetic_root, tiny_checkpoint, tmp_path):
    """dstm-tiny on the embedded dataset's test-dev split (first-frame masks only, Depth/ maps)."""
    from vosbench.data.davis import DavisDataset

    ds = DavisDataset(tiny_synthetic_root, "test-dev", "480p")
    summary = infer_dataset(str(tiny_checkpoint("dstm-tiny")), tiny_synthetic_root, "test-dev", out=tmp_path,
                            options=InferOptions(mem_every=3, max_mem_frames=3))
    for seq in ds:
        assert sorted(p.stem for p in (tmp_path / seq.name).glob("*.png")) == seq.frame_names
        assert np.array_equal(read_mask(tmp_path / seq.name / f"{seq.frame_names[0]}.png"), seq.first_mask())
        last = read_mask(tmp_path / seq.name / f"{seq.frame_names[-1]}.png")
        assert last.shape == seq.size and set(np.unique(last)) <= {0, *seq.object_ids}
    assert summary.frames == sum(s.num_frames for s in ds)


def test_youtube_vos_root_late_objects_join_on_their_annotation(tiny_checkpoint, tmp_path):
    """A YouTube-VOS `valid` split: annotations only where objects first appear; object 2 joins on
    frame 1 (stem 00005), object 3 on frame 3. Before the fix meta.json's late objects were given
    empty masks on frame 0 and never joined."""
    from tests.data.test_youtube import write_split

    write_split(tmp_path / "yt", "valid", {"cc33": (5, {1: 0, 2: 1, 3: 3})}, annotate_all=False)
    summary = infer_dataset(str(tiny_checkpoint("stm-tiny")), tmp_path / "yt", "valid", out=tmp_path / "out")
    assert [(s.name, s.objects) for s in summary.sequences] == [("cc33", 3)]
    out = tmp_path / "out" / "cc33"
    assert sorted(p.name for p in out.glob("*.png")) == [f"{5 * t:05d}.png" for t in range(5)]
    ann = tmp_path / "yt" / "valid" / "Annotations" / "cc33"
    assert set(np.unique(read_mask(out / "00000.png"))) <= {0, 1}
    assert np.array_equal(read_mask(out / "00005.png") == 2, read_mask(ann / "00005.png") == 2)
    assert 3 not in np.unique(read_mask(out / "00010.png"))
    assert np.array_equal(read_mask(out / "00015.png") == 3, read_mask(ann / "00015.png") == 3)


def test_youtube_vos_video_whose_objects_all_appear_later(tiny_checkpoint, tmp_path):
    from tests.data.test_youtube import write_split

    write_split(tmp_path / "yt", "valid", {"dd44": (3, {1: 1})}, annotate_all=False)
    summary = infer_dataset(str(tiny_checkpoint("stm-tiny")), tmp_path / "yt", "valid", out=tmp_path / "out")
    assert summary.sequences[0].objects == 1
    out = tmp_path / "out" / "dd44"
    assert not read_mask(out / "00000.png").any()
    ann = read_mask(tmp_path / "yt" / "valid" / "Annotations" / "dd44" / "00005.png")
    assert np.array_equal(read_mask(out / "00005.png"), ann)


def test_unknown_device_is_a_config_error(tiny_checkpoint, tmp_path):
    data = _davis(tmp_path / "data", {"s": (2, 1)})
    with pytest.raises(ConfigError, match="--device must be auto, cpu, cuda or cuda:N, got 'gpu'"):
        infer_dataset(str(tiny_checkpoint("stm-tiny")), data, out=tmp_path / "out", options=InferOptions(device="gpu"))
    assert not (tmp_path / "out").exists()


def test_embedded_dataset_end_to_end(tiny_synthetic_root, tiny_checkpoint, tmp_path):
    """stm-tiny on the embedded tiny dataset's test-dev split (first-frame masks only), half scale."""
    from vosbench.data.davis import DavisDataset

    ds = DavisDataset(tiny_synthetic_root, "test-dev", "480p")
    summary = infer_dataset(str(tiny_checkpoint("stm-tiny")), tiny_synthetic_root, "test-dev", out=tmp_path,
                            options=InferOptions(scales=(0.5,)))
    assert [s.status for s in summary.sequences] == ["written"] * len(ds)
    for seq in ds:
        assert sorted(p.stem for p in (tmp_path / seq.name).glob("*.png")) == seq.frame_names
        first = read_mask(tmp_path / seq.name / f"{seq.frame_names[0]}.png")
        assert np.array_equal(first, seq.first_mask())  # the given mask, not its 0.5x round trip
        last = read_mask(tmp_path / seq.name / f"{seq.frame_names[-1]}.png")
        assert last.shape == seq.size and set(np.unique(last)) <= {0, *seq.object_ids}
        assert has_davis_palette(tmp_path / seq.name / f"{seq.frame_names[-1]}.png")
    assert summary.frames == sum(s.num_frames for s in ds)
