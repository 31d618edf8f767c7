"""``package-submission --format sav``: validate SA-V per-object results and zip them.

Results (as ``vosbench infer`` writes them on an SA-V root) are ``<results>/<video>/<obj>/
<frame>.png``, one binary mask per object and frame. Validation, against the split's
``Annotations_6fps``: every video of ``sav_<split>.txt`` is there; every object folder of the
ground truth is there and no other (an object folder the ground truth lacks is an error); every
annotated frame of each object has a mask; each mask is an 8-bit palette, grey or 1-bit PNG of
the frame's size holding 0 and at most one other value; a PNG named after no frame of the video,
and any other file, is stray. ``provenance.json`` and ``probs/`` (infer's) are expected and not
zipped; masks of frames that are not annotated (infer writes every 24 fps frame) are valid but
not zipped. The zip holds ``<video>/<obj>/<frame>.png`` at its root for the annotated frames,
re-encoded as 0/1 DAVIS-palette PNGs (the layout SAM 2's SA-V evaluator reads as ``--pred_root``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from vosbench.data.imageio import encode_mask_png, image_size
from vosbench.data.sav import object_folder_problem, read_object_mask
from vosbench.errors import DataError
from vosbench.metrics.report import global_csv_name, per_sequence_csv_name
from vosbench.progress import Progress


def _expected(bench, name: str) -> tuple[dict[str, tuple[Path, ...]], set[str]]:
    """(object folder -> its annotation PNGs, the video's frame stems) of one video of the split."""
    dataset = bench.dataset
    objects = dataset.object_annotations(name)
    frames = {p.stem for p in dataset.frame_paths(name)}
    if not frames:
        raise DataError(f"{dataset.image_dir / name}: no frames for video {name!r}")
    problem = dataset.check_frames(name, objects)
    if problem:
        raise DataError(problem)
    return objects, frames


def validate_sav(results_dir: Path, bench, report, progress: Progress, *, stray, allowed_files: frozenset[str],
                 infer_outputs: dict[str, bool]) -> None:
    """Add every problem of the per-object results ``results_dir`` to ``report`` (see the module docstring).

    ``stray(report, entry, why)`` reports an unexpected entry; ``allowed_files`` may sit beside
    the videos (evaluate's tables), ``infer_outputs`` beside the object folders (name -> is a folder)."""
    names = bench.sequence_names
    report.sequences = len(names)
    videos = {}
    for name in names:
        try:
            videos[name] = _expected(bench, name)
        except DataError as exc:
            report.error(bench.annotation_dir / name, f"cannot read the video in the dataset: {exc}")
    report.frames = sum(len(p) for objects, _ in videos.values() for p in objects.values())
    listed = set(names)
    # evaluate's tables for this split, and the results.csv SAM 2's evaluator writes into its --pred_root
    allowed_files = allowed_files | {global_csv_name(bench.split), per_sequence_csv_name(bench.split), "results.csv"}
    for entry in sorted(results_dir.iterdir()):
        if entry.name not in listed and not (entry.is_file() and entry.name in allowed_files):
            stray(report, entry, f"not a video of split {bench.split!r}")
    progress.start(f"validating {results_dir.name}", total=report.frames)
    for name in names:
        video_dir = results_dir / name
        objects, frames = videos.get(name, ({}, set()))
        expected = sum(len(p) for p in objects.values())
        if not video_dir.is_dir():
            report.error(video_dir, "is a file; expected a folder of object folders" if video_dir.exists()
                         else f"missing video ({len(objects)} objects, {expected} masks expected)")
            progress.advance(expected)
            continue
        for entry in sorted(video_dir.iterdir()):
            if entry.name in objects or infer_outputs.get(entry.name) == entry.is_dir():
                continue
            if entry.is_dir() and not entry.name.startswith(".") and object_folder_problem(entry.name) is None:
                report.error(entry, f"object folder {entry.name} that the ground truth of {name!r} lacks "
                                    f"(objects: {', '.join(objects) or 'none'})")
            else:
                stray(report, entry, f"not an object folder of {name!r}")
        size = None
        for obj, paths in objects.items():
            obj_dir = video_dir / obj
            if not obj_dir.is_dir():
                report.error(obj_dir, f"missing object ({len(paths)} annotated frames expected)")
                progress.advance(len(paths))
                continue
            annotated = {p.stem for p in paths}
            for entry in sorted(obj_dir.iterdir()):
                if not (entry.is_file() and entry.suffix == ".png" and entry.stem in frames):
                    stray(report, entry, f"no frame of {name!r} is named {entry.stem!r}")
            for stem in sorted(annotated):
                progress.advance()
                path = obj_dir / f"{stem}.png"
                if not path.is_file():
                    report.error(path, f"missing mask for annotated frame {stem}")
                    continue
                try:
                    size = image_size(paths[0]) if size is None else size
                    mask = read_object_mask(path)
                except DataError as exc:
                    report.error(path, str(exc).removeprefix(f"{path}: "))
                    continue
                if mask.shape != size:
                    report.error(path, f"mask size {mask.shape[1]}x{mask.shape[0]} differs from the annotation size {size[1]}x{size[0]}")


def write_sav_zip(zf: zipfile.ZipFile, results_dir: Path, bench, zip_info, file_mode: int, dir_mode: int, progress: Progress) -> int:
    """Write the annotated frames of every object into ``zf``; return the number of masks."""
    written = 0
    for name in sorted(bench.sequence_names):
        objects, _ = _expected(bench, name)
        zf.writestr(zip_info(f"{name}/", dir_mode), b"")
        for obj, paths in sorted(objects.items()):
            zf.writestr(zip_info(f"{name}/{obj}/", dir_mode), b"")
            for stem in sorted(p.stem for p in paths):
                mask = read_object_mask(results_dir / name / obj / f"{stem}.png")  # changed since validation: its error
                zf.writestr(zip_info(f"{name}/{obj}/{stem}.png", file_mode), encode_mask_png(mask.view(np.uint8)))
                written += 1
                progress.advance()
    return written
