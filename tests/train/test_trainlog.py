"""log.csv: appended at each flush (a long run never rewrites it), cut back on resume."""

from __future__ import annotations

from pathlib import Path

from vosbench.train.trainlog import LossLog, read_log


def _row(step: int) -> dict:
    return {"step": step, "epoch": 0, "loss": 1.0 / step, "lr": 1e-5, "max_skip": 0, "own_prior": 0,
            "seconds": step * 0.5, "ce": 0.5}


def test_flush_appends_without_rewriting(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    log = LossLog(path)
    for s in (1, 2):
        log.append(_row(s))
    log.flush()
    first, inode = path.read_bytes(), path.stat().st_ino
    for s in (3, 4, 5):
        log.append(_row(s))
    log.flush()
    assert path.stat().st_ino == inode  # same file, not an atomic replacement
    assert path.read_bytes().startswith(first) and len(path.read_bytes()) > len(first)
    log.close()
    rows = read_log(path)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5] and rows[4]["ce"] == 0.5
    assert list(rows[0]) == ["step", "epoch", "loss", "lr", "max_skip", "own_prior", "seconds", "ce"]


def test_resume_cuts_later_rows_then_appends(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    log = LossLog(path)
    for s in (1, 2, 3):
        log.append(_row(s))
    log.close()
    resumed = LossLog(path)
    resumed.load_until(2)
    assert resumed.last_row is not None and resumed.last_row["step"] == 2
    resumed.append(_row(3))
    resumed.close()
    assert [r["step"] for r in read_log(path)] == [1, 2, 3]


def test_a_new_column_rewrites_the_header(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    log = LossLog(path)
    log.append({k: v for k, v in _row(1).items() if k != "ce"})
    log.flush()
    log.append(_row(2))
    log.close()
    rows = read_log(path)
    assert rows[0]["ce"] == "" and rows[1]["ce"] == 0.5
