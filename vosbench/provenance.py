"""What produced a results folder: ``<out>/<seq>/provenance.json``.

``vosbench infer`` writes one into each sequence folder it finishes: the SHA-256 and weight of
every checkpoint, the resolved inference options that change the masks, and the vosbench
version. A later run into the same ``--out`` compares its own record with it: equal means the
sequence is done (skipped), different means the folder holds someone else's results, which the
run refuses to mix with its own unless told to ``--overwrite``.

This module is the one notion of "a run's inputs" that every reuse decision uses: ``infer``'s
skip, ``merge``'s skip, ``quickstart``'s dataset and ``ablate``'s cache keys. The data a run read
is identified cheaply and per sequence:

- frames (and other bulk files, e.g. saved probabilities): :func:`files_fingerprint` hashes each
  file's name, size and modification time (ns), not its bytes: a re-prepared, re-encoded or
  replaced frame changes it; a copy that keeps times (``cp -p``, ``rsync -a``, a move) does not;
- annotations: :func:`content_fingerprint` hashes their names and bytes (they are small and they
  are the ground truth: a fixed mask must never leave an old score standing).

A record's ``inputs`` hold one sequence's fingerprints (they differ between sequences of one run);
``data_root`` is recorded for people, not compared, so a dataset moved or copied with its times
is still the same data. The rest of a record is the run's: sequences of one results folder whose
run parts differ were made by different runs (:func:`check_one_run`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vosbench import __version__
from vosbench.errors import ConfigError, DataError
from vosbench.fsutil import atomic_write_text, check_regular_file, sha256_file

log = logging.getLogger(__name__)

PROVENANCE_FILE = "provenance.json"
# recorded for people, not compared: a new vosbench version or a renamed checkpoint file with the
# same contents does not make old results stale
INFORMATIONAL = ("vosbench", "checkpoint_files", "data_root", "member_folders")
# one sequence's data, compared for reuse but not across the sequences of a run
PER_SEQUENCE = ("inputs",)


def files_fingerprint(paths: Iterable[str | os.PathLike], base: str | os.PathLike | None = None) -> str:
    """SHA-256 of each file's name (relative to ``base``, else its name), size and mtime (ns), in
    the given order; a missing file counts as such. Cheap: one ``stat`` per file, no reading."""
    h = hashlib.sha256()
    for p in paths:
        name = os.path.relpath(p, base) if base is not None else os.path.basename(p)
        try:
            st = os.stat(p)
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{name}\0missing\n".encode())
    return h.hexdigest()


def content_fingerprint(paths: Iterable[str | os.PathLike], base: str | os.PathLike | None = None) -> str:
    """SHA-256 of each file's name (as in :func:`files_fingerprint`) and bytes, in the given order."""
    h = hashlib.sha256()
    for p in paths:
        name = os.path.relpath(p, base) if base is not None else os.path.basename(p)
        check_regular_file(p, "annotation")
        try:
            digest = sha256_file(p)
        except OSError:
            digest = "missing"
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()


def sequence_inputs(frames: Iterable[str | os.PathLike], annotations: Iterable[str | os.PathLike]) -> dict[str, str]:
    """A sequence's ``inputs``: fingerprints of its frame list and of the annotations a run read."""
    return {"frames": files_fingerprint(frames), "annotations": content_fingerprint(annotations)}


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


def _shown(diff: list[str]) -> str:
    return ", ".join(diff[:4]) + (", ..." if len(diff) > 4 else "")


def _compared(record: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in INFORMATIONAL and k not in drop}


def check_same_provenance(folder: Path, record: dict[str, Any]) -> None:
    """Raise a one-line :class:`ConfigError` unless ``folder`` was produced as ``record`` says."""
    old = read_provenance(folder)
    if old is None:
        raise ConfigError(
            f"{folder}: finished results without a readable {PROVENANCE_FILE} (made by another tool or an older "
            "vosbench); pass --overwrite to redo them, or choose another --out"
        )
    diff = _differences(_compared(old), _compared(record))
    if diff:
        data = [d for d in diff if d.split(".")[0] in PER_SEQUENCE]
        what = "other settings" if len(data) < len(diff) else "other input data"
        root = f"; they were made from {old['data_root']}" if data and old.get("data_root") else ""
        raise ConfigError(
            f"{folder}: results made with {what} ({_shown(diff)} differ, see its {PROVENANCE_FILE}{root}); "
            "pass --overwrite to redo them, or choose another --out"
        )


def check_one_run(results: str | os.PathLike, sequences: Iterable[str]) -> str | None:
    """Why the sequence folders ``results/<seq>`` were not all made by one run (None: they were).

    Runs are told apart by their provenance records less the per-sequence ``inputs`` and the
    informational keys; a folder without a record counts as one more run when others have one.
    A folder of another tool's results (no records at all) passes.
    """
    results = Path(results)
    groups: dict[str, list[str]] = {}
    records: dict[str, dict[str, Any] | None] = {}
    for name in sequences:
        folder = results / name
        if not folder.is_dir():
            continue
        record = read_provenance(folder)
        run = None if record is None else _compared(record, PER_SEQUENCE) or None  # {}: says nothing
        key = json.dumps(run, sort_keys=True)
        groups.setdefault(key, []).append(name)
        records.setdefault(key, run)
    if len(groups) < 2:
        return None
    (k1, a), (k2, b) = sorted(groups.items(), key=lambda kv: -len(kv[1]))[:2]
    r1, r2 = records[k1], records[k2]
    if r1 is None or r2 is None:
        why = f"only some have a {PROVENANCE_FILE}"
    else:
        why = f"{_shown(_differences(r1, r2))} differ"
    more = f" (and {len(groups) - 2} more runs)" if len(groups) > 2 else ""
    return (f"{results}: its sequences were made by different runs ({_shown(a)} vs {_shown(b)}{more}: {why}, "
            f"see their {PROVENANCE_FILE}), e.g. left half old by a failed --overwrite")


def require_one_run(results: str | os.PathLike, sequences: Iterable[str], allow_mixed: bool = False) -> None:
    """A one-line :class:`DataError` when :func:`check_one_run` finds several runs in ``results``;
    with ``allow_mixed`` one warning instead (the caller uses the folder as it is)."""
    message = check_one_run(results, sequences)
    if message is None:
        return
    if allow_mixed:
        log.warning("%s; used as is (--allow-mixed)", message)
        return
    raise DataError(f"{message}; redo them with --overwrite, or pass --allow-mixed to use the folder as it is")
