"""Static image + mask sets for pretraining (MSRA10K, PASCAL VOC, COCO), normalised to one layout.

::

    ROOT/images/<name>.jpg
    ROOT/masks/<name>.png      DAVIS-palette PNG: 0 background, 1..N instances, 255 void
    ROOT/manifest.json

``prepare_static`` extracts the archive beside ``ROOT``, converts every item, checks each image
decodes and each mask has its image's size, and only then renames the finished folder onto ``ROOT``
(an existing ``ROOT`` is replaced as a whole).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from vosbench.data.archive import extracted_zip
from vosbench.data.davis import write_manifest
from vosbench.data.imageio import VOID_ID, _open_verified, encode_mask_png, read_frame, read_mask, write_frame
from vosbench.data.names import check_name, json_line
from vosbench.data.prepare import MANIFEST_NAME, relabel_problem
from vosbench.errors import DataError
from vosbench.fsutil import atomic_dir, sweep_temps
from vosbench.progress import Progress, ensure_progress

log = logging.getLogger(__name__)

STATIC_FORMATS = ("msra10k", "voc", "coco")
MAX_INSTANCES = 254  # ids 1..254; 255 is void


@dataclass(frozen=True)
class StaticItem:
    """One source image and how to build its instance mask."""

    name: str
    image: Path
    mask: Path | None = None  # msra10k / voc: the source mask file
    coco_image_id: int | None = None  # coco: the image id in ``coco_index``


def binary_to_ids(path: Path) -> np.ndarray:
    """An MSRA10K-style binary mask (0/255 grey, 1-bit or 0/1 palette) as ids 0/1."""
    img = _open_verified(path)
    if img.mode == "P":
        return (np.asarray(img) > 0).astype(np.uint8)
    arr = np.asarray(img.convert("L"))
    return (arr > 127).astype(np.uint8)


def relabel_instances(mask: np.ndarray) -> np.ndarray:
    """Renumber instance ids to 1..N in increasing order of their old ids; 0 and void are kept."""
    out = np.zeros_like(mask)
    out[mask == VOID_ID] = VOID_ID
    ids = [int(i) for i in np.unique(mask) if i not in (0, VOID_ID)]
    for new, old in enumerate(ids, start=1):
        out[mask == old] = new
    return out


def _by_stem(paths: list[Path], archive: Path, tmp: Path, kind: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in paths:
        if p.stem in out:
            a, b = (relabel_problem(str(x), tmp, archive) for x in (out[p.stem], p))
            raise DataError(f"{archive}: two {kind} named {p.stem!r} ({a} and {b})")
        out[p.stem] = p
    return out


def _files(tmp: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(
        p
        for p in tmp.rglob("*")
        if p.suffix.lower() in suffixes
        and p.is_file()
        and not any(part.startswith(".") or part == "__MACOSX" for part in p.relative_to(tmp).parts)
    )


def find_msra10k(tmp: Path, archive: Path) -> list[StaticItem]:
    """Pair every ``x.jpg`` with its ``x.png`` binary mask, wherever they sit in the archive."""
    images = _by_stem(_files(tmp, (".jpg", ".jpeg")), archive, tmp, "images")
    masks = _by_stem(_files(tmp, (".png",)), archive, tmp, "masks")
    unpaired = sorted(set(images) - set(masks))
    if unpaired:
        log.warning(
            "%s: %d images have no mask and are skipped (%s)", archive, len(unpaired), ", ".join(unpaired[:5])
        )
    orphans = sorted(set(masks) - set(images))
    if orphans:
        raise DataError(f"{relabel_problem(str(masks[orphans[0]]), tmp, archive)}: mask without an image")
    return [StaticItem(s, images[s], masks[s]) for s in sorted(set(images) & set(masks))]


def _one_dir(tmp: Path, archive: Path, name: str) -> Path:
    hits = sorted(p for p in tmp.rglob(name) if p.is_dir())
    if not hits:
        raise DataError(
            f"{archive}: no {name}/ folder; is it a {'PASCAL VOC' if name != 'annotations' else 'COCO'} archive?"
        )
    if len(hits) > 1:
        raise DataError(
            f"{archive}: several {name}/ folders ({', '.join(relabel_problem(str(h), tmp, archive) for h in hits[:3])})"
        )
    return hits[0]


def find_voc(tmp: Path, archive: Path) -> list[StaticItem]:
    """Every ``SegmentationObject/x.png`` with its ``JPEGImages/x.jpg``."""
    seg = _one_dir(tmp, archive, "SegmentationObject")
    jpeg_dir = seg.parent / "JPEGImages"
    if not jpeg_dir.is_dir():
        raise DataError(
            f"{relabel_problem(str(jpeg_dir), tmp, archive)}: folder missing beside SegmentationObject/"
        )
    items = []
    for m in sorted(seg.glob("*.png")):
        img = jpeg_dir / f"{m.stem}.jpg"
        if not img.is_file():
            raise DataError(f"{relabel_problem(str(img), tmp, archive)}: image missing for {m.name}")
        items.append(StaticItem(m.stem, img, m))
    return items


class CocoIndex:
    """COCO instance annotations (pycocotools), one or more ``instances_*.json`` files."""

    def __init__(self, tmp: Path, archive: Path):
        try:
            from pycocotools.coco import COCO
        except ImportError:  # pragma: no cover - a declared dependency
            raise DataError("reading COCO needs pycocotools (pip install pycocotools)") from None
        self.sets: list[tuple[object, Path]] = []
        jsons = sorted(p for p in tmp.rglob("instances_*.json") if p.is_file())
        if not jsons:
            raise DataError(f"{archive}: no annotations/instances_*.json; is it a COCO archive?")
        images = {p.name: p for p in _files(tmp, (".jpg", ".jpeg", ".png"))}
        self.images = images
        for js in jsons:
            where = relabel_problem(str(js), tmp, archive)
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
                    coco = COCO(str(js))
            except (ValueError, KeyError, TypeError, AssertionError, OSError) as exc:
                raise DataError(f"{where}: not a COCO instances file ({type(exc).__name__}: {exc})") from None
            self.sets.append((coco, js))

    def items(self, archive: Path, tmp: Path) -> list[tuple[StaticItem, object]]:
        out = []
        for coco, js in self.sets:
            for img_id in sorted(coco.getImgIds()):
                info = coco.imgs[img_id]
                if not coco.getAnnIds(imgIds=img_id, iscrowd=False):
                    continue
                path = self.images.get(Path(info["file_name"]).name)
                if path is None:
                    raise DataError(
                        f"{relabel_problem(str(js), tmp, archive)}: image {info['file_name']} is not in the archive"
                    )
                out.append((StaticItem(Path(info["file_name"]).stem, path, coco_image_id=img_id), coco))
        return out


def coco_instance_mask(coco, image_id: int) -> np.ndarray:
    """Paint an image's instances as ids 1..N (largest first, so small objects stay visible); crowds are void."""
    info = coco.imgs[image_id]
    h, w = int(info["height"]), int(info["width"])
    anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
    mask = np.zeros((h, w), np.uint8)
    instances = sorted((a for a in anns if not a.get("iscrowd")), key=lambda a: -float(a.get("area", 0)))
    if len(instances) > MAX_INSTANCES:
        log.warning(
            "image %s has %d instances; keeping the %d largest",
            info["file_name"],
            len(instances),
            MAX_INSTANCES,
        )
        instances = instances[:MAX_INSTANCES]
    with warnings.catch_warnings():  # pycocotools' numpy-2 copy-keyword DeprecationWarning
        warnings.simplefilter("ignore", DeprecationWarning)
        for a in anns:
            if a.get("iscrowd"):
                mask[coco.annToMask(a) > 0] = VOID_ID
        for k, a in enumerate(instances, start=1):
            mask[coco.annToMask(a) > 0] = k
    return relabel_instances(mask)


def _build_mask(item: StaticItem, fmt: str, coco) -> np.ndarray:
    if fmt == "msra10k":
        return binary_to_ids(item.mask)
    if fmt == "voc":
        return relabel_instances(read_mask(item.mask))
    return coco_instance_mask(coco, item.coco_image_id)


def _convert(
    items: list[tuple[StaticItem, object]], fmt: str, out: Path, archive: Path, tmp: Path, progress: Progress
) -> dict:
    (out / "images").mkdir()
    (out / "masks").mkdir()
    entries: dict[str, dict] = {}
    problems: list[str] = []
    progress.start(f"convert {fmt}", total=len(items))
    for item, coco in items:
        progress.advance()
        try:
            frame = read_frame(item.image)
            mask = _build_mask(item, fmt, coco)
        except DataError as exc:
            problems.append(relabel_problem(str(exc), tmp, archive))
            continue
        if mask.shape != frame.shape[:2]:
            src = relabel_problem(str(item.mask or item.image), tmp, archive)
            problems.append(
                f"{src}: mask size {mask.shape[1]}x{mask.shape[0]} differs from image size "
                f"{frame.shape[1]}x{frame.shape[0]}"
            )
            continue
        ids = [int(i) for i in np.unique(mask) if i not in (0, VOID_ID)]
        if not ids:
            log.warning(
                "%s: no object in the mask; skipped",
                relabel_problem(str(item.mask or item.image), tmp, archive),
            )
            continue
        if item.image.suffix.lower() in (".jpg", ".jpeg"):
            shutil.copyfile(item.image, out / "images" / f"{item.name}.jpg")  # verified above; keep bytes
        else:
            write_frame(out / "images" / f"{item.name}.jpg", frame, quality=95)
        (out / "masks" / f"{item.name}.png").write_bytes(encode_mask_png(mask))
        entries[item.name] = {"height": int(frame.shape[0]), "width": int(frame.shape[1]), "object_ids": ids}
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise DataError(problems[0] + more)
    if not entries:
        raise DataError(f"{archive}: no image with a non-empty mask found for format {fmt}")
    return entries


def prepare_static(
    root: str | os.PathLike, archive: str | os.PathLike, format: str, progress: Progress | None = None
) -> dict:
    """Normalise a MSRA10K / VOC / COCO archive into ``root/images`` + ``root/masks``; return the manifest."""
    root = Path(root)
    archive = Path(archive)
    progress = ensure_progress(progress)
    if format not in STATIC_FORMATS:
        raise DataError(f"unknown static format {format!r}; expected one of {', '.join(STATIC_FORMATS)}")
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: exists and is not a folder")
    sweep_temps(root.absolute().parent)  # an extraction or output folder of a run that was killed
    with extracted_zip(archive, root.absolute().parent, progress=progress) as tmp:
        if format == "msra10k":
            items = [(i, None) for i in find_msra10k(tmp, archive)]
        elif format == "voc":
            items = [(i, None) for i in find_voc(tmp, archive)]
        else:
            items = CocoIndex(tmp, archive).items(archive, tmp)
        names = [i.name for i, _ in items]
        if len(set(names)) != len(names):
            dup = sorted(n for n in set(names) if names.count(n) > 1)[0]
            raise DataError(f"{archive}: two images named {dup!r}")
        try:
            with atomic_dir(root) as out:
                entries = _convert(items, format, out, archive, tmp, progress)
                manifest = {
                    "dataset": "static",
                    "format": format,
                    "source": archive.name,
                    "images": len(entries),
                    "objects": sum(len(e["object_ids"]) for e in entries.values()),
                    "items": entries,
                }
                write_manifest(out / MANIFEST_NAME, manifest)
        except OSError as exc:  # disk full, permissions: atomic_dir has removed the partial folder
            why = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
            raise DataError(f"{archive}: cannot write {root} ({why}); nothing was written") from None
    return manifest


class StaticImageSet:
    """A prepared static set: ``root/images/<name>.jpg`` with ``root/masks/<name>.png``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not (self.root / "masks").is_dir():
            raise DataError(
                f"{self.root}: not a prepared static set (no masks/ folder); run `vosbench prepare static`"
            )

    @cached_property
    def names(self) -> list[str]:
        manifest = self.root / MANIFEST_NAME
        if manifest.is_file():
            try:
                text = manifest.read_text(encoding="utf-8-sig")
                items = sorted(json.loads(text)["items"])
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{manifest}: unreadable manifest ({exc})") from None
            return [check_name(str(n), f"{manifest}:{json_line(text, str(n))}", "item name") for n in items]
        return sorted(p.stem for p in (self.root / "masks").glob("*.png"))

    def __len__(self) -> int:
        return len(self.names)

    def image_path(self, i: int) -> Path:
        return self.root / "images" / f"{self.names[i]}.jpg"

    def mask_path(self, i: int) -> Path:
        return self.root / "masks" / f"{self.names[i]}.png"

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as ``H,W,3`` uint8 RGB."""
        return read_frame(self.image_path(i))

    def mask(self, i: int) -> np.ndarray:
        """Instance mask ``i`` as ``H,W`` uint8 (0 background, 1..N, 255 void)."""
        return read_mask(self.mask_path(i))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(len(self)):
            yield self.image(i), self.mask(i)


def static_summary(manifest: dict) -> list[dict]:
    """One row for the CLI's table."""
    return [{"format": manifest["format"], "images": manifest["images"], "objects": manifest["objects"]}]
