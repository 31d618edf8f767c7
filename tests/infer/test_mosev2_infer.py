"""infer on a MOSEv2 root writes MOSE's layout (<out>/<video>/<frame>.png, every frame), which
package-submission --format mosev2 and evaluate --task mosev2 take as it is."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from vosbench.data.imageio import read_mask, write_frame, write_mask
from vosbench.infer import infer_dataset
from vosbench.metrics import evaluate_results
from vosbench.submission import package_submission

SIZE = (32, 48)


def _root(root: Path, split: str, annotate_all: bool) -> Path:
    rng = np.random.default_rng(0)
    videos = {}
    for name, n in (("m1", 4), ("m2", 3)):
        for t in range(n):
            write_frame(root / split / "JPEGImages" / name / f"{t:05d}.jpg", rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8))
            m = np.zeros(SIZE, np.uint8)
            m[4 + t : 14 + t, 5:15] = 1
            m[18:28, 20 + t : 34 + t] = 2
            if annotate_all or t == 0:
                write_mask(root / split / "Annotations" / name / f"{t:05d}.png", m)
        videos[name] = {"length": n, "height": SIZE[0], "width": SIZE[1], "objects": {"1": {}, "2": {}}}
    (root / split / "meta.json").write_text(json.dumps({"videos": videos}))
    return root


def test_infer_package_and_evaluate(tiny_checkpoint, tmp_path):
    valid = _root(tmp_path / "mosev2", "valid", annotate_all=False)
    out = tmp_path / "out"
    summary = infer_dataset(str(tiny_checkpoint("stm-tiny")), valid, "valid", out=out)
    assert [(s.name, s.objects) for s in summary.sequences] == [("m1", 2), ("m2", 2)]
    assert sorted(p.name for p in (out / "m1").glob("*.png")) == [f"{t:05d}.png" for t in range(4)]
    assert set(np.unique(read_mask(out / "m1" / "00002.png"))) <= {0, 1, 2}
    package_submission(out, valid, "valid", tmp_path / "s.zip", format="mosev2")
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        assert len([n for n in zf.namelist() if n.endswith(".png")]) == 7

    train = _root(tmp_path / "mosev2", "train", annotate_all=True)
    out_train = tmp_path / "out_train"
    infer_dataset(str(tiny_checkpoint("stm-tiny")), train, "train", out=out_train)
    result = evaluate_results(train, out_train, "train", workers=1)
    assert result.task == "mosev2" and len(result.objects) == 4
    assert 0 <= result.extra["J&F_new"] <= 100
