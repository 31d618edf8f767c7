"""`infer` on an SA-V root: 24 fps frames in, each object's first non-empty annotated mask given,
SA-V's per-object layout out (then scored by `evaluate --task sav`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from vosbench.data.sav import SavDataset
from vosbench.infer import infer_dataset
from vosbench.metrics import evaluate_results

SIZE = (32, 48)


def _box(y0, y1, x0, x1) -> np.ndarray:
    m = np.zeros(SIZE, bool)
    m[y0:y1, x0:x1] = True
    return m


PERSON, HAND, LATE = _box(4, 28, 4, 24), _box(8, 14, 8, 14), _box(18, 26, 32, 42)


def write_sav(root: Path, n_frames: int = 9) -> Path:
    """One video ``v``: 24 fps frames 0..n-1, objects annotated on every 4th: 000 a person, 001 a
    hand inside it (they overlap), 002 empty on the first annotated frame, visible from 00004 on."""
    rng = np.random.default_rng(0)
    (root / "JPEGImages_24fps" / "v").mkdir(parents=True)
    for t in range(n_frames):
        img = rng.integers(0, 60, (*SIZE, 3)).astype(np.uint8)
        img[PERSON] = 150
        img[HAND] = 230
        if t >= 4:
            img[LATE] = 90
        Image.fromarray(img).save(root / "JPEGImages_24fps" / "v" / f"{t:05d}.jpg")
    for t in range(0, n_frames, 4):
        for obj, m in (("000", PERSON), ("001", HAND), ("002", LATE if t >= 4 else np.zeros(SIZE, bool))):
            path = root / "Annotations_6fps" / "v" / obj / f"{t:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(m.astype(np.uint8) * 255, "L").save(path)
    (root / "sav_val.txt").write_text("v\n")
    return root


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)) != 0


def test_sav_root_writes_the_per_object_layout_and_overlapping_givens_both_join(tiny_checkpoint, tmp_path):
    data = write_sav(tmp_path / "sav")
    summary = infer_dataset(str(tiny_checkpoint("stm-tiny")), data, "val", out=tmp_path / "out")
    assert [(s.name, s.objects) for s in summary.sequences] == [("v", 3)]
    out = tmp_path / "out" / "v"
    for obj in ("000", "001", "002"):
        assert sorted(p.name for p in (out / obj).glob("*.png")) == [f"{t:05d}.png" for t in range(9)]
        assert set(np.unique(np.asarray(Image.open(out / obj / "00003.png")))) <= {0, 1}
    # frame 0: the given masks; where person and hand overlap the smaller (the hand) keeps the pixels
    assert np.array_equal(_read(out / "001" / "00000.png"), HAND)
    assert np.array_equal(_read(out / "000" / "00000.png"), PERSON & ~HAND)
    # object 002 joins on 00004, its first non-empty annotation
    assert not any(_read(out / "002" / f"{t:05d}.png").any() for t in range(4))
    assert np.array_equal(_read(out / "002" / "00004.png"), LATE)
    result = evaluate_results(data, tmp_path / "out", "val", task="sav", workers=1, write_csv=False)
    assert [(o.sequence, o.object_id) for o in result.objects] == [("v", 0), ("v", 1), ("v", 2)]


def test_independent_object_scores_keep_their_overlaps(tmp_path):
    data = write_sav(tmp_path / "sav")
    seq = SavDataset(data, "val").sequence("v")
    probs = np.zeros((3, *SIZE), np.float32)  # background, label 1 (000), label 2 (001); 002 not tracked
    probs[1][PERSON], probs[2][HAND] = 0.9, 0.95
    folder = tmp_path / "o"
    folder.mkdir()
    seq.write_prediction(folder, "00001", probs, (1, 2), independent=True)
    assert np.array_equal(_read(folder / "000" / "00001.png"), PERSON)
    assert np.array_equal(_read(folder / "001" / "00001.png"), HAND)
    assert not _read(folder / "002" / "00001.png").any()
    seq.write_prediction(folder, "00002", probs, (1, 2))  # competing: the arg-max, never overlapping
    assert np.array_equal(_read(folder / "000" / "00002.png"), PERSON & ~HAND)


def test_annotated_frame_without_a_24fps_frame_is_one_error(tiny_checkpoint, tmp_path):
    import pytest

    from vosbench.errors import DataError

    data = write_sav(tmp_path / "sav", n_frames=8)  # annotations 00000, 00004; then one more without a frame
    Image.fromarray(HAND.astype(np.uint8) * 255, "L").save(data / "Annotations_6fps" / "v" / "001" / "00008.png")
    with pytest.raises(DataError, match=r"00008 of object 001 have no frame among the 8"):
        infer_dataset(str(tiny_checkpoint("stm-tiny")), data, "val", out=tmp_path / "out")
    assert not (tmp_path / "out" / "v").exists()


def test_ground_truth_of_a_frame_as_object_masks_keeps_the_overlap(tmp_path):
    data = write_sav(tmp_path / "sav")
    gt = SavDataset(data, "val").object_masks("v", "00004")
    assert gt.ids == (0, 1, 2)
    assert np.array_equal(gt.mask(0), PERSON) and np.array_equal(gt.mask(1), HAND) and np.array_equal(gt.mask(2), LATE)
    assert gt.overlap().sum() == HAND.sum()


def test_rerun_after_an_annotation_it_read_changed_is_refused(tiny_checkpoint, tmp_path):
    """The provenance covers the per-object PNGs read to place each object (here 002's 00004.png)."""
    import pytest

    from vosbench.errors import ConfigError

    data = write_sav(tmp_path / "sav")
    ckpt = str(tiny_checkpoint("stm-tiny"))
    infer_dataset(ckpt, data, "val", out=tmp_path / "out")
    assert infer_dataset(ckpt, data, "val", out=tmp_path / "out").sequences[0].status == "skipped"
    moved = np.zeros(SIZE, bool)
    moved[2:6, 30:40] = True
    Image.fromarray(moved.astype(np.uint8) * 255, "L").save(data / "Annotations_6fps" / "v" / "002" / "00004.png")
    with pytest.raises(ConfigError, match="other input data"):
        infer_dataset(ckpt, data, "val", out=tmp_path / "out")
