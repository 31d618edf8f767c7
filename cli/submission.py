"""`vosbench package-submission`: validate a results folder and zip it for the DAVIS, YouTube-VOS, MOSE or LVOS server."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from vosbench_cli.common import console, err_console, fail, handle_errors, progress_bar
from vosbench.submission import FORMATS, InvalidResultsError, Problem, package_submission, validate_results

SubmissionFormat = Enum("SubmissionFormat", {n.replace("-", "_"): n for n in FORMATS}, type=str)  # type: ignore[misc]


def _show(problem: Problem, base: Path) -> str:
    try:
        where = problem.path.relative_to(base)
    except ValueError:
        where = problem.path
    return f"{where}: {problem.message}"


def print_problems(problems: list[Problem], base: Path) -> None:
    """One line per problem: errors in red, warnings in yellow (on stderr)."""
    for p in problems:
        style, label = ("red", "error") if p.severity == "error" else ("yellow", "warning")
        err_console.print(
            f"[{style}]{label}:[/] {escape(_show(p, base))}", highlight=False, soft_wrap=True, markup=True
        )


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def package_submission_cmd(
    results: Annotated[
        Path, typer.Option("--results", help="Folder of predicted masks: RESULTS/<seq>/00000.png.")
    ],
    split: Annotated[str, typer.Option(
        "--split", help="Split the results are for: test-dev, test-challenge or val (davis); valid or test (the others).")],
    data: Annotated[
        Path, typer.Option("--data", help="Dataset root of that benchmark (frames and first annotations).")
    ],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Zip file to write.")] = None,
    resolution: Annotated[str, typer.Option("--resolution", help="480p or Full-Resolution.")] = "480p",
    check: Annotated[
        bool,
        typer.Option("--check", help="Only validate and list the problems; write nothing (no -o needed)."),
    ] = False,
    format: Annotated[SubmissionFormat, typer.Option(
        "--format", help="Server layout: davis (<seq>/<frame>.png at the zip root) or youtube-vos, mose, lvos, mosev2 "
                         "(Annotations/<video>/<frame>.png), or sav (<video>/<obj>/<frame>.png, one binary mask per object).")] = SubmissionFormat.davis,  # type: ignore[attr-defined]
    allow_mixed: Annotated[bool, typer.Option(
        "--allow-mixed", help="Accept a results folder whose sequences' provenance.json name different runs "
                              "(e.g. half old after a failed --overwrite), with a warning.")] = False,
) -> None:
    """Validate RESULTS against a benchmark split and write the zip its challenge server expects.

    Lists every problem (missing sequences or frames, wrong sizes, RGB or 16-bit PNGs, truncated
    files, ids that are not objects of the video, void 255 included, stray files) and writes no
    zip while any remains. Masks are read by their indices (any palette, grey or 1-bit PNGs) with
    the same reader and id check as `vosbench evaluate`, and re-encoded with the DAVIS palette.

    The zip is deterministic (same masks, same bytes) and written atomically.

    Example: vosbench package-submission --results runs/infer --split val --data data/small -o val.zip
    """
    if out is None and not check:
        raise fail("give the zip to write with -o/--out FILE.zip (or --check to only validate)")
    with handle_errors():
        try:
            with progress_bar(transient=True) as progress:
                if check:
                    report = validate_results(results, data, split, resolution, progress, format=format.value,
                                              allow_mixed=allow_mixed)
                    if not report.ok:
                        raise InvalidResultsError(report)
                else:
                    summary = package_submission(results, data, split, out, resolution, progress, format=format.value,
                                                 allow_mixed=allow_mixed)
        except InvalidResultsError as exc:
            report = exc.report
            print_problems(report.problems, results)
            n = len(report.errors)
            err_console.print(
                f"[bold red]error:[/] {n} problem{'s' * (n != 1)} in {results} "
                f"({report.sequences} sequences, {report.frames} frames expected for {split})"
                f"{'' if check else '; no zip written'}",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(code=1) from None
    if check:
        print_problems(report.problems, results)
        console.print(
            f"[green]ok:[/] {results} is a complete {split} submission "
            f"({report.sequences} sequences, {report.frames} frames, {len(report.warnings)} warnings)",
            highlight=False,
            soft_wrap=True,
        )
        return
    print_problems(list(summary.warnings), results)
    table = Table(title=f"submission ({summary.split})", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("zip", str(summary.path))
    table.add_row("sequences", str(summary.sequences))
    table.add_row("frames", str(summary.frames))
    table.add_row("size", f"{_human_size(summary.size_bytes)} ({summary.size_bytes} bytes)")
    table.add_row("sha256", summary.sha256)
    table.add_row("warnings", str(len(summary.warnings)))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("package-submission")(package_submission_cmd)
