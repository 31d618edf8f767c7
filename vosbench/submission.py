"""Validate a results folder against a benchmark split and package it as that server's zip.

A results folder holds one folder per video with one mask PNG per frame, named after the frame's
JPEG (``<results>/<video>/00000.png``), as ``vosbench infer`` writes it. Masks are read by their
indices (palette, grey or 1-bit PNGs; any palette) with the reader and the id validation that
``vosbench evaluate`` uses (:mod:`vosbench.metrics.validation`). :func:`validate_results` reports
*every* problem it finds (errors and warnings), and :func:`package_submission` writes the zip only
when there are no errors, re-encoded with the DAVIS palette, deterministic bytes, atomically.

Formats (:data:`FORMATS`): ``davis`` puts the video folders at the zip root (DAVIS-2017 splits
test-dev, test-challenge, val); ``youtube-vos``, ``mose``, ``lvos`` and ``mosev2`` put them under
``Annotations/`` (splits valid, test), one mask per frame of ``<split>/JPEGImages/<video>/`` from
the video's first annotated frame on (``mosev2``: every frame, ``meta.json``'s length, with only
its ``objects``). ``sav`` (SA-V val, test) validates and zips the per-object layout
``<video>/<obj>/<frame>.png`` (:mod:`vosbench.submission_sav`).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from vosbench.data.davis import DAVIS_SPLITS
from vosbench.data.imageio import encode_mask_png, image_size
from vosbench.errors import DataError
from vosbench.fsutil import atomic_path, sha256_file, sweep_temps
from vosbench.metrics.benchmarks import Benchmark, SubmissionVideo, open_benchmark
from vosbench.metrics.report import global_csv_name, per_sequence_csv_name
from vosbench.metrics.validation import read_prediction, size_problem
from vosbench.outlock import LOCK_FILE as OUT_LOCK_FILE
from vosbench.progress import Progress, ensure_progress
from vosbench.provenance import PROVENANCE_FILE, require_one_run


@dataclass(frozen=True)
class SubmissionFormat:
    """A server's zip layout: the splits it takes, the tasks whose data it reads, the folder in the zip."""

    name: str
    splits: tuple[str, ...]
    tasks: tuple[str, ...]
    prefix: str  # "" or "Annotations/"


FORMATS = {
    "davis": SubmissionFormat("davis", ("test-dev", "test-challenge", "val"), ("davis2017", "davis2016"), ""),
    "youtube-vos": SubmissionFormat("youtube-vos", ("valid", "test"), ("youtube-vos",), "Annotations/"),
    "mose": SubmissionFormat("mose", ("valid", "test"), ("mose",), "Annotations/"),
    "lvos": SubmissionFormat("lvos", ("valid", "test"), ("lvos",), "Annotations/"),
    "mosev2": SubmissionFormat("mosev2", ("valid", "test"), ("mosev2",), "Annotations/"),
    "sav": SubmissionFormat("sav", ("val", "test"), ("sav",), ""),  # <video>/<obj>/<frame>.png (vosbench.submission_sav)
}
SUBMISSION_SPLITS = FORMATS["davis"].splits
# `vosbench evaluate` writes its CSVs into the results folder; they are not stray, and not zipped.
EVALUATION_OUTPUTS = frozenset(
    name
    for split in (*DAVIS_SPLITS, "valid", "train")
    for name in (global_csv_name(split), per_sequence_csv_name(split))
)
# `vosbench infer` writes the file <seq>/provenance.json (and with --save-probs the folder <seq>/probs/):
# expected, not zipped. Name -> whether it is a folder.
INFER_SEQUENCE_OUTPUTS = {"probs": True, PROVENANCE_FILE: False}

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


def _check_mask(path: Path, size: tuple[int, int], video: SubmissionVideo, report: ValidationReport) -> None:
    """Check one result PNG with evaluate's reader and id validation; each problem is an error."""
    try:
        mask = read_prediction(path)
    except DataError as exc:
        report.error(path, _reason(str(exc), path))
        return
    problem = size_problem(mask, size, str(path), "the frame size")
    if problem:
        report.error(path, _reason(problem, path))
        return
    extra = video.objects.extra(mask)
    if extra:
        report.error(path, video.objects.reason(extra))


def _reason(message: str, path: Path) -> str:
    """A one-line DataError message without its leading ``<path>: ``."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _report_stray(report: ValidationReport, entry: Path, why: str) -> None:
    """A stray entry is an error; a hidden one (``.DS_Store``, a temp folder) only a warning: not zipped."""
    what = "folder" if entry.is_dir() else "file"
    if entry.name.startswith("."):
        report.warn(entry, f"hidden {what} ignored (not zipped)")
    else:
        report.error(entry, f"stray {what} ({why})")


def _check_sequence(video: SubmissionVideo, seq_dir: Path, report: ValidationReport, progress: Progress) -> None:
    expected = {f"{p.stem}.png": i for i, p in enumerate(video.frame_paths)}
    for entry in sorted(seq_dir.iterdir()):
        if entry.name not in expected and INFER_SEQUENCE_OUTPUTS.get(entry.name) != entry.is_dir():
            _report_stray(report, entry, f"no frame of {video.name!r} is named {Path(entry.name).stem!r}")
    size: tuple[int, int] | None = None
    for name, i in expected.items():
        path = seq_dir / name
        frame_path = video.frame_paths[i]
        if i >= video.required_from:
            progress.advance()
        if not path.is_file():
            if path.exists() or path.is_symlink():  # a FIFO, a device, a broken link: said, never read
                _check_mask(path, (0, 0), video, report)
            elif i >= video.required_from:
                report.error(path, f"missing mask for frame {frame_path.name}")
            continue
        try:
            size = image_size(frame_path) if size is None else size
        except DataError as exc:
            report.error(frame_path, f"cannot read the frame: {exc}")
            continue
        _check_mask(path, size, video, report)


def submission_benchmark(data_root: str | os.PathLike, split: str, resolution: str = "480p", format: str = "davis") -> Benchmark:
    """The benchmark split a ``format`` submission is validated against (refuses other splits and layouts)."""
    fmt = FORMATS.get(format)
    if fmt is None:
        raise DataError(f"unknown submission format {format!r}; expected one of {', '.join(FORMATS)}")
    if split not in fmt.splits:
        raise DataError(f"split {split!r} cannot be submitted in the {format} format; expected one of {', '.join(fmt.splits)}")
    bench = open_benchmark(data_root, split, resolution, "auto" if format == "davis" else fmt.tasks[0])
    if bench.task not in fmt.tasks:
        raise DataError(f"{data_root}: holds {bench.title} data, not a {format} split")
    return bench


def validate_results(
    results_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    split: str,
    resolution: str = "480p",
    progress: Progress | None = None,
    *,
    format: str = "davis",
    allow_mixed: bool = False,
) -> ValidationReport:
    """Check a results folder against ``split`` of the dataset at ``data_root``.

    Collects every problem rather than stopping at the first: missing videos and frames, masks
    that are not 8-bit palette/grey/1-bit PNGs, of the wrong size, truncated or unreadable, ids
    that are not objects of their video (void 255 included; the message ``evaluate`` gives),
    and stray files and folders (all errors). Raises :class:`DataError` only when the results
    folder or the dataset split cannot be read.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise DataError(f"{results_dir}: results folder not found")
    bench = submission_benchmark(data_root, split, resolution, format)
    require_one_run(results_dir, bench.sequence_names, allow_mixed)  # before any work: one line
    progress = ensure_progress(progress)
    report = ValidationReport(results_dir=results_dir, split=split)
    if bench.task == "sav":
        from vosbench.submission_sav import validate_sav

        validate_sav(results_dir, bench, report, progress, stray=_report_stray, allowed_files=EVALUATION_OUTPUTS,
                     infer_outputs=INFER_SEQUENCE_OUTPUTS)
        return report
    names = bench.sequence_names
    report.sequences = len(names)
    videos: list[tuple[str, SubmissionVideo | None]] = []
    for name in names:
        try:
            videos.append((name, bench.submission_video(name)))
        except DataError as exc:
            report.error(bench.image_dir / name, f"cannot read the video in the dataset: {exc}")
            videos.append((name, None))
    report.frames = sum(len(v.frame_paths) - v.required_from for _, v in videos if v is not None)

    listed = set(names)
    for entry in sorted(results_dir.iterdir()):
        if entry.name not in listed and not (entry.is_file() and entry.name in (*EVALUATION_OUTPUTS, OUT_LOCK_FILE)):
            _report_stray(report, entry, f"not a sequence of split {split!r}")
    progress.start(f"validating {results_dir.name}", total=report.frames)
    for name, video in videos:
        seq_dir = results_dir / name
        expected = 0 if video is None else len(video.frame_paths) - video.required_from
        if seq_dir.exists() and not seq_dir.is_dir():
            report.error(seq_dir, "is a file; expected a folder of masks for this sequence")
            progress.advance(expected)
            continue
        if not seq_dir.is_dir():
            progress.advance(expected)
            report.error(seq_dir, f"missing sequence ({expected} frames expected)" if video else "missing sequence")
            continue
        if video is not None:
            _check_sequence(video, seq_dir, report, progress)
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
    path: Path, results_dir: Path, videos: list[SubmissionVideo], prefix: str, progress: Progress, total: int, label: str = ""
) -> int:
    """Write the archive to ``path``; return the number of masks written."""
    written = 0
    progress.start(f"writing {label or path.name}", total=total)
    with zipfile.ZipFile(path, "w", compression=ZIP_COMPRESSION) as zf:
        if prefix:
            zf.writestr(_zip_info(prefix, ZIP_DIR_MODE), b"")
        for video in sorted(videos, key=lambda v: v.name):
            zf.writestr(_zip_info(f"{prefix}{video.name}/", ZIP_DIR_MODE), b"")
            for i, frame_path in enumerate(video.frame_paths):  # frame order (vosbench.data.frames)
                src = results_dir / video.name / f"{frame_path.stem}.png"
                if i < video.required_from and not src.is_file():
                    continue  # before the video's first annotation: optional
                mask = read_prediction(src)  # changed since validation: its one-line error
                # Re-encode: canonical bytes and the exact DAVIS palette whatever wrote the file.
                data = encode_mask_png(mask)
                zf.writestr(_zip_info(f"{prefix}{video.name}/{frame_path.stem}.png", ZIP_FILE_MODE), data)
                written += 1
                progress.advance()
    return written


def _write_sav(path: Path, results_dir: Path, bench: Benchmark, progress: Progress, total: int, label: str) -> int:
    from vosbench.submission_sav import write_sav_zip

    progress.start(f"writing {label}", total=total)
    with zipfile.ZipFile(path, "w", compression=ZIP_COMPRESSION) as zf:
        return write_sav_zip(zf, results_dir, bench, _zip_info, ZIP_FILE_MODE, ZIP_DIR_MODE, progress)


def package_submission(
    results_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    split: str,
    out_zip: str | os.PathLike,
    resolution: str = "480p",
    progress: Progress | None = None,
    *,
    format: str = "davis",
    allow_mixed: bool = False,
) -> SubmissionSummary:
    """Validate ``results_dir`` and write it as a ``format`` challenge zip at ``out_zip``.

    Raises :class:`InvalidResultsError` (a :class:`DataError` naming the number of problems and
    carrying the full report) if validation finds any error, or :class:`DataError` if ``out_zip``
    cannot be written; in every failure case nothing is left at ``out_zip`` (an existing file there
    is kept unchanged). Warnings do not stop packaging; they come back in the summary.
    """
    results_dir, out_zip = Path(results_dir), Path(out_zip)
    fmt = FORMATS.get(format)
    if fmt is not None and split not in fmt.splits:
        raise DataError(f"split {split!r} cannot be submitted in the {format} format; expected one of {', '.join(fmt.splits)}")
    if out_zip.is_dir():
        raise DataError(f"{out_zip}: is a folder; give the path of the zip file to write")
    if results_dir.resolve() in out_zip.resolve().parents:
        raise DataError(f"{out_zip}: write the zip outside the results folder {results_dir}")
    blocker = next((p for p in out_zip.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise DataError(f"{out_zip}: cannot write the zip ({blocker} is a file, not a folder)")
    progress = ensure_progress(progress)
    report = validate_results(results_dir, data_root, split, resolution, progress, format=format,
                              allow_mixed=allow_mixed)
    if not report.ok:
        raise InvalidResultsError(report)
    bench = submission_benchmark(data_root, split, resolution, format)
    videos = [] if bench.task == "sav" else [bench.submission_video(n) for n in bench.sequence_names]
    sweep_temps(out_zip.parent)  # temp zips of a run killed while writing
    try:
        with atomic_path(out_zip) as tmp:
            if bench.task == "sav":
                frames = _write_sav(tmp, results_dir, bench, progress, report.frames, out_zip.name)
            else:
                frames = _write_zip(tmp, results_dir, videos, FORMATS[format].prefix, progress, report.frames, out_zip.name)
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
