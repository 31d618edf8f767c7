"""Run a ladder: for each rung train → infer → evaluate, each step cached by a content hash.

Cache layout under the ladder's output folder::

    train/<key>/last.pt        finished training (renamed from train/<key>.work when done); a rung's
                               pretraining stage is a training step of its own
    infer/<key>/<seq>/*.png    finished inference (built in a temp folder, then renamed)
    eval/<key>/metrics.json    evaluation result

A key hashes everything the step's output depends on (config text, overrides, options, the
upstream key, the dataset's manifest and its data: frame lists by name, size and mtime, ground
truth by content, :func:`~vosbench.ablation.steps.data_content_fingerprint`), so a re-run only
redoes what changed and an interrupted ladder resumes at the first unfinished step (an interrupted training resumes from its checkpoint).

With ``seeds=N`` every training rung is trained N times: seed 0 is the rung as written (same keys,
same cache as a single-seed run), seed ``s >= 1`` adds the training override ``train.seed = s``
(network init and sample order) to the rung and to its pretraining stage, so each seed is its own
cached pretraining, training, inference and evaluation.

Several ``ablate`` processes may share one cache (two ladders with common rungs, run side by side on
two cores): each step runs under an exclusive lock on ``locks/<step>-<key>.lock``, so a step another
process is running is never run twice or into the same work folder: the ladder first goes on with
the rungs nobody is running, then waits for the busy ones and reuses their results. Two processes
on two cores (`ablate` of two ladders, or the same ladder twice) so share the work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vosbench import __version__
from vosbench.ablation.ladder import LadderConfig, RungSpec
from vosbench.errors import ConfigError, VosbenchError
from vosbench.fsutil import atomic_dir, atomic_write_text, sha256_file, sweep_temps
from vosbench.progress import Progress, ensure_progress

log = logging.getLogger(__name__)

SEED_KEY = "train.seed"  # the training override that makes seed s >= 1 of a rung
METRIC_KEYS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


class StepRunner(Protocol):
    """What a ladder needs from the rest of vosbench; tests pass a fake."""

    def data_fingerprint(self) -> str:
        """A string that changes when the dataset changes."""

    def check(self, rung: RungSpec) -> None:
        """Raise a VosbenchError if the rung cannot run (unknown preset, bad key, an init checkpoint
        that does not fit) — before any work; one line per problem."""

    def train(self, rung: RungSpec, work_dir: Path, progress: Progress) -> Path:
        """Train into ``work_dir`` (resuming if it holds a checkpoint); return the final checkpoint."""

    def infer(self, rung: RungSpec, checkpoint: Path, out_dir: Path, progress: Progress,
              ensemble: Sequence[Path] = ()) -> None:
        """Write predicted masks for the evaluation split into ``out_dir`` (``ensemble``: more
        checkpoints averaged with ``checkpoint``, equal weights; passed only when non-empty)."""

    def evaluate(self, rung: RungSpec, results_dir: Path, progress: Progress) -> dict[str, Any]:
        """Return ``{"global": {metric: value}, "subsets": {name: {metric: value}}}`` (values in [0, 1])."""


@dataclass
class RungResult:
    name: str
    features: tuple[str, ...]
    metrics: dict[str, float]
    subsets: dict[str, dict[str, float]] = field(default_factory=dict)
    checkpoint: Path | None = None
    results_dir: Path | None = None
    ran: dict[str, bool] = field(default_factory=dict)  # step -> ran now (False = cached)
    seed: int = 0


@dataclass
class LadderResult:
    ladder: LadderConfig
    rungs: list[RungResult]  # seed 0 (the single-seed ladder)
    seeds: list[list[RungResult]] = field(default_factory=list)  # seeds[s]: every rung of seed s

    def __post_init__(self) -> None:
        if not self.seeds:
            self.seeds = [self.rungs]


def content_key(payload: dict[str, Any]) -> str:
    """A short, stable hash of a JSON-serialisable payload."""
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def checkpoint_identity(checkpoint: Path) -> str:
    """The SHA-256 of a rung's finished checkpoint: the file's, or an ``hf:`` model's weights
    (:func:`vosbench.infer.hf_video.hf_identity`)."""
    from vosbench.infer.hf_video import hf_identity, hf_reference

    ref = hf_reference(checkpoint)
    return sha256_file(checkpoint) if ref is None else hf_identity(ref)


def train_key(rung: RungSpec, data_fp: str, pretrain: str | None = None) -> str:
    """``pretrain``: the key of the pretraining step the rung starts from."""
    if rung.checkpoint is not None:
        return "ckpt-" + checkpoint_identity(rung.checkpoint)[:16]
    assert rung.train_config is not None
    payload = {
        "step": "train",
        "version": __version__,
        "config": rung.train_config.read_text(encoding="utf-8"),
        "overrides": rung.train_overrides,
        "data": data_fp,
    }
    if pretrain is not None:
        payload["pretrain"] = pretrain
    return content_key(payload)


class StepBusy(Exception):
    """A step another process is running (raised by a non-waiting :func:`step_lock`)."""


@contextlib.contextmanager
def step_lock(store: Path, step: str, key: str, wait: bool = True) -> Iterator[None]:
    """Hold the cache's exclusive lock on one step (``step``: train, infer or eval) while it runs.
    While another process holds it: wait for it, saying so once, or (``wait=False``) raise
    :class:`StepBusy`."""
    from filelock import FileLock, Timeout

    lock_dir = store / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_dir / f"{step}-{key}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise StepBusy(f"{step} {key}") from None
        log.info("another process is running %s step %s; waiting for it", step, key)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _once(store: Path, step: str, key: str, done: Callable[[], bool], run: Callable[[], object],
          wait: bool) -> bool:
    """``run()`` unless ``done()``, under the step's lock (re-checked once it is held: another
    process may have finished the step meanwhile) -> whether it ran now."""
    if done():
        return False
    with step_lock(store, step, key, wait):
        if done():
            return False
        run()
        return True


def _train_step(rung: RungSpec, key: str, store: Path, runner: StepRunner, progress: Progress,
                wait: bool = True) -> tuple[Path, bool]:
    """Train ``rung`` into ``store/train/<key>`` unless it is there -> (checkpoint, ran now)."""
    ckpt = store / "train" / key / "last.pt"
    ran = _once(store, "train", key, ckpt.is_file,
                lambda: _train_locked(rung, key, store, runner, progress), wait)
    return ckpt, ran


def _train_locked(rung: RungSpec, key: str, store: Path, runner: StepRunner, progress: Progress) -> None:
    """Train into ``train/<key>.work`` (resuming), then rename it onto ``train/<key>``; the caller
    holds the step's lock."""
    final = store / "train" / key
    work = store / "train" / f"{key}.work"
    work.mkdir(parents=True, exist_ok=True)
    log.info("[%s] training (%s)", rung.name, key)
    produced = runner.train(rung, work, progress)
    if produced.resolve() != (work / "last.pt").resolve():
        shutil.copy2(produced, work / "last.pt")
    if final.exists():
        shutil.rmtree(final)
    work.rename(final)


def seeded_rung(rung: RungSpec, seed: int) -> RungSpec:
    """The rung as trained for ``seed``: unchanged for seed 0, else with ``train.seed = seed``
    (a rung that reuses a checkpoint is the same for every seed)."""
    if seed == 0 or rung.checkpoint is not None:
        return rung
    return dataclasses.replace(rung, train_overrides={**rung.train_overrides, SEED_KEY: seed})


def run_ladder(
    ladder: LadderConfig,
    out: str | Path,
    runner: StepRunner,
    progress: Progress | None = None,
    cache: str | Path | None = None,
    seeds: int = 1,
) -> LadderResult:
    """Run (or reuse) every step of every rung for seeds ``0..seeds-1`` (all rungs of seed 0
    first, then of seed 1, ...; a rung whose step another process is running comes after the rest);
    write ``ladder.json`` with the per-rung, per-seed metrics.

    Step outputs live under ``cache`` (default: ``out``); ladders sharing a cache share their
    common rungs (e.g. the STM baseline).
    """
    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}")
    out = Path(out)
    store = Path(cache) if cache is not None else out
    progress = ensure_progress(progress)
    data_fp = runner.data_fingerprint()
    problems = []
    for rung in ladder.rungs:  # every rung is checked before any work (or folder) is made
        try:
            runner.check(rung)
        except VosbenchError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    out.mkdir(parents=True, exist_ok=True)
    for folder in (store / "infer", out):  # results folders of a killed run (train/<key>.work resumes)
        sweep_temps(folder)
    # Every (seed, rung) is a task; rungs of one seed are independent but for ensembles. A first
    # pass skips a task whose step another process (a second `ablate` on the same cache) is
    # running and comes back to it after the rest, so two processes keep two cores busy.
    per_seed: list[list[RungResult | None]] = [[None] * len(ladder.rungs) for _ in range(seeds)]
    trained: list[dict[str, tuple[str, Path]]] = [{} for _ in range(seeds)]  # rung name -> (train key, ckpt)
    deferred: list[tuple[int, int]] = []
    ran: dict[tuple[int, int], dict[str, bool]] = {}
    for seed in range(seeds):
        for i, spec in enumerate(ladder.rungs):
            if any(name not in trained[seed] for name in spec.ensemble):
                deferred.append((seed, i))  # an ensemble partner was deferred
                continue
            try:
                per_seed[seed][i] = _run_rung(ladder, spec, seed, store, runner, progress, data_fp,
                                              trained[seed], ran.setdefault((seed, i), {}), wait=False)
            except StepBusy as busy:
                log.info("[%s] seed %d: %s is running in another process; back to it later",
                         spec.name, seed, busy)
                deferred.append((seed, i))
    for seed, i in deferred:
        per_seed[seed][i] = _run_rung(ladder, ladder.rungs[i], seed, store, runner, progress, data_fp,
                                      trained[seed], ran.setdefault((seed, i), {}), wait=True)
    done = [[r for r in rungs if r is not None] for rungs in per_seed]
    result = LadderResult(ladder, done[0], done)
    summary = [
        {"rung": r.name, "seed": r.seed, "features": list(r.features), "metrics": r.metrics,
         "subsets": r.subsets, "checkpoint": str(r.checkpoint), "results": str(r.results_dir)}
        for rungs in done for r in rungs
    ]
    atomic_write_text(out / "ladder.json", json.dumps(summary, indent=2))
    return result


def _run_rung(ladder: LadderConfig, spec: RungSpec, seed: int, store: Path, runner: StepRunner,
              progress: Progress, data_fp: str, trained: dict[str, tuple[str, Path]],
              ran: dict[str, bool], wait: bool = True) -> RungResult:
    """Train, infer and evaluate (or reuse) one rung for one seed; record its training in
    ``trained`` (for later ensemble rungs). ``wait=False``: raise :class:`StepBusy` rather than wait
    for a step another process holds. ``ran``: step -> ran now, kept across a busy first try."""
    rung = seeded_rung(spec, seed)

    def mark(step: str, now: bool) -> None:
        ran[step] = ran.get(step, False) or now

    # -- pretrain (the rung's own stage, when it has one), then train
    pretraining = rung.pretraining()
    pkey = None
    if pretraining is not None:
        pretraining = seeded_rung(pretraining, seed)  # each seed its own pretraining too
        pkey = train_key(pretraining, data_fp)
        pre_ckpt, now = _train_step(pretraining, pkey, store, runner, progress, wait)
        mark("pretrain", now)
        rung_to_train = rung.starting_from(pre_ckpt)
    else:
        rung_to_train = rung
    tkey = train_key(rung, data_fp, pretrain=pkey)
    if rung.checkpoint is not None:
        ckpt = rung.checkpoint
        mark("train", False)
    else:
        ckpt, now = _train_step(rung_to_train, tkey, store, runner, progress, wait)
        mark("train", now)
    # -- infer
    payload = {
        "step": "infer",
        "version": __version__,
        "train": tkey,
        "options": rung.infer_options,
        "split": ladder.split,
        "resolution": ladder.resolution,
        "data": data_fp,
    }
    others = [trained[name] for name in rung.ensemble]  # (train key, checkpoint) of each
    if others:
        payload["ensemble"] = [key for key, _ in others]
    ikey = content_key(payload)
    results_dir = store / "infer" / ikey

    def infer() -> None:
        log.info("[%s] inference (%s)", rung.name, ikey)
        with atomic_dir(results_dir) as tmp:
            if others:
                runner.infer(rung, ckpt, tmp, progress, ensemble=[path for _, path in others])
            else:
                runner.infer(rung, ckpt, tmp, progress)

    mark("infer", _once(store, "infer", ikey, results_dir.is_dir, infer, wait))
    trained[rung.name] = (tkey, ckpt)
    # -- evaluate
    ekey = content_key({"step": "eval", "version": __version__, "infer": ikey, "split": ladder.split})
    metrics_file = store / "eval" / ekey / "metrics.json"

    def evaluate() -> None:
        log.info("[%s] evaluation (%s)", rung.name, ekey)
        evaluation = runner.evaluate(rung, results_dir, progress)
        sweep_temps(metrics_file.parent)  # a metrics file of a killed run
        atomic_write_text(metrics_file, json.dumps(evaluation, indent=2, sort_keys=True))

    mark("evaluate", _once(store, "eval", ekey, metrics_file.is_file, evaluate, wait))
    evaluation = json.loads(metrics_file.read_text())
    return RungResult(
        name=rung.name,
        features=rung.features,
        metrics={k: float(evaluation["global"][k]) for k in METRIC_KEYS if k in evaluation["global"]},
        subsets={s: {k: float(v) for k, v in m.items()} for s, m in evaluation.get("subsets", {}).items()},
        checkpoint=ckpt,
        results_dir=results_dir,
        ran=ran,
        seed=seed,
    )
