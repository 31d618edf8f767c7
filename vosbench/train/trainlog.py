"""The loss log: ``log.csv`` rewritten atomically, and TensorBoard scalars when it is installed."""

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
    """Rows of per-step losses; :meth:`flush` rewrites the CSV (columns grow as loss parts appear)."""

    def __init__(self, path: str | os.PathLike, *, tensorboard_dir: str | os.PathLike | None = None):
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        self._tb = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("TensorBoard is not installed (pip install 'vosbench[tensorboard]'); logging to CSV only")
            else:
                self._tb = SummaryWriter(str(tensorboard_dir))

    def load_until(self, step: int) -> None:
        """Keep the rows of an existing log up to ``step`` (resume: later rows are redone)."""
        if not self.path.is_file():
            return
        with open(self.path, newline="") as fh:
            for row in csv.DictReader(fh):
                if int(row["step"]) <= step:
                    self.rows.append({k: _parse(v) for k, v in row.items()})

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self._tb is not None:
            for k, v in row.items():
                if k not in ("step", "epoch") and isinstance(v, (int, float)):
                    self._tb.add_scalar(f"train/{k}", v, row["step"])

    def columns(self) -> list[str]:
        cols = list(BASE_COLUMNS)
        for r in self.rows:
            cols.extend(k for k in r if k not in cols)
        return cols

    def flush(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns(), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, buf.getvalue())
        if self._tb is not None:
            self._tb.flush()

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
