"""`prepare sav`: extract SA-V val/test archives safely, validate them, merge them into one root.

SA-V's val and test sets come as ``sav_val.tar`` and ``sav_test.tar`` (each unpacks to
``sav_<split>/{sav_<split>.txt, JPEGImages_24fps/, Annotations_6fps/}``); a zip of the same tree
is taken too. Each archive is extracted into a temp folder beside ROOT (zips by
:func:`vosbench.data.archive.extracted_zip`; tars member by member after every member name has
been checked: no absolute paths, no ``..``, no links, devices or FIFOs, only files and folders, so
nothing can land outside the temp folder), validated there (:meth:`SavDataset.validate`; with
``full`` every mask is decoded: binary, the frame's size), and only when every archive given is
valid is anything moved into ROOT: ``ROOT/sav_<split>.txt``, ``ROOT/JPEGImages_24fps/``,
``ROOT/Annotations_6fps/`` (val and test videos have distinct ids, so one root holds both).
ROOT/manifest.json describes the splits.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from vosbench.data.archive import _check_space, _clean_parts, extracted_zip, merge_tree
from vosbench.data.davis import write_manifest
from vosbench.data.imageio import image_size
from vosbench.data.prepare import MANIFEST_NAME, archive_plan, check_split
from vosbench.data.sav import ANNOTATIONS_DIR, FRAMES_DIR, SavDataset
from vosbench.errors import DataError
from vosbench.fsutil import _give_default_mode, make_temp_dir, sweep_temps
from vosbench.progress import Progress, ensure_progress

SPLIT_FILE_PREFIX = "sav_"


def _tar_members(tf: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    members = []
    for m in tf.getmembers():
        _clean_parts(archive, m.name)  # absolute paths, "..", drive letters, bad names: refused
        if not (m.isfile() or m.isdir()):
            kind = "link" if (m.issym() or m.islnk()) else "special file"
            raise DataError(f"{archive}: refused: member {m.name!r} is a {kind}; SA-V archives hold only files and folders; nothing was extracted")
        members.append(m)
    return members


@contextlib.contextmanager
def extracted_tar(archive: Path, beside: Path, progress: Progress) -> Iterator[Path]:
    """Extract a (possibly compressed) tar into a temp folder inside ``beside``; yield it, then delete what is left."""
    if not archive.is_file():
        raise DataError(f"{archive}: archive not found")
    try:
        tf = tarfile.open(archive)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{archive}: not a readable tar archive ({exc})") from None
    with tf:
        try:
            members = _tar_members(tf, archive)
        except (tarfile.TarError, EOFError, OSError) as exc:  # truncated or corrupt headers
            raise DataError(f"{archive}: corrupt or truncated tar archive ({exc}); nothing was extracted") from None
        total = sum(m.size for m in members if m.isfile())
        beside.mkdir(parents=True, exist_ok=True)
        _check_space(archive, beside, total)
        sweep_temps(beside)
        tmp = make_temp_dir(beside, f"{archive.name}-extracting")
        _give_default_mode(tmp, directory=True)
        try:
            progress.start(f"extract {archive.name}", total=len(members))
            for m in members:
                try:
                    tf.extract(m, tmp, set_attrs=False, filter="data")
                except (tarfile.TarError, EOFError) as exc:
                    raise DataError(f"{archive}: corrupt member {m.name!r} ({exc}); nothing was extracted") from None
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise DataError(f"{archive}: disk full while extracting {m.name!r} into {beside}; nothing was extracted") from None
                    raise DataError(f"{archive}: cannot extract {m.name!r} ({exc.strerror or exc})") from None
                progress.advance()
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _extracted(archive: Path, beside: Path, progress: Progress):
    if archive.suffix.lower() == ".zip":
        return extracted_zip(archive, beside, progress=progress)
    return extracted_tar(archive, beside, progress)


def _find_splits(tmp: Path) -> dict[str, Path]:
    """split -> the folder holding ``sav_<split>.txt``, at the top of the archive or one folder down."""
    found = {}
    for folder in (tmp, *sorted(p for p in tmp.iterdir() if p.is_dir())):
        for txt in sorted(folder.glob(f"{SPLIT_FILE_PREFIX}*.txt")):
            found[txt.stem[len(SPLIT_FILE_PREFIX):]] = folder
    return found


def build_sav_manifest(root: Path, extra: dict | None = None) -> dict:
    """Every split of ``root`` (its ``sav_*.txt``): videos, frames, annotated frames, sizes, objects."""
    manifest: dict = {"dataset": "sav", "splits": {}, "sequences": {}}
    for txt in sorted(root.glob(f"{SPLIT_FILE_PREFIX}*.txt")):
        ds = SavDataset(root, txt.stem[len(SPLIT_FILE_PREFIX):])
        manifest["splits"][ds.split] = ds.sequence_names
        for name in ds.sequence_names:
            frames = ds.frame_paths(name)
            objects = ds.object_annotations(name)
            h, w = image_size(frames[0])
            manifest["sequences"][name] = {
                "frames": len(frames),
                "annotated_frames": len({p.stem for paths in objects.values() for p in paths}),
                "height": h,
                "width": w,
                "object_ids": list(objects),
            }
    if extra:
        manifest.update(extra)
    return manifest


def prepare_sav(root: str | Path, archives: Sequence[str | Path], progress: Progress | None = None, *, full: bool = True) -> dict:
    """Extract, validate and merge SA-V archives into ``root``; write and return its manifest."""
    root, archives, sources = archive_plan(root, archives, "SA-V")
    progress = ensure_progress(progress)
    validated: list[dict[str, Path]] = []
    with contextlib.ExitStack() as stack:
        for arc in archives:
            tmp = stack.enter_context(_extracted(arc, root.absolute().parent, progress))
            found = _find_splits(tmp)
            if not found:
                raise DataError(f"{arc}: no sav_<split>.txt inside; is it an SA-V val or test archive?")
            for split, folder in found.items():
                check_split(lambda: SavDataset(folder, split).validate(full=full, progress=progress), tmp, arc)
            validated.append(found)
        for arc, found in zip(archives, validated):
            for split, folder in found.items():
                for sub in (FRAMES_DIR, ANNOTATIONS_DIR):
                    if (folder / sub).is_dir():
                        merge_tree(folder / sub, root / sub)
                merge_tree(folder / f"{SPLIT_FILE_PREFIX}{split}.txt", root / f"{SPLIT_FILE_PREFIX}{split}.txt")
            sources.append({"archive": arc.name, "splits": sorted(found)})
    progress.start("write manifest", total=1)
    manifest = build_sav_manifest(root, extra={"sources": sources})
    write_manifest(root / MANIFEST_NAME, manifest)
    progress.advance()
    return manifest
