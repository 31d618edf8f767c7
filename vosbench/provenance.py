"""What produced a results folder: ``<out>/<seq>/provenance.json``.

``vosbench infer`` writes one into each sequence folder it finishes: the SHA-256 and weight of
every checkpoint, the resolved inference options that change the masks, and the vosbench
version. A later run into the same ``--out`` compares its own record with it: equal means the
sequence is done (skipped), different means the folder holds someone else's results, which the
run refuses to mix with its own unless told to ``--overwrite``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vosbench import __version__
from vosbench.errors import ConfigError
from vosbench.fsutil import atomic_write_text

PROVENANCE_FILE = "provenance.json"
# recorded for people, not compared: a new vosbench version or a renamed checkpoint file with the
# same contents does not make old results stale
INFORMATIONAL = ("vosbench", "checkpoint_files")


def write_provenance(folder: str | os.PathLike, record: dict[str, Any]) -> None:
    atomic_write_text(Path(folder) / PROVENANCE_FILE, json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_provenance(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The record of a finished folder, or None when it has none (or an unreadable one)."""
    try:
        record = json.loads((Path(folder) / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def make_record(checkpoints: list[dict[str, Any]], options: dict[str, Any], **context: Any) -> dict[str, Any]:
    """A provenance record: ``checkpoints`` (file, sha256, weight), ``options``, the vosbench version."""
    return {"vosbench": __version__, "checkpoints": checkpoints, "options": options, **context}


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    out = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(f"{k}.{d}" for d in _differences(a, b))
        elif a != b:
            out.append(k)
    return out


def check_same_provenance(folder: Path, record: dict[str, Any]) -> None:
    """Raise a one-line :class:`ConfigError` unless ``folder`` was produced as ``record`` says."""
    old = read_provenance(folder)
    if old is None:
        raise ConfigError(
            f"{folder}: finished results without a readable {PROVENANCE_FILE} (made by another tool or an older "
            "vosbench); pass --overwrite to redo them, or choose another --out"
        )
    diff = _differences({k: v for k, v in old.items() if k not in INFORMATIONAL},
                        {k: v for k, v in record.items() if k not in INFORMATIONAL})
    if diff:
        shown = ", ".join(diff[:4]) + (", ..." if len(diff) > 4 else "")
        raise ConfigError(
            f"{folder}: results made with other settings ({shown} differ, see its {PROVENANCE_FILE}); "
            "pass --overwrite to redo them, or choose another --out"
        )
