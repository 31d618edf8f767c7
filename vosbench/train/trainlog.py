"""The loss log: ``log.csv`` appended row by row, and TensorBoard scalars when it is installed."""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path
from typing import Any

from vosbench.errors import DataError
from vosbench.fsutil import atomic_write_text

log = logging.getLogger(__name__)

BASE_COLUMNS = ("step", "epoch", "loss", "lr", "max_skip", "own_prior", "seconds")


class LossLog:
    """Per-step losses; :meth:`flush` appends the rows logged since the last flush to the CSV.

    The file is written whole only when a run starts (header), on resume (rows after the resumed
    step are cut) and if a row brings a new column; otherwise a flush costs its own rows, so a
    150-epoch run does not rewrite a growing file every ``log_every`` steps.
    """

    def __init__(self, path: str | os.PathLike, *, tensorboard_dir: str | os.PathLike | None = None):
        self.path = Path(path)
        self.pending: list[dict[str, Any]] = []  # rows not yet in the file
        self.last_row: dict[str, Any] | None = None
        self._columns: list[str] | None = None  # the file's header (None: not written by this run yet)
        self._tb = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("TensorBoard is not installed (pip install 'vosbench[tensorboard]'); logging to CSV only")
            else:
                self._tb = SummaryWriter(str(tensorboard_dir))

    def load_until(self, step: int) -> None:
        """Resume: keep the existing rows up to ``step`` and cut later ones (they are redone)."""
        if not self.path.is_file():
            return
        rows = [r for r in read_log(self.path) if int(r["step"]) <= step]
        self._rewrite(rows)
        if rows:
            self.last_row = rows[-1]

    def append(self, row: dict[str, Any]) -> None:
        self.pending.append(row)
        self.last_row = row
        if self._tb is not None:
            for k, v in row.items():
                if k not in ("step", "epoch") and isinstance(v, (int, float)):
                    self._tb.add_scalar(f"train/{k}", v, row["step"])

    def flush(self) -> None:
        rows, self.pending = self.pending, []
        if self._columns is None or any(k not in self._columns for r in rows for k in r):
            previous = read_log(self.path) if self._columns is not None else []
            self._rewrite(previous + rows)
        elif rows:
            with open(self.path, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=self._columns, lineterminator="\n").writerows(rows)
                fh.flush()
                os.fsync(fh.fileno())
        if self._tb is not None:
            self._tb.flush()

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        """Write the whole file (atomically) with a header covering every row's columns."""
        cols = list(BASE_COLUMNS)
        for r in rows:
            cols.extend(k for k in r if k not in cols)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, buf.getvalue())
        self._columns = cols

    def close(self) -> None:
        self.flush()
        if self._tb is not None:
            self._tb.close()


def _parse(v: str) -> Any:
    if v == "":
        return ""
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            continue
    return v


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a ``log.csv`` with numbers parsed; a damaged file is a one-line :class:`DataError`
    naming its line (a row with missing or extra fields, a step that is not a whole number)."""
    rows: list[dict[str, Any]] = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is not None and "step" not in reader.fieldnames:
                raise DataError(f"{path}:1: damaged training log (no 'step' column); move it away to resume")
            for row in reader:
                if None in row or None in row.values() or not isinstance(_parse(row["step"]), int):
                    raise DataError(f"{path}:{reader.line_num}: damaged training log (a row with missing or extra "
                                    "fields, or a step that is not a whole number); repair or remove that line to resume")
                rows.append({k: _parse(v) for k, v in row.items()})
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: damaged training log ({exc}); move it away to resume") from None
    return rows
