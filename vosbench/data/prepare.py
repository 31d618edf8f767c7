"""`prepare davis2017`: download (or take) an official archive, extract it safely, validate, describe.

The official archives each unzip to a ``DAVIS/`` root; that folder is stripped so their contents
land directly in ``root``. Several archives (trainval, test-dev, test-challenge) merge into one root;
a sequence an archive brings replaces the root's copy whole (:func:`replace_sequences`), and the
manifest is checked against the tree afterwards.
An archive is fully validated in its temp folder before anything is moved into ``root``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
import shutil
from pathlib import Path

from vosbench.data.archive import CorruptArchiveError, check_mergeable, extracted_zip, merge_tree
from vosbench.data.davis import RESOLUTIONS, DavisDataset, build_manifest, list_splits, write_manifest
from vosbench.data.download import davis_archive, download, url_filename, verify_file
from vosbench.data.frames import list_frame_files
from vosbench.errors import DataError
from vosbench.fsutil import make_temp_dir, sweep_temps
from vosbench.progress import Progress, ensure_progress

log = logging.getLogger(__name__)

# Which ImageSets/2017 split files each official archive brings.
ARCHIVE_SPLITS: dict[str, tuple[str, ...]] = {
    "trainval": ("train", "val"),
    "test-dev": ("test-dev",),
    "test-challenge": ("test-challenge",),
}
MANIFEST_NAME = "manifest.json"


def relabel_problem(problem: str, tmp: Path, source: Path) -> str:
    """Name a file in an extraction temp folder by its archive and member path instead."""
    return problem.replace(f"{tmp}{os.sep}", f"{source}:")


def fetch_archive(
    url: str,
    download_dir: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    progress: Progress | None = None,
    retries: int = 5,
    backoff: float = 2.0,
) -> Path:
    """Download ``url`` into ``download_dir`` (resuming a partial download) and return the file."""
    return download(
        url,
        download_dir / url_filename(url),
        expected_size=size,
        sha256=sha256,
        md5=md5,
        progress=progress,
        retries=retries,
        backoff=backoff,
    )


def _check_davis_tree(
    tmp: Path, source: Path, splits: tuple[str, ...], resolution: str, progress: Progress
) -> None:
    """Validate an extracted DAVIS archive (every frame and mask decoded); raise on the first problem."""
    images = tmp / "JPEGImages"
    if not (images / resolution).is_dir():
        found = sorted(p.name for p in images.iterdir() if p.is_dir()) if images.is_dir() else []
        top = sorted(p.name for p in tmp.iterdir())[:6]
        hint = (
            f" (it has {', '.join(found)})"
            if found
            else f" (is it a DAVIS-2017 archive? its top level holds: {', '.join(top) or 'nothing'})"
        )
        raise DataError(f"{source}: no JPEGImages/{resolution} folder{hint}")
    listed: set[str] = set()
    for split in splits:
        split_file = tmp / "ImageSets" / "2017" / f"{split}.txt"
        if not split_file.is_file():
            raise DataError(
                f"{source}: ImageSets/2017/{split}.txt missing; the archive does not define split {split!r}"
            )
        ds = DavisDataset(tmp, split, resolution)
        try:
            listed.update(ds.sequence_names)
            problems = ds.validate(full=True, progress=progress)
        except DataError as exc:
            raise DataError(relabel_problem(str(exc), tmp, source)) from None
        if problems:
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            raise DataError(relabel_problem(problems[0], tmp, source) + more)
    unlisted = sorted(p.name for p in (images / resolution).iterdir() if p.is_dir() and p.name not in listed)
    if unlisted:
        log.warning(
            "%s: %d sequences are in no split file (%s)", source, len(unlisted), ", ".join(unlisted[:5])
        )


def _read_old_manifest(root: Path) -> dict:
    try:
        old = json.loads((root / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return old if isinstance(old, dict) else {}


def read_manifest_sources(root: Path) -> list[dict]:
    sources = _read_old_manifest(root).get("sources")
    return list(sources) if isinstance(sources, list) else []


def archive_plan(root: str | os.PathLike, archive, what: str) -> tuple[Path, list[Path], list[dict]]:
    """(root, the archives, the manifest sources the archives do not replace) for a ``prepare`` of
    ``what`` archives; a DataError when none is given or ``root`` is a file."""
    root = Path(root)
    archives = [Path(archive)] if isinstance(archive, (str, os.PathLike)) else [Path(a) for a in archive]
    if not archives:
        raise DataError(f"no {what} archive given")
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: exists and is not a folder")
    return root, archives, [s for s in read_manifest_sources(root) if s.get("archive") not in {a.name for a in archives}]


def check_split(validate, tmp: Path, archive: Path) -> None:
    """Run ``validate()`` (a list of problems) on an extracted split; the first problem, named by the
    archive member, as a DataError (with how many more there are)."""
    try:
        problems = validate()
    except DataError as exc:
        problems = [str(exc)]
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise DataError(relabel_problem(problems[0], tmp, archive) + more)


def manifest_resolutions(root: Path, current: dict) -> dict[str, dict]:
    """Per-resolution sections (``splits``, ``sequences``) of ``root``'s manifest, ``current``'s
    resolution replaced: preparing 480p and then Full-Resolution into one root keeps both."""
    old = _read_old_manifest(root)
    sections = dict(old.get("resolutions") or {})
    if not sections and old.get("resolution") in RESOLUTIONS:  # a manifest from before sections
        sections[old["resolution"]] = {"splits": old.get("splits", {}), "sequences": old.get("sequences", {})}
    sections[current["resolution"]] = {"splits": current["splits"], "sequences": current["sequences"]}
    return {r: sections[r] for r in RESOLUTIONS if r in sections}


def splits_at_resolution(root: Path, resolution: str) -> list[str]:
    """The split files of ``root`` whose sequences all have frames at ``resolution``."""
    keep = []
    for split in list_splits(root):
        names = DavisDataset(root, split, resolution).sequence_names
        if all((root / "JPEGImages" / resolution / n).is_dir() for n in names):
            keep.append(split)
    return keep


# the per-sequence folders of a DAVIS-layout root: <kind>/<resolution>/<seq>
SEQUENCE_KINDS = ("JPEGImages", "Annotations", "Depth")


def archive_sequences(tree: Path, resolution: str) -> dict[str, tuple[list[str], list[str]]]:
    """Sequence -> (frame names, annotation names) of an extracted DAVIS tree at ``resolution``."""
    images = tree / "JPEGImages" / resolution
    out: dict[str, tuple[list[str], list[str]]] = {}
    if not images.is_dir():
        return out
    for seq in sorted(p.name for p in images.iterdir() if p.is_dir() and not p.name.startswith(".")):
        out[seq] = ([p.name for p in list_frame_files(images / seq)],
                    [p.name for p in list_frame_files(tree / "Annotations" / resolution / seq, (".png",))])
    return out


def replace_sequences(tree: Path, root: Path, resolution: str) -> None:
    """Move an extracted, validated DAVIS ``tree`` into ``root``: every sequence the tree brings
    (``resolution=""``: a split folder of the YouTube-VOS/MOSE layout, ``<kind>/<seq>``)
    replaces root's folders of that sequence whole (its frames, annotations and depth maps, which
    were computed from the old frames), never file by file; everything else merges.

    The old folders are first moved into a temp folder in ``root`` (one rename each), then the new
    ones are moved in, then the old ones deleted; an error in between moves the old ones back. A
    kill in between leaves the sequence absent, never mixed (``sweep_temps`` removes the temp).
    """
    if not root.exists():
        merge_tree(tree, root)  # one rename
        return
    check_mergeable(tree, root)  # before anything moves
    sweep_temps(root)
    replaced: list[tuple[str, Path, Path]] = []
    trash = make_temp_dir(root, "replaced-sequences")
    try:
        for seq in archive_sequences(tree, resolution):
            for kind in SEQUENCE_KINDS:
                old = root / kind / resolution / seq
                if old.is_dir() and not old.is_symlink():
                    aside = trash / f"{kind}-{seq}"
                    os.replace(old, aside)
                    replaced.append((kind, old, aside))
        merge_tree(tree, root)
    except BaseException:
        for _, old, aside in reversed(replaced):
            if not old.exists():
                os.replace(aside, old)
        raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)
    depth = sorted({old.name for kind, old, _ in replaced if kind == "Depth"})
    if depth:
        log.warning("%s: removed the depth maps of %d replaced sequence(s) (%s), made from their old frames; "
                    "run `vosbench prepare depth` again", root, len(depth), ", ".join(depth[:5]))


def check_manifest_against(manifest: dict, brought: dict[str, tuple[list[str], list[str]]], root: Path) -> None:
    """Raise a one-line DataError where ``manifest`` (built from ``root``'s tree) disagrees with the
    frames and annotations the archive brought: the check that nothing stale survived a prepare."""
    resolution = manifest["resolution"]
    for seq, (frames, annotations) in brought.items():
        entry = manifest["sequences"].get(seq)
        tree = ([p.name for p in list_frame_files(root / "JPEGImages" / resolution / seq)],
                [p.name for p in list_frame_files(root / "Annotations" / resolution / seq, (".png",))])
        if entry is None:
            continue  # in no split file (the archive check warned)
        if tree != (frames, annotations) or entry["frames"] != len(frames) or entry["annotated_frames"] != len(annotations):
            raise DataError(f"{root / 'JPEGImages' / resolution / seq}: after preparing, the tree ({len(tree[0])} frames, "
                            f"{len(tree[1])} annotations) or the manifest ({entry['frames']}, {entry['annotated_frames']}) "
                            f"disagrees with the archive ({len(frames)}, {len(annotations)})")


def prepare_davis2017(
    root: str | os.PathLike,
    split: str = "trainval",
    resolution: str = "480p",
    archive: str | os.PathLike | None = None,
    url: str | None = None,
    progress: Progress | None = None,
    *,
    download_dir: str | os.PathLike | None = None,
    sha256: str | None = None,
    retries: int = 5,
    backoff: float = 2.0,
) -> dict:
    """Prepare one DAVIS-2017 archive into ``root`` and return the manifest written to ``root/manifest.json``.

    Without ``archive`` the official archive for ``split``/``resolution`` (or ``url``) is downloaded
    into ``download_dir`` (default: the folder holding ``root``) and kept there, so a re-run or an
    interrupted download resumes. The archive is extracted beside ``root``, validated (split files,
    frames, first-frame annotations, frame/annotation counts, mask sizes, every image decoded) and
    only then merged into ``root``.
    """
    root = Path(root)
    progress = ensure_progress(progress)
    if split not in ARCHIVE_SPLITS:
        raise DataError(f"unknown DAVIS-2017 split {split!r}; expected one of {', '.join(ARCHIVE_SPLITS)}")
    if resolution not in RESOLUTIONS:
        raise DataError(f"unknown resolution {resolution!r}; expected one of {', '.join(RESOLUTIONS)}")
    if archive is not None and url is not None:
        raise DataError("give either an archive or a URL, not both")
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: exists and is not a folder")
    if archive is None:
        spec = davis_archive(split, resolution)
        source_url = url or spec.url
        official = url is None
        archive = fetch_archive(
            source_url,
            Path(download_dir) if download_dir else root.absolute().parent,
            sha256=sha256 or (spec.sha256 if official else None),
            md5=spec.md5 if official else None,
            size=spec.size if official else None,
            progress=progress,
            retries=retries,
            backoff=backoff,
        )
        origin = source_url
    else:
        archive = Path(archive)
        origin = str(archive)
        if sha256 is not None and archive.is_file():
            verify_file(archive, sha256=sha256)
    try:
        with extracted_zip(archive, root.absolute().parent, strip_top="DAVIS", progress=progress) as tmp:
            _check_davis_tree(tmp, archive, ARCHIVE_SPLITS[split], resolution, progress)
            brought = archive_sequences(tmp, resolution)
            replace_sequences(tmp, root, resolution)
    except CorruptArchiveError as exc:
        if origin == str(archive):
            raise
        raise CorruptArchiveError(f"{exc}; delete it to download it again") from None
    sources = [s for s in read_manifest_sources(root) if s.get("archive") != Path(archive).name]
    sources.append(
        {"split": split, "resolution": resolution, "archive": Path(archive).name, "origin": origin}
    )
    progress.start("write manifest", total=1)
    manifest = build_manifest(
        root, resolution, splits=splits_at_resolution(root, resolution), extra={"sources": sources}
    )
    # top level: the resolution just prepared; "resolutions": every resolution prepared into root
    manifest["resolutions"] = manifest_resolutions(root, manifest)
    check_manifest_against(manifest, brought, root)
    write_manifest(root / MANIFEST_NAME, manifest)
    progress.advance()
    return manifest


def manifest_summary(manifest: dict) -> list[dict]:
    """One row per split: sequences, frames, annotated frames, objects (for the CLI's table)."""
    rows = []
    seqs = manifest.get("sequences", {})
    for split, names in manifest.get("splits", {}).items():
        info = [seqs[n] for n in names if n in seqs]
        rows.append(
            {
                "split": split,
                "sequences": len(names),
                "frames": sum(i.get("frames", 0) for i in info),
                "annotated": sum(i.get("annotated_frames", 0) for i in info),
                "objects": sum(len(i.get("object_ids", [])) for i in info),
            }
        )
    return rows


def add_split(manifest: dict, split: str, dataset, more: Callable[..., dict] | None = None) -> None:
    """Record ``dataset``'s videos under ``manifest["splits"][split]`` and each one's frames,
    annotated frames, size and objects (and ``more(sequence)``) under ``manifest["sequences"]``:
    the manifest entry of the split layouts (YouTube-VOS, MOSEv2)."""
    manifest["splits"][split] = dataset.sequence_names
    for seq in dataset:
        h, w = seq.size
        manifest["sequences"][seq.name] = {
            "split": split, "frames": seq.num_frames, "annotated_frames": len(seq.annotation_paths),
            "height": h, "width": w, "object_ids": seq.object_ids, **(more(seq) if more is not None else {}),
        }


def prepare_split_archives(
    root: Path,
    archives: list[Path],
    progress: Progress,
    *,
    what: str,
    extract: Callable,
    find_splits: Callable[[Path], dict[str, Path]],
    validate_split: Callable[[Path, str, Path], list[str]],
    build: Callable[..., dict],
    merge_split: Callable[[Path, str, Path], None] | None = None,
    missing: str = "no train/, valid/ or test/ folder inside",
) -> dict:
    """The split-archive flow of YouTube-VOS, MOSEv2 and SA-V: extract every archive beside ``root``
    (``extract(archive, beside, progress=...)``), find its split folders (``find_splits``), validate
    each (``validate_split(archive, split, folder)``: problems, or a DataError), and only when every
    archive passed merge the splits into ``root`` (``merge_split(folder, split, root)``; by default
    ``folder`` becomes ``root/<split>``) and write the manifest (``build(root, extra=...)``) with the
    archives as its sources. One bad archive changes nothing; its first problem names the archive
    member."""
    root, archives, sources = archive_plan(root, archives, what)
    validated: list[dict[str, Path]] = []
    with contextlib.ExitStack() as stack:
        for arc in archives:
            tmp = stack.enter_context(extract(arc, root.absolute().parent, progress=progress))
            found = find_splits(tmp)
            if not found:
                raise DataError(f"{arc}: {missing}; is it a {what} archive?")
            for split, folder in found.items():
                check_split(lambda: validate_split(arc, split, folder), tmp, arc)
            validated.append(found)
        for arc, found in zip(archives, validated):
            for split, folder in found.items():
                if merge_split is None:  # each video the archive brings replaces the old one whole
                    replace_sequences(folder, root / split, "")
                else:
                    merge_split(folder, split, root)
            sources.append({"archive": arc.name, "splits": sorted(found)})
    progress.start("write manifest", total=1)
    manifest = build(root, extra={"sources": sources})
    write_manifest(root / MANIFEST_NAME, manifest)
    progress.advance()
    return manifest
