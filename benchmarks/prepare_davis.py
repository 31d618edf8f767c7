"""Time `prepare davis2017` phases on a DAVIS-layout zip built from the real clips in ../shared.

Builds ``DAVIS/`` from the five real DAVIS clips (480p, optionally repeated under new names to make
the archive bigger), serves it from 127.0.0.1 with one dropped connection (so the download resumes
once), then runs :func:`prepare_davis2017` and prints how long each phase took.

    .venv/bin/python benchmarks/prepare_davis.py --repeat 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.data.archive_helpers import ServedFile, http_server, zip_tree  # noqa: E402
from vosbench.data.prepare import prepare_davis2017  # noqa: E402

REAL = {
    "blackswan": "eor-vos/blackswan",
    "dog": "eor-vos/dog",
    "libby": "eor-vos/libby",
    "bmx-trees": "eor-vos/bmx-trees",
    "car-shadow": "osvos-tf/car-shadow",
}


class PhaseTimer:
    """A Progress that records when each phase starts and how many units it saw."""

    def __init__(self) -> None:
        self.phases: list[list] = []  # [name, start time, units]

    def start(self, description: str, total: int | None = None) -> None:
        self.phases.append([description.split()[0], time.perf_counter(), 0])

    def advance(self, n: int = 1) -> None:
        self.phases[-1][2] += n

    def update(self, description: str) -> None:
        pass

    def table(self, end: float) -> list[tuple[str, float, int]]:
        merged: dict[str, list] = {}
        for i, (name, t0, units) in enumerate(self.phases):
            t1 = self.phases[i + 1][1] if i + 1 < len(self.phases) else end
            row = merged.setdefault(name, [0.0, 0])
            row[0] += t1 - t0
            row[1] += units
        return [(k, v[0], v[1]) for k, v in merged.items()]


def build_root(real: Path, out: Path, repeat: int) -> tuple[int, int]:
    names = []
    frames = 0
    for r in range(repeat):
        for name, rel in REAL.items():
            new = name if r == 0 else f"{name}-{r}"
            for kind in ("JPEGImages", "Annotations"):
                shutil.copytree(real / rel / kind / "480p" / name, out / kind / "480p" / new)
            frames += len(os.listdir(out / "JPEGImages" / "480p" / new))
            names.append(new)
    sets = out / "ImageSets" / "2017"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("".join(f"{n}\n" for n in names[: len(names) // 2]))
    (sets / "val.txt").write_text("".join(f"{n}\n" for n in names[len(names) // 2 :]))
    return len(names), frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2, help="copies of the five clips")
    ap.add_argument("--real", type=Path, default=REPO.parent / "shared" / "data" / "real_vos")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n_seq, n_frames = build_root(args.real, tmp / "src", args.repeat)
        zip_path = zip_tree(tmp / "src", tmp / "DAVIS-2017-trainval-480p.zip")
        data = zip_path.read_bytes()
        files = {"/DAVIS-2017-trainval-480p.zip": ServedFile(data, drop_after=int(len(data) * 0.4))}
        timer = PhaseTimer()
        with http_server(files) as base:
            t0 = time.perf_counter()
            prepare_davis2017(
                tmp / "davis", url=f"{base}/DAVIS-2017-trainval-480p.zip", download_dir=tmp / "dl",
                progress=timer, backoff=0,
            )
            end = time.perf_counter()
        mb = len(data) / 1e6
        print(f"archive: {mb:.1f} MB, {n_seq} sequences, {n_frames} frames (+ as many masks); "
              f"download resumed {len(files['/DAVIS-2017-trainval-480p.zip'].requests) - 1} time(s)")
        print(f"{'phase':<10} {'seconds':>8}  rate")
        for name, secs, units in timer.table(end):
            if name in ("download", "extract"):
                rate = f"{units / 1e6 / max(secs, 1e-9):.0f} MB/s"
            elif name == "validate":
                rate = f"{n_frames / max(secs, 1e-9):.0f} frames/s (frame + mask decoded)"
            else:
                rate = ""
            print(f"{name:<10} {secs:8.2f}  {rate}")
        print(f"{'total':<10} {end - t0:8.2f}")


if __name__ == "__main__":
    main()
