"""The depth extra stays optional: the core install never imports transformers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vosbench_cli.main import app


def test_core_imports_do_not_pull_transformers() -> None:
    code = (
        "import sys\n"
        "import vosbench_cli.main, vosbench.depth, vosbench.depth.prepare, vosbench.data.davis, vosbench.infer.run, vosbench.train.loop\n"
        "print(sorted(m for m in sys.modules if m == 'transformers' or m.startswith('transformers.')))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_folder_import_works_without_transformers(make_davis_root, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails
    root = make_davis_root({"alpha": (2, 1)}, size=(16, 16))
    (tmp_path / "m" / "alpha").mkdir(parents=True)
    for t in range(2):
        np.save(tmp_path / "m" / "alpha" / f"{t:05d}.npy", np.full((16, 16), float(t), np.float32))
    res = CliRunner().invoke(app, ["prepare", "depth", "--data", str(root), "--estimator", f"folder:{tmp_path / 'm'}"])
    assert res.exit_code == 0, res.output
    assert len(list((root / "Depth" / "480p" / "alpha").glob("*.png"))) == 2
    res = CliRunner().invoke(app, ["prepare", "depth", "--data", str(root), "--estimator", str(tmp_path)])
    assert res.exit_code == 1 and "pip install -e '.[depth]'" in res.output and "Traceback" not in res.output
