import stat
import zipfile

import pytest

from tests.data.archive_helpers import fail_disk_after
from vosbench.data import archive as archive_mod
from vosbench.data.archive import merge_tree, safe_extract_zip
from vosbench.errors import DataError


def make_zip(path, members):
    """members: name -> bytes, or ("symlink", target)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            if isinstance(data, tuple):
                info = zipfile.ZipInfo(name)
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, data[1])
            else:
                zf.writestr(name, data)
    return path


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_extracts_and_strips_top_folder(tmp_path):
    z = make_zip(
        tmp_path / "a.zip",
        {"DAVIS/x.txt": b"x", "DAVIS/sub/y.txt": b"yy", "DAVIS/sub/": b"", "__MACOSX/DAVIS/._x.txt": b"fork"},
    )
    out = safe_extract_zip(z, tmp_path / "out", strip_top="DAVIS")
    assert (out / "x.txt").read_bytes() == b"x" and (out / "sub/y.txt").read_bytes() == b"yy"
    assert leftovers(tmp_path) == ["a.zip", "out"]
    assert out.stat().st_mode & 0o777 == (out / "sub").stat().st_mode & 0o777  # not mkdtemp's private 0700
    # A different top folder is not stripped when a name is given, but "*" strips any.
    out2 = safe_extract_zip(z, tmp_path / "out2", strip_top="OTHER")
    assert (out2 / "DAVIS/x.txt").exists()
    out3 = safe_extract_zip(z, tmp_path / "out3", strip_top="*")
    assert (out3 / "x.txt").exists()


def test_merges_into_existing_folder(tmp_path):
    (tmp_path / "out/keep").mkdir(parents=True)
    (tmp_path / "out/keep/old.txt").write_text("old")
    (tmp_path / "out/x.txt").write_text("stale")
    z = make_zip(tmp_path / "a.zip", {"x.txt": b"new", "keep/new.txt": b"n"})
    safe_extract_zip(z, tmp_path / "out")
    assert (tmp_path / "out/x.txt").read_text() == "new"
    assert sorted(p.name for p in (tmp_path / "out/keep").iterdir()) == ["new.txt", "old.txt"]


def test_merge_clash_moves_nothing(tmp_path):
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest/a").write_text("file where a folder goes")
    (tmp_path / "src/a").mkdir(parents=True)
    (tmp_path / "src/a/f").write_text("1")
    (tmp_path / "src/b").write_text("2")
    with pytest.raises(DataError, match="in the way"):
        merge_tree(tmp_path / "src", tmp_path / "dest")
    assert leftovers(tmp_path / "dest") == ["a"]


@pytest.mark.parametrize(
    "bad, message",
    [
        ("../evil.txt", "points outside"),
        ("ok/../../evil.txt", "points outside"),
        ("/tmp/evil.txt", "absolute path"),
        ("C:/evil.txt", "absolute path"),
        ("..\\evil.txt", "points outside"),
    ],
)
def test_unsafe_names_refuse_whole_archive(tmp_path, bad, message):
    z = make_zip(tmp_path / "bad.zip", {"a.txt": b"first member is fine", bad: b"evil"})
    with pytest.raises(DataError, match=message) as err:
        safe_extract_zip(z, tmp_path / "root" / "out")
    assert "bad.zip" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "root" / "out").exists()
    assert leftovers(tmp_path / "root") == []  # no temp folder left either


@pytest.mark.parametrize(
    "members",
    [
        {"link": ("symlink", "../../etc")},
        {"link": ("symlink", "/etc/passwd")},
        {"d/up": ("symlink", ".."), "d/up/x": b"through a link"},
        {"d/up": ("symlink", ".."), "chain": ("symlink", "d/up/..")},
    ],
)
def test_escaping_symlinks_refused(tmp_path, members):
    z = make_zip(tmp_path / "s.zip", {"a.txt": b"a", **members})
    with pytest.raises(DataError, match="refused"):
        safe_extract_zip(z, tmp_path / "root" / "out")
    assert leftovers(tmp_path / "root") == []


def test_symlink_inside_root_is_kept(tmp_path):
    z = make_zip(tmp_path / "s.zip", {"data/a.txt": b"a", "alias": ("symlink", "data/a.txt")})
    out = safe_extract_zip(z, tmp_path / "out")
    assert (out / "alias").is_symlink() and (out / "alias").read_bytes() == b"a"


def test_truncated_zip(tmp_path):
    z = make_zip(tmp_path / "t.zip", {f"f{i}.bin": bytes(range(256)) * 40 for i in range(5)})
    data = z.read_bytes()
    z.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"t\.zip: not a zip archive, or truncated"):
        safe_extract_zip(z, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_corrupt_member_crc(tmp_path):
    z = tmp_path / "c.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.bin", b"A" * 5000)
        zf.writestr("b.bin", b"B" * 5000)
    data = bytearray(z.read_bytes())
    i = data.index(b"B" * 100)
    data[i + 10] = ord("C")  # stored data changed, CRC no longer matches
    z.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"c\.zip: corrupt member 'b\.bin'"):
        safe_extract_zip(z, tmp_path / "out")
    assert leftovers(tmp_path) == ["c.zip"]


def test_disk_full_leaves_nothing(tmp_path, monkeypatch):
    z = make_zip(tmp_path / "big.zip", {f"DAVIS/f{i}.bin": b"x" * 1000 for i in range(6)})
    fail_disk_after(monkeypatch, 4)
    (tmp_path / "root").mkdir()
    (tmp_path / "root/existing.txt").write_text("untouched")
    with pytest.raises(DataError, match=r"big\.zip: disk full while extracting 'DAVIS/f3\.bin'"):
        safe_extract_zip(z, tmp_path / "root", strip_top="DAVIS")
    assert leftovers(tmp_path) == ["big.zip", "root"]
    assert leftovers(tmp_path / "root") == ["existing.txt"]


def test_not_enough_space_is_refused_up_front(tmp_path, monkeypatch):
    z = make_zip(tmp_path / "a.zip", {"a.bin": b"x" * 1000})
    monkeypatch.setattr(archive_mod.shutil, "disk_usage", lambda p: type("U", (), {"free": 10})())
    with pytest.raises(DataError, match="needs .* GB but only"):
        safe_extract_zip(z, tmp_path / "out")
    assert leftovers(tmp_path) == ["a.zip"]


def test_missing_archive(tmp_path):
    with pytest.raises(DataError, match="nope.zip: archive not found"):
        safe_extract_zip(tmp_path / "nope.zip", tmp_path / "out")


def test_folder_given_as_archive(tmp_path):
    (tmp_path / "dir.zip").mkdir()
    with pytest.raises(DataError, match=r"dir\.zip: is a folder, expected a zip archive"):
        safe_extract_zip(tmp_path / "dir.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unwritable_destination_is_a_one_line_error(tmp_path, monkeypatch):
    z = make_zip(tmp_path / "a.zip", {"a.txt": b"a"})
    (tmp_path / "file").write_text("a file where the parent folder should be")
    with pytest.raises(DataError, match=r"file/sub: cannot create the folder to extract a\.zip in \(Not a dir"):
        safe_extract_zip(z, tmp_path / "file" / "sub" / "out")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(archive_mod, "make_temp_dir", denied)
    with pytest.raises(DataError, match=r"cannot extract a\.zip here \(Permission denied\)"):
        safe_extract_zip(z, tmp_path / "out")
    assert not (tmp_path / "out").exists()
