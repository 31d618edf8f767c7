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

import os
from collections.abc import Sequence
from pathlib import Path

from vosbench.data.archive import extracted_archive, merge_tree
from vosbench.data.imageio import image_size
from vosbench.data.prepare import prepare_split_archives
from vosbench.data.sav import ANNOTATIONS_DIR, FRAMES_DIR, SavDataset
from vosbench.progress import Progress, ensure_progress

SPLIT_FILE_PREFIX = "sav_"


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


def _merge_split(folder: Path, split: str, root: Path) -> None:
    """An SA-V split's frames, annotations and split list into ``root`` (one root holds val and test)."""
    for sub in (FRAMES_DIR, ANNOTATIONS_DIR):
        if (folder / sub).is_dir():
            merge_tree(folder / sub, root / sub)
    merge_tree(folder / f"{SPLIT_FILE_PREFIX}{split}.txt", root / f"{SPLIT_FILE_PREFIX}{split}.txt")


def prepare_sav(root: str | Path, archives: Sequence[str | Path], progress: Progress | None = None, *, full: bool = True) -> dict:
    """Extract, validate and merge SA-V archives (tar or zip) into ``root``; write and return its manifest."""
    progress = ensure_progress(progress)
    archives = [Path(archives)] if isinstance(archives, (str, os.PathLike)) else [Path(a) for a in archives]
    return prepare_split_archives(
        Path(root), archives, progress, what="SA-V", extract=extracted_archive, find_splits=_find_splits,
        validate_split=lambda arc, split, folder: SavDataset(folder, split).validate(full=full, progress=progress),
        build=build_sav_manifest, merge_split=_merge_split, missing="no sav_<split>.txt inside")
