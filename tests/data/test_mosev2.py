"""`prepare mosev2`: MOSEv2 archives (tar.gz as released, or zip) extracted safely, validated, described."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.data.archive_helpers import zip_tree
from vosbench_cli.main import app
from vosbench.data.mosev2 import Mosev2Dataset, is_mosev2_meta, prepare_mosev2
from vosbench.data.imageio import write_frame, write_mask
from vosbench.errors import DataError
from vosbench.metrics import open_benchmark

SIZE = (24, 32)


def write_split(base: Path, split: str, videos: dict[str, int], *, annotate_all: bool, meta_edit=None) -> Path:
    """``base/<split>``: frames, annotations (all, or the first), meta.json with lengths and objects {1, 2}."""
    meta = {}
    for name, n in videos.items():
        for t in range(n):
            write_frame(base / split / "JPEGImages" / name / f"{t:05d}.jpg", np.full((*SIZE, 3), 60, np.uint8))
            if annotate_all or t == 0:
                m = np.zeros(SIZE, np.uint8)
                m[2:8, 2 + t : 9 + t] = 1
                m[12:20, 10:20] = 2
                write_mask(base / split / "Annotations" / name / f"{t:05d}.png", m)
        meta[name] = {"length": n, "height": SIZE[0], "width": SIZE[1], "objects": {"1": {}, "2": {}}}
    if meta_edit:
        meta_edit(meta)
    (base / split).mkdir(parents=True, exist_ok=True)
    (base / split / "meta.json").write_text(json.dumps({"videos": meta}))
    return base


def tar_tree(folder: Path, path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for p in sorted(folder.iterdir()):
            tf.add(p, arcname=p.name)
    return path


@pytest.fixture
def archives(tmp_path):
    train = tar_tree(write_split(tmp_path / "src_train", "train", {"t1": 4, "t2": 3}, annotate_all=True), tmp_path / "train.tar.gz")
    valid = tar_tree(write_split(tmp_path / "src_valid", "valid", {"v1": 5}, annotate_all=False), tmp_path / "valid.tar.gz")
    return train, valid


def test_prepare_tar_archives(tmp_path, archives):
    root = tmp_path / "mosev2"
    manifest = prepare_mosev2(root, archives)
    assert manifest["dataset"] == "mosev2"
    assert manifest["splits"] == {"train": ["t1", "t2"], "valid": ["v1"]}
    assert manifest["sequences"]["v1"] == {"split": "valid", "frames": 5, "annotated_frames": 1, "height": 24,
                                           "width": 32, "object_ids": [1, 2]}
    assert is_mosev2_meta(root / "valid" / "meta.json")
    assert open_benchmark(root, "valid").task == "mosev2"
    assert Mosev2Dataset(root, "train").sequence("t1").num_frames == 4
    assert sorted(p.name for p in tmp_path.iterdir() if "extracting" in p.name) == []


def test_prepare_zip_with_a_top_folder(tmp_path):
    src = write_split(tmp_path / "src", "valid", {"v1": 3}, annotate_all=False)
    arc = zip_tree(src, tmp_path / "valid.zip", prefix="MOSEv2")
    prepare_mosev2(tmp_path / "root", [arc])
    assert (tmp_path / "root" / "valid" / "Annotations" / "v1" / "00000.png").is_file()


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        tf.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda: tarfile.TarInfo("../evil.txt"), "points outside the extraction folder"),
    (lambda: tarfile.TarInfo("/etc/evil.txt"), "absolute path"),
])
def test_unsafe_names_refuse_the_whole_archive(tmp_path, make, message):
    info = make()
    info.size = 3
    arc = _tar_with(tmp_path / "bad.tar.gz", info, b"abc")
    with pytest.raises(DataError, match=message):
        prepare_mosev2(tmp_path / "root", [arc])
    assert not (tmp_path / "root").exists() and not (tmp_path / "evil.txt").exists()


def test_links_are_refused(tmp_path):
    info = tarfile.TarInfo("valid/meta.json")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(DataError, match="is a link"):
        prepare_mosev2(tmp_path / "root", [_tar_with(tmp_path / "bad.tar", info)])


def test_truncated_archive(tmp_path, archives):
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archives[0].read_bytes()[:400])
    with pytest.raises(DataError, match="cut.tar.gz: (not a tar archive, or truncated|corrupt member)"):
        prepare_mosev2(tmp_path / "root", [cut])
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.pop("v2"), "no entry for video 'v2'"),
    (lambda m: m["v1"].update(length=4), "3 frames but meta.json gives length 4"),
    (lambda m: m["v1"].update(objects={"1": {}}), r"object id\(s\) 2 not in meta.json's objects"),
    (lambda m: m.update(v9={"length": 2, "objects": ["1"]}), "video 'v9' has no frames"),
])
def test_bad_split_leaves_root_untouched(tmp_path, archives, edit, message):
    root = tmp_path / "root"
    prepare_mosev2(root, [archives[0]])
    before = (root / "manifest.json").read_text()
    bad = tar_tree(write_split(tmp_path / "bad", "valid", {"v1": 3, "v2": 3}, annotate_all=False, meta_edit=edit),
                   tmp_path / "valid.tar.gz")
    with pytest.raises(DataError, match=message):
        prepare_mosev2(root, [bad])
    assert not (root / "valid").exists() and (root / "manifest.json").read_text() == before


def test_youtube_vos_meta_is_refused(tmp_path):
    src = write_split(tmp_path / "src", "valid", {"v1": 3}, annotate_all=False)
    (src / "valid" / "meta.json").write_text(json.dumps({"videos": {"v1": {"objects": {"1": {"frames": ["00000"]}}}}}))
    with pytest.raises(DataError, match="not a MOSEv2 meta.json"):
        prepare_mosev2(tmp_path / "root", [tar_tree(src, tmp_path / "valid.tar.gz")])


def test_cli_success_and_one_line_error(tmp_path, archives):
    runner = CliRunner()
    result = runner.invoke(app, ["prepare", "mosev2", "--root", str(tmp_path / "root"), "--archive", str(archives[1])])
    assert result.exit_code == 0, result.output
    assert "MOSEv2 in" in result.output and (tmp_path / "root" / "manifest.json").is_file()
    result = runner.invoke(app, ["prepare", "mosev2", "--root", str(tmp_path / "r2"), "--archive", str(tmp_path / "nope.tar.gz")])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "archive not found" in lines[0], result.output
