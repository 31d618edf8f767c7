import json

import numpy as np
import pytest
from typer.testing import CliRunner

from vosbench_cli.main import app
from tests.data.archive_helpers import replace_member, zip_tree
from vosbench.data.imageio import encode_mask_png, write_frame, write_mask
from vosbench.data.youtube import YouTubeVOS, prepare_youtube_vos
from vosbench.errors import DataError

runner = CliRunner()
H, W = 36, 48


def write_split(base, split, videos, *, annotate_all):
    """videos: vid -> (n_frames, {object id: first frame index}); frames are every 5th stem."""
    meta = {"videos": {}}
    for vid, (n, starts) in videos.items():
        stems = [f"{5 * t:05d}" for t in range(n)]
        objects = {}
        for t, stem in enumerate(stems):
            m = np.zeros((H, W), np.uint8)
            for oid, start in starts.items():
                if t >= start:
                    m[4 * oid : 4 * oid + 6, 3 + 5 * t : 12 + 5 * t] = oid
            img = np.full((H, W, 3), 30, np.uint8)
            img[m > 0] = 200
            write_frame(base / split / "JPEGImages" / vid / f"{stem}.jpg", img)
            if annotate_all or t in starts.values():
                if not annotate_all:  # valid: only the objects introduced at this frame
                    m = np.where(np.isin(m, [o for o, s in starts.items() if s == t]), m, 0).astype(np.uint8)
                write_mask(base / split / "Annotations" / vid / f"{stem}.png", m)
        for oid, start in starts.items():
            objects[str(oid)] = {"category": f"cat{oid}", "frames": stems[start:]}
        meta["videos"][vid] = {"objects": objects}
    (base / split / "meta.json").write_text(json.dumps(meta))


@pytest.fixture
def yt_zips(tmp_path):
    src = tmp_path / "yt_src"
    write_split(src, "train", {"aa11": (4, {1: 0, 2: 2}), "bb22": (3, {1: 0})}, annotate_all=True)
    write_split(src, "valid", {"cc33": (5, {1: 0, 2: 1, 3: 3})}, annotate_all=False)
    return zip_tree(src / "train", tmp_path / "train.zip", prefix="train"), zip_tree(
        src / "valid", tmp_path / "valid.zip", prefix="valid"
    )


def test_reader_first_appearance(tmp_path):
    write_split(tmp_path, "valid", {"cc33": (5, {1: 0, 2: 1, 3: 3})}, annotate_all=False)
    ds = YouTubeVOS(tmp_path, "valid")
    seq = ds.sequence("cc33")
    assert seq.object_ids == [1, 2, 3]
    assert seq.first_appearance == {1: 0, 2: 1, 3: 3}
    assert seq.objects_starting_at(3) == [3]
    assert seq.frame_names == ["00000", "00005", "00010", "00015", "00020"]
    assert seq.mask(2) is None and set(np.unique(seq.mask(3))) == {0, 3}
    assert seq.categories[2] == "cat2"
    assert ds.validate(full=True) == []


def test_davis_sequence_first_appearance_is_zero(make_davis_root):
    from vosbench.data.davis import DavisDataset

    seq = DavisDataset(make_davis_root({"a": (3, 2)}), "val").sequence("a")
    assert seq.first_appearance == {i: 0 for i in seq.object_ids}


def test_prepare_two_archives(tmp_path, yt_zips):
    root = tmp_path / "ytvos"
    manifest = prepare_youtube_vos(root, list(yt_zips))
    assert manifest["splits"] == {"train": ["aa11", "bb22"], "valid": ["cc33"]}
    assert manifest["sequences"]["aa11"]["first_appearance"] == {"1": 0, "2": 2}
    assert manifest["sequences"]["cc33"]["annotated_frames"] == 3
    assert (root / "train/JPEGImages/aa11/00015.jpg").is_file()
    assert json.loads((root / "manifest.json").read_text()) == manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.zip", "valid.zip", "yt_src", "ytvos"]
    # Adding an archive later keeps the other split and its source entry.
    again = prepare_youtube_vos(root, yt_zips[1])
    assert sorted(again["splits"]) == ["train", "valid"]
    assert [s["archive"] for s in again["sources"]] == ["train.zip", "valid.zip"]


def test_cli_success(tmp_path, yt_zips):
    root = tmp_path / "ytvos"
    result = runner.invoke(
        app,
        [
            "prepare",
            "youtube-vos",
            "--root",
            str(root),
            "--archive",
            str(yt_zips[0]),
            "--archive",
            str(yt_zips[1]),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "late objects" in result.output and (root / "valid/meta.json").is_file()


@pytest.mark.parametrize(
    "member, data, expected",
    [
        (
            "valid/Annotations/cc33/00015.png",
            None,
            r"valid\.zip:valid/Annotations/cc33/00015\.png: annotation missing for object 3",
        ),
        (
            "valid/Annotations/cc33/00005.png",
            encode_mask_png(np.zeros((10, 10), np.uint8)),
            r"00005\.png: mask size 10x10",
        ),
        ("valid/meta.json", b"{not json", r"valid\.zip:valid/meta\.json: not valid JSON"),
        ("valid/JPEGImages/cc33/00010.jpg", b"\xff\xd8\xff", None),
    ],
)
def test_cli_bad_valid_archive(tmp_path, yt_zips, member, data, expected):
    import zipfile

    z = yt_zips[1]
    if data is None:
        with zipfile.ZipFile(z) as zf:
            items = [(i, zf.read(i)) for i in zf.infolist() if i.filename != member]
        with zipfile.ZipFile(z, "w") as zf:
            for info, blob in items:
                zf.writestr(info, blob)
    else:
        replace_member(z, member, data)
    root = tmp_path / "ytvos"
    result = runner.invoke(app, ["prepare", "youtube-vos", "--root", str(root), "--archive", str(z)])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1
    assert __import__("re").search(expected or r"cc33/00010\.jpg: corrupt or truncated", lines[0]), lines[0]
    assert not root.exists()


def test_archive_without_splits(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x/readme.txt").write_text("hi")
    z = zip_tree(tmp_path / "x", tmp_path / "x.zip", prefix="")
    with pytest.raises(DataError, match="x.zip: no train/, valid/ or test/ folder"):
        prepare_youtube_vos(tmp_path / "root", z)


def test_train_missing_annotation_is_a_problem(tmp_path):
    write_split(tmp_path, "train", {"aa11": (3, {1: 0})}, annotate_all=True)
    (tmp_path / "train/Annotations/aa11/00005.png").unlink()
    problems = YouTubeVOS(tmp_path, "train").validate()
    assert problems == [f"{tmp_path}/train/Annotations/aa11: 2 annotations for 3 frames"]


def test_bad_second_archive_leaves_root_untouched(tmp_path, yt_zips):
    train, valid = yt_zips
    replace_member(valid, "valid/meta.json", b"{not json")
    root = tmp_path / "ytvos"
    with pytest.raises(DataError, match=r"valid\.zip:valid/meta\.json: not valid JSON"):
        prepare_youtube_vos(root, [train, valid])
    assert not root.exists()  # train.zip was fine, but nothing is merged unless every archive is
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.zip", "valid.zip", "yt_src"]
