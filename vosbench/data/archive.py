"""Safe zip extraction: all-or-nothing, no path traversal, corrupt archives refused.

Every member name is checked before a single byte is written: ``..`` components, absolute paths,
drive letters, symlinks that point outside the root (or through another symlink), special files and
file/folder clashes refuse the *whole* archive. Members are extracted into a temp folder beside the
destination (same file system), their CRCs checked as they are read; only a complete extraction is
moved into place, so a corrupt member or a full disk leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from vosbench.data.names import name_problem
from vosbench.errors import DataError
from vosbench.fsutil import _give_default_mode, make_temp_dir, sweep_temps
from vosbench.progress import Progress, ensure_progress

CHUNK_SIZE = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


class CorruptArchiveError(DataError):
    """The zip itself is damaged (truncated, bad CRC): a fresh copy of the file may fix it."""


@dataclass(frozen=True)
class Member:
    """One archive member and where it goes, relative to the extraction root."""

    info: zipfile.ZipInfo
    target: PurePosixPath
    kind: str  # "file", "dir" or "symlink"
    link: str | None = None  # symlink target (relative)


def _member_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if info.is_dir():
        return "dir"
    if mode and stat.S_ISLNK(mode):
        return "symlink"
    if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        return "special"
    return "file"


def _clean_parts(archive: Path, name: str) -> tuple[str, ...]:
    """Split a member name into safe components or refuse it."""
    if "\x00" in name:
        raise DataError(f"{archive}: refused: member {name!r} has a NUL byte in its name")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise DataError(f"{archive}: refused: member {name!r} has an absolute path; nothing was extracted")
    parts = tuple(p for p in re.split(r"[/\\]", name) if p not in ("", "."))
    if ".." in parts:
        raise DataError(
            f"{archive}: refused: member {name!r} points outside the extraction folder; nothing was extracted"
        )
    for part in parts:
        problem = name_problem(part)
        if problem is not None:
            raise DataError(f"{archive}: refused: member {name!r}: {part!r} {problem}; nothing was extracted")
    return parts


def _link_escapes(link_parts: tuple[str, ...], target: str, symlinks: set[tuple[str, ...]]) -> bool:
    """True if a symlink at ``link_parts`` pointing to ``target`` leaves the root or goes through a symlink."""
    if target.startswith(("/", "\\")) or _DRIVE.match(target):
        return True
    here = list(link_parts[:-1])
    for comp in re.split(r"[/\\]", target):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not here:
                return True
            here.pop()
        else:
            here.append(comp)
            if tuple(here) in symlinks:
                return True
    return False


def plan_members(zf: zipfile.ZipFile, archive: Path, *, strip_top: str | None = None) -> list[Member]:
    """Check every member of ``zf`` and decide where it goes; raise :class:`DataError` on any unsafe one.

    ``strip_top`` removes a single top-level folder common to every member: a name (``"DAVIS"``)
    strips only that folder, ``"*"`` strips whatever the single top-level folder is.
    """
    raw: list[tuple[zipfile.ZipInfo, tuple[str, ...], str]] = []
    for info in zf.infolist():
        parts = _clean_parts(archive, info.filename)
        kind = _member_kind(info)
        if kind == "special":
            raise DataError(
                f"{archive}: refused: member {info.filename!r} is not a regular file, folder or symlink"
            )
        if parts and parts[0] != "__MACOSX":  # macOS resource forks, never data
            raw.append((info, parts, kind))
    tops = {parts[0] for _, parts, _ in raw}
    strip = False
    if strip_top is not None and len(tops) == 1:
        top = next(iter(tops))
        # Strip only a folder: a lone top-level file stays.
        strip = (strip_top in ("*", top)) and all(len(p) > 1 or k == "dir" for _, p, k in raw)
    members: list[Member] = []
    symlinks = {parts[1:] if strip else parts for _, parts, kind in raw if kind == "symlink"}
    files: set[tuple[str, ...]] = set()
    dirs: set[tuple[str, ...]] = set()
    for info, parts, kind in raw:
        if strip:
            parts = parts[1:]
            if not parts:
                continue
        for i in range(1, len(parts)):
            if parts[:i] in symlinks:
                raise DataError(
                    f"{archive}: refused: member {info.filename!r} lies under a symlink; nothing was extracted"
                )
            dirs.add(parts[:i])
        link = None
        if kind == "symlink":
            link = zf.read(info).decode("utf-8", "replace")
            if _link_escapes(parts, link, symlinks):
                raise DataError(
                    f"{archive}: refused: symlink {info.filename!r} -> {link!r} points outside the extraction folder"
                    "; nothing was extracted"
                )
        if kind == "dir":
            dirs.add(parts)
        else:
            files.add(parts)
        members.append(Member(info, PurePosixPath(*parts), kind, link))
    clash = files & dirs
    if clash:
        name = "/".join(sorted(clash)[0])
        raise DataError(f"{archive}: refused: {name!r} is both a file and a folder in the archive")
    return members


def open_zip(archive: str | os.PathLike) -> zipfile.ZipFile:
    """Open a zip, turning a missing, truncated or non-zip file into a one-line :class:`DataError`."""
    archive = Path(archive)
    if archive.is_dir():
        raise DataError(f"{archive}: is a folder, expected a zip archive")
    if not archive.is_file():
        raise DataError(f"{archive}: archive not found")
    try:
        return zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise CorruptArchiveError(f"{archive}: not a zip archive, or truncated ({exc})") from None
    except OSError as exc:
        raise DataError(f"{archive}: cannot read ({exc.strerror or exc})") from None


def _copy_stream(src: IO[bytes], dst: IO[bytes], progress: Progress) -> None:
    """Copy an archive member to its file in chunks, reporting bytes as they go."""
    while True:
        block = src.read(CHUNK_SIZE)
        if not block:
            return
        dst.write(block)
        progress.advance(len(block))


def _check_space(archive: Path, folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise DataError(
            f"{archive}: extracting needs {needed / 1e9:.2f} GB but only {free / 1e9:.2f} GB are free in {folder}"
        )


def _extract_member(zf: zipfile.ZipFile, archive: Path, m: Member, out: Path, progress: Progress) -> None:
    target = out.joinpath(*m.target.parts)
    if m.kind == "dir":
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if m.kind == "symlink":
        os.symlink(m.link, target)
        return
    with zf.open(m.info) as src, open(target, "wb") as dst:
        _copy_stream(src, dst, progress)


@contextlib.contextmanager
def extracted_zip(
    archive: str | os.PathLike,
    beside: str | os.PathLike,
    *,
    strip_top: str | None = None,
    progress: Progress | None = None,
) -> Iterator[Path]:
    """Extract ``archive`` into a temp folder inside ``beside``; yield it, then delete what is left.

    The caller validates the temp folder and moves what it wants out of it (:func:`merge_tree`);
    on any error nothing outside the temp folder has been touched.
    """
    archive = Path(archive)
    progress = ensure_progress(progress)
    beside = Path(beside)
    try:
        beside.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a file where the folder should be
        raise DataError(
            f"{beside}: cannot create the folder to extract {archive.name} in ({exc.strerror or exc})"
        ) from None
    with open_zip(archive) as zf:
        members = plan_members(zf, archive, strip_top=strip_top)
        total = sum(m.info.file_size for m in members if m.kind == "file")
        _check_space(archive, beside, total)
        sweep_temps(beside)  # extraction folders of a killed run
        try:
            tmp = make_temp_dir(beside, f"{archive.stem}-extracting")
        except OSError as exc:  # e.g. an unwritable folder
            raise DataError(f"{beside}: cannot extract {archive.name} here ({exc.strerror or exc})") from None
        _give_default_mode(tmp, directory=True)  # it may be renamed onto the destination as is
        try:
            progress.start(f"extract {archive.name}", total=total)
            for m in members:
                try:
                    _extract_member(zf, archive, m, tmp, progress)
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    raise CorruptArchiveError(
                        f"{archive}: corrupt member {m.info.filename!r} ({exc}); nothing was extracted"
                    ) from None
                except (NotImplementedError, RuntimeError) as exc:
                    raise DataError(f"{archive}: cannot extract member {m.info.filename!r} ({exc})") from None
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise DataError(
                            f"{archive}: disk full while extracting {m.info.filename!r} into {beside}; nothing was extracted"
                        ) from None
                    raise DataError(
                        f"{archive}: cannot extract {m.info.filename!r} ({exc.strerror or exc})"
                    ) from None
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _merge_conflict(src: Path, dest: Path) -> Path | None:
    """The first path where a folder in ``src`` would land on a file in ``dest`` or vice versa."""
    if not dest.exists() and not dest.is_symlink():
        return None
    src_dir = src.is_dir() and not src.is_symlink()
    dest_dir = dest.is_dir() and not dest.is_symlink()
    if src_dir != dest_dir:
        return dest
    if src_dir:
        for child in src.iterdir():
            hit = _merge_conflict(child, dest / child.name)
            if hit is not None:
                return hit
    return None


def _merge_move(src: Path, dest: Path) -> None:
    if src.is_dir() and not src.is_symlink() and dest.is_dir():
        for child in sorted(src.iterdir()):
            _merge_move(child, dest / child.name)
        return
    os.replace(src, dest)


def merge_tree(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Move the contents of ``src`` into ``dest`` (same file system): folders merge, files replace.

    A missing ``dest`` is created by one rename. Clashes (a file where a folder exists, or the
    reverse) are found before anything moves and raise :class:`DataError`.
    """
    src, dest = Path(src), Path(dest)
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        return
    check_mergeable(src, dest)
    _merge_move(src, dest)


def check_mergeable(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Raise a one-line DataError where :func:`merge_tree` would put a folder on a file or the reverse."""
    hit = _merge_conflict(Path(src), Path(dest))
    if hit is not None:
        kind = "folder" if hit.is_dir() else "file"
        raise DataError(f"{hit}: a {kind} is in the way of the extracted archive; move it away and retry")


def safe_extract_zip(
    archive: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    strip_top: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Extract ``archive`` into ``dest`` all-or-nothing (merging into an existing ``dest``)."""
    dest = Path(dest)
    with extracted_zip(archive, dest.parent, strip_top=strip_top, progress=progress) as tmp:
        merge_tree(tmp, dest)
    return dest


TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def is_tar_name(archive: str | os.PathLike) -> bool:
    """Whether the file name says tar (``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``)."""
    return Path(archive).name.lower().endswith(TAR_SUFFIXES)


def _plan_tar(tf, archive: Path) -> list[tuple[object, tuple[str, ...]]]:
    """Every member of a tar with its safe target parts; links, devices and file/folder clashes
    refuse the whole archive (the benchmarks' tars hold files and folders only)."""
    planned, files, dirs = [], set(), set()
    for info in tf.getmembers():
        parts = _clean_parts(archive, info.name)
        if not (info.isfile() or info.isdir()):
            what = "a link" if info.issym() or info.islnk() else "not a regular file or folder"
            raise DataError(f"{archive}: refused: member {info.name!r} is {what}; nothing was extracted")
        if not parts or parts[0] == "__MACOSX":
            continue
        for i in range(1, len(parts)):
            dirs.add(parts[:i])
        (dirs if info.isdir() else files).add(parts)
        planned.append((info, parts))
    clash = files & dirs
    if clash:
        raise DataError(f"{archive}: refused: {'/'.join(sorted(clash)[0])!r} is both a file and a folder in the archive")
    return planned


@contextlib.contextmanager
def extracted_tar(archive: str | os.PathLike, beside: str | os.PathLike, *, progress: Progress | None = None) -> Iterator[Path]:
    """:func:`extracted_zip` for a tar archive (any compression tarfile reads): every member name
    checked before a byte is written, files only, into a temp folder inside ``beside``, deleted after."""
    import tarfile

    archive, beside = Path(archive), Path(beside)
    progress = ensure_progress(progress)
    if not archive.is_file():
        raise DataError(f"{archive}: {'is a folder, expected a tar archive' if archive.is_dir() else 'archive not found'}")
    try:
        beside.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{beside}: cannot create the folder to extract {archive.name} in ({exc.strerror or exc})") from None
    corrupt = (tarfile.TarError, EOFError, zlib.error, OSError)
    try:
        tf = tarfile.open(archive)
        planned = _plan_tar(tf, archive)
    except DataError:
        raise
    except corrupt as exc:
        raise CorruptArchiveError(f"{archive}: not a tar archive, or truncated ({exc})") from None
    with tf:
        total = sum(info.size for info, _ in planned if info.isfile())
        _check_space(archive, beside, total)
        sweep_temps(beside)
        try:
            tmp = make_temp_dir(beside, f"{archive.name.split('.')[0]}-extracting")
        except OSError as exc:
            raise DataError(f"{beside}: cannot extract {archive.name} here ({exc.strerror or exc})") from None
        _give_default_mode(tmp, directory=True)
        try:
            progress.start(f"extract {archive.name}", total=total)
            for info, parts in planned:
                target = tmp.joinpath(*parts)
                try:
                    if info.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tf.extractfile(info)
                    with src, open(target, "wb") as dst:
                        _copy_stream(src, dst, progress)
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise DataError(f"{archive}: disk full while extracting {info.name!r} into {beside}; nothing was extracted") from None
                    if exc.errno is None:  # a read error of the archive itself
                        raise CorruptArchiveError(f"{archive}: corrupt member {info.name!r} ({exc}); nothing was extracted") from None
                    raise DataError(f"{archive}: cannot extract {info.name!r} ({exc.strerror or exc})") from None
                except (tarfile.TarError, EOFError, zlib.error) as exc:
                    raise CorruptArchiveError(f"{archive}: corrupt member {info.name!r} ({exc}); nothing was extracted") from None
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def extracted_archive(archive: str | os.PathLike, beside: str | os.PathLike, *, progress: Progress | None = None):
    """:func:`extracted_tar` for tar names (:func:`is_tar_name`), else :func:`extracted_zip`."""
    if is_tar_name(archive):
        return extracted_tar(archive, beside, progress=progress)
    return extracted_zip(archive, beside, progress=progress)
