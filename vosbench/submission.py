"""Validate a results folder against a DAVIS split and package it as a challenge-server zip.

A results folder holds one folder per sequence with one palette PNG per frame, named after the
frame's JPEG (``<results>/<seq>/00000.png``). :func:`validate_results` reports *every* problem it
finds (errors and warnings), and :func:`package_submission` writes the zip only when there are no
errors: per-sequence folders at the zip root, the DAVIS palette, deterministic bytes, atomically.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vosbench.data.davis import DAVIS_SPLITS, DavisDataset, VideoSequence
from vosbench.data.imageio import VOID_ID, encode_mask_png, has_davis_palette, image_size
from vosbench.errors import DataError
from vosbench.fsutil import atomic_path, sha256_file, sweep_temps
from vosbench.metrics.report import global_csv_name, per_sequence_csv_name
from vosbench.progress import Progress, ensure_progress
from vosbench.provenance import PROVENANCE_FILE

SUBMISSION_SPLITS = ("test-dev", "test-challenge", "val")
# `vosbench evaluate` writes its CSVs into the results folder; they are not stray, and not zipped.
EVALUATION_OUTPUTS = frozenset(
    name for split in DAVIS_SPLITS for name in (global_csv_name(split), per_sequence_csv_name(split))
)
# `vosbench infer` writes <seq>/provenance.json (and with --save-probs <seq>/probs/): expected, not zipped.
INFER_SEQUENCE_OUTPUTS = frozenset({"probs"})  # folders
INFER_SEQUENCE_FILES = frozenset({PROVENANCE_FILE})

# Fixed zip metadata so that the same masks always give the same archive bytes.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
ZIP_FILE_MODE = 0o100644  # regular file, rw-r--r--
ZIP_DIR_MODE = 0o040755  # directory, rwxr-xr-x
ZIP_COMPRESSION = zipfile.ZIP_STORED  # PNGs are already deflated; stored is byte-stable everywhere


class InvalidResultsError(DataError):
    """Validation found errors; ``report`` holds every problem so a caller can list them."""

    def __init__(self, report: ValidationReport):
        n, w = len(report.errors), len(report.warnings)
        extra = f" and {w} warning{'s' * (w != 1)}" if w else ""
        super().__init__(
            f"{report.results_dir}: {n} problem{'s' * (n != 1)}{extra} found "
            f"against split {report.split!r}; no zip written"
        )
        self.report = report


@dataclass(frozen=True)
class Problem:
    """One finding of the validation, tied to the file or folder it concerns."""

    path: Path
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class ValidationReport:
    """Everything :func:`validate_results` found; ``ok`` when there are no errors."""

    results_dir: Path
    split: str
    sequences: int = 0  # sequences of the split
    frames: int = 0  # frames expected over the split
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, path: Path, message: str) -> None:
        self.problems.append(Problem(path, message, "error"))

    def warn(self, path: Path, message: str) -> None:
        self.problems.append(Problem(path, message, "warning"))


@dataclass(frozen=True)
class SubmissionSummary:
    """What :func:`package_submission` wrote."""

    path: Path
    split: str
    sequences: int
    frames: int
    size_bytes: int
    sha256: str
    warnings: tuple[Problem, ...] = ()


def _decode_png(path: Path) -> tuple[Image.Image | None, str | None]:
    """Fully decode ``path``; return (image, None) or (None, why it is unusable)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read ({exc.strerror or exc})"
    try:
        img = Image.open(io.BytesIO(data))
        fmt = img.format
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return None, f"corrupt or truncated PNG ({exc})"
    if fmt != "PNG":
        return None, f"not a PNG file (contains {fmt or 'unknown'} data)"
    return img, None


def _check_mask(path: Path, size: tuple[int, int], report: ValidationReport) -> set[int] | None:
    """Check one result PNG; return the object ids it contains, or None when it is unusable."""
    img, why = _decode_png(path)
    if img is None:
        report.error(path, why or "unreadable")
        return None
    usable = True
    if img.mode != "P":
        kind = f"{img.mode} ({len(img.getbands())} channels)" if img.mode in ("RGB", "RGBA") else img.mode
        report.error(path, f"mask is {kind}, expected a palette (P) PNG with the DAVIS palette")
        usable = False
    elif not has_davis_palette(path):
        report.error(
            path, "palette PNG without the DAVIS palette (colours would not match the ids on the server)"
        )
    h, w = img.size[1], img.size[0]
    if (h, w) != size:
        report.error(path, f"mask size {w}x{h} differs from the frame size {size[1]}x{size[0]}")
        usable = False
    if not usable:
        return None
    counts = np.bincount(np.asarray(img, dtype=np.uint8).ravel(), minlength=256)  # ~10x faster than unique
    return {int(i) for i in np.flatnonzero(counts)}


def _report_stray(report: ValidationReport, entry: Path, why: str) -> None:
    """A stray entry is an error; a hidden one (``.DS_Store``, a temp folder) only a warning: not zipped."""
    what = "folder" if entry.is_dir() else "file"
    if entry.name.startswith("."):
        report.warn(entry, f"hidden {what} ignored (not zipped)")
    else:
        report.error(entry, f"stray {what} ({why})")


def _check_sequence(seq: VideoSequence, seq_dir: Path, report: ValidationReport, progress: Progress) -> None:
    expected = {f"{p.stem}.png": p for p in seq.frame_paths}
    for entry in sorted(seq_dir.iterdir()):
        if entry.name not in expected and not (entry.is_dir() and entry.name in INFER_SEQUENCE_OUTPUTS) \
                and not (entry.is_file() and entry.name in INFER_SEQUENCE_FILES):
            _report_stray(report, entry, f"no frame of {seq.name!r} is named {Path(entry.name).stem!r}")
    try:
        allowed = set(seq.object_ids) | {0}
    except DataError as exc:
        report.error(seq_dir, f"cannot read the first-frame annotation: {exc}")
        allowed = None
    extra: dict[int, list[str]] = {}
    for name, frame_path in expected.items():
        path = seq_dir / name
        progress.advance()
        if not path.is_file():
            report.error(path, f"missing mask for frame {frame_path.name}")
            continue
        try:
            size = image_size(frame_path)
        except DataError as exc:
            report.error(frame_path, f"cannot read the frame: {exc}")
            continue
        ids = _check_mask(path, size, report)
        if ids is None or allowed is None:
            continue
        for i in sorted(ids - allowed):
            extra.setdefault(i, []).append(Path(name).stem)
    for i, frames in sorted(extra.items()):
        shown = ", ".join(frames[:5]) + (f", ... ({len(frames)} frames)" if len(frames) > 5 else "")
        what = "void id 255" if i == VOID_ID else f"object id {i}"
        report.warn(seq_dir, f"{what} is not in the first-frame ids {sorted(allowed - {0})} (frames {shown})")


def validate_results(
    results_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    split: str,
    resolution: str = "480p",
    progress: Progress | None = None,
) -> ValidationReport:
    """Check a results folder against ``split`` of the dataset at ``data_root``.

    Collects every problem rather than stopping at the first: missing sequences and frames, masks
    that are not palette PNGs with the DAVIS palette, of the wrong size, truncated or unreadable,
    stray files and folders (errors), and object ids absent from the first frame (warnings).
    Raises :class:`DataError` only when the results folder or the dataset split cannot be read.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise DataError(f"{results_dir}: results folder not found")
    dataset = DavisDataset(data_root, split, resolution)
    progress = ensure_progress(progress)
    report = ValidationReport(results_dir=results_dir, split=split)
    names = dataset.sequence_names
    report.sequences = len(names)
    sequences: list[tuple[str, VideoSequence | None]] = []
    for name in names:
        try:
            sequences.append((name, dataset.sequence(name)))
        except DataError as exc:
            report.error(dataset.image_dir / name, f"cannot list the frames of the dataset: {exc}")
            sequences.append((name, None))
    report.frames = sum(s.num_frames for _, s in sequences if s is not None)

    listed = set(names)
    for entry in sorted(results_dir.iterdir()):
        if entry.name not in listed and not (entry.is_file() and entry.name in EVALUATION_OUTPUTS):
            _report_stray(report, entry, f"not a sequence of split {split!r}")
    progress.start(f"validating {results_dir.name}", total=report.frames)
    for name, seq in sequences:
        seq_dir = results_dir / name
        if seq_dir.exists() and not seq_dir.is_dir():
            report.error(seq_dir, "is a file; expected a folder of masks for this sequence")
            if seq is not None:
                progress.advance(seq.num_frames)
            continue
        if not seq_dir.is_dir():
            if seq is not None:
                progress.advance(seq.num_frames)
                report.error(seq_dir, f"missing sequence ({seq.num_frames} frames expected)")
            else:
                report.error(seq_dir, "missing sequence")
            continue
        if seq is not None:
            _check_sequence(seq, seq_dir, report, progress)
    return report


def _zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
    info.create_system = 3  # Unix, so the permission bits below are honoured
    info.external_attr = mode << 16
    if name.endswith("/"):
        info.external_attr |= 0x10  # MS-DOS directory flag
    info.compress_type = ZIP_COMPRESSION
    return info


def _write_zip(
    path: Path, results_dir: Path, dataset: DavisDataset, progress: Progress, total: int, label: str = ""
) -> int:
    """Write the archive to ``path``; return the number of masks written."""
    written = 0
    progress.start(f"writing {label or path.name}", total=total)
    with zipfile.ZipFile(path, "w", compression=ZIP_COMPRESSION) as zf:
        for name in sorted(dataset.sequence_names):
            seq = dataset.sequence(name)
            zf.writestr(_zip_info(f"{name}/", ZIP_DIR_MODE), b"")
            for frame_path in sorted(seq.frame_paths):
                src = results_dir / name / f"{frame_path.stem}.png"
                img, why = _decode_png(src)
                if img is None:  # changed since validation
                    raise DataError(f"{src}: {why}")
                # Re-encode: canonical bytes and the exact DAVIS palette whatever wrote the file.
                data = encode_mask_png(np.asarray(img, dtype=np.uint8))
                zf.writestr(_zip_info(f"{name}/{frame_path.stem}.png", ZIP_FILE_MODE), data)
                written += 1
                progress.advance()
    return written


def package_submission(
    results_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    split: str,
    out_zip: str | os.PathLike,
    resolution: str = "480p",
    progress: Progress | None = None,
) -> SubmissionSummary:
    """Validate ``results_dir`` and write it as a DAVIS challenge zip at ``out_zip``.

    Raises :class:`InvalidResultsError` (a :class:`DataError` naming the number of problems and
    carrying the full report) if validation finds any error, or :class:`DataError` if ``out_zip``
    cannot be written; in every failure case nothing is left at ``out_zip`` (an existing file there
    is kept unchanged). Warnings do not stop packaging; they come back in the summary.
    """
    results_dir, out_zip = Path(results_dir), Path(out_zip)
    if split not in SUBMISSION_SPLITS:
        raise DataError(
            f"split {split!r} cannot be submitted; expected one of {', '.join(SUBMISSION_SPLITS)}"
        )
    if out_zip.is_dir():
        raise DataError(f"{out_zip}: is a folder; give the path of the zip file to write")
    if results_dir.resolve() in out_zip.resolve().parents:
        raise DataError(f"{out_zip}: write the zip outside the results folder {results_dir}")
    blocker = next((p for p in out_zip.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise DataError(f"{out_zip}: cannot write the zip ({blocker} is a file, not a folder)")
    progress = ensure_progress(progress)
    report = validate_results(results_dir, data_root, split, resolution, progress)
    if not report.ok:
        raise InvalidResultsError(report)
    dataset = DavisDataset(data_root, split, resolution)
    sweep_temps(out_zip.parent)  # temp zips of a run killed while writing
    try:
        with atomic_path(out_zip) as tmp:
            frames = _write_zip(tmp, results_dir, dataset, progress, report.frames, out_zip.name)
            size = tmp.stat().st_size
            digest = sha256_file(tmp)
    except OSError as exc:
        raise DataError(f"{out_zip}: cannot write the zip ({exc.strerror or exc})") from None
    return SubmissionSummary(
        path=out_zip,
        split=split,
        sequences=report.sequences,
        frames=frames,
        size_bytes=size,
        sha256=digest,
        warnings=tuple(report.warnings),
    )
