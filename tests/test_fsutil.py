"""fsutil: atomic outputs get the usual umask permissions, not the 0600/0700 of temp files."""

from __future__ import annotations

import os
import stat

from vosbench.fsutil import atomic_dir, atomic_write_bytes


def test_atomic_outputs_get_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "f.bin", b"x")
        with atomic_dir(tmp_path / "d") as d:
            (d / "inner").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
    assert (tmp_path / "d" / "inner").read_text() == "y"
