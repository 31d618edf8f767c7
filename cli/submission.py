"""`vosbench package-submission`: validate a results folder and zip it for the DAVIS server."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import console, err_console, fail, handle_errors, progress_bar
from vosbench.submission import InvalidResultsError, Problem, package_submission, validate_results


class SubmissionSplit(str, Enum):
    test_dev = "test-dev"
    test_challenge = "test-challenge"
    val = "val"


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
    split: Annotated[SubmissionSplit, typer.Option("--split", help="Split the results are for.")],
    data: Annotated[
        Path, typer.Option("--data", help="DAVIS-layout dataset root (frames and first-frame masks).")
    ],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Zip file to write.")] = None,
    resolution: Annotated[str, typer.Option("--resolution", help="480p or Full-Resolution.")] = "480p",
    check: Annotated[
        bool,
        typer.Option("--check", help="Only validate and list the problems; write nothing (no -o needed)."),
    ] = False,
) -> None:
    """Validate RESULTS against a DAVIS split and write the zip the challenge server expects.

    Lists every problem (missing sequences or frames, wrong sizes, RGB PNGs, non-DAVIS palettes,
    truncated files, stray files) and writes no zip while any remains; extra object ids warn.

    The zip is deterministic (same masks, same bytes) and written atomically.

    Example: vosbench package-submission --results runs/infer --split val --data data/small -o val.zip
    """
    if out is None and not check:
        raise fail("give the zip to write with -o/--out FILE.zip (or --check to only validate)")
    with handle_errors():
        try:
            with progress_bar(transient=True) as progress:
                if check:
                    report = validate_results(results, data, split.value, resolution, progress)
                    if not report.ok:
                        raise InvalidResultsError(report)
                else:
                    summary = package_submission(results, data, split.value, out, resolution, progress)
        except InvalidResultsError as exc:
            report = exc.report
            print_problems(report.problems, results)
            n = len(report.errors)
            err_console.print(
                f"[bold red]error:[/] {n} problem{'s' * (n != 1)} in {results} "
                f"({report.sequences} sequences, {report.frames} frames expected for {split.value})"
                f"{'' if check else '; no zip written'}",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(code=1) from None
    if check:
        print_problems(report.problems, results)
        console.print(
            f"[green]ok:[/] {results} is a complete {split.value} submission "
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
