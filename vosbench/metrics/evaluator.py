"""DAVIS-2017 semi-supervised evaluation: an evaluator protocol and a parallel driver.

:class:`DavisEvaluator` follows detectron2's ``DatasetEvaluator``: ``reset()``, then
``process(sequence, results)`` (or ``process_sequence(sequence, masks)`` for masks in memory) once
per sequence, then ``evaluate()``. :func:`evaluate_results` scores a whole split from a results
folder or zip with a process pool over sequences and writes the official CSVs.

Semantics of DAVIS-2017 (the official toolkit's): the scored frames are the annotated frames
except the first and the last; the objects are ids 1..max id of the first annotation (255 = void
counts as background; an id missing in between is an always-empty object); a prediction lacking
an object scores it as empty; predicted ids above the object count are refused (or dropped with
``ignore_extra_ids``). The other benchmarks (DAVIS-2016, late objects, YouTube-VOS, MOSE, LVOS)
are described in :mod:`vosbench.metrics.benchmarks` and scored by :mod:`vosbench.metrics.rules`.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vosbench.data.imageio import VOID_ID
from vosbench.errors import DataError, VosbenchError
from vosbench.fsutil import sweep_temps
from vosbench.metrics.benchmarks import Benchmark, GroundTruth, open_benchmark
from vosbench.metrics.boundary import DEFAULT_BOUND_TH, boundary_tolerance, disk_footprint
from vosbench.metrics.fastpng import read_id_mask
from vosbench.metrics.frame import score_frame
from vosbench.metrics.mosev2 import mosev2_summary, score_mosev2
from vosbench.metrics.report import EvaluationResult, SequenceScores
from vosbench.metrics.results_source import ArrayResults, FolderResults, MaskReader, open_results
from vosbench.metrics.rules import benchmark_extras, score_dynamic, score_static
from vosbench.metrics.validation import davis2017_objects, raise_missing
from vosbench.progress import Progress, ensure_progress
from vosbench.provenance import require_one_run

log = logging.getLogger(__name__)

def _missing_predictions(gts: Iterable[GroundTruth], results: MaskReader) -> tuple[list[str], list[str]]:
    """(missing sequences, missing ``seq/frame.png`` of the scored frames of present sequences)."""
    available = results.sequences()
    missing_seqs, missing_frames = [], []
    for gt in gts:
        if gt.name not in available:
            missing_seqs.append(gt.name)
            continue
        have = results.frames(gt.name)
        missing_frames += [f"{gt.name}/{f}.png" for f in gt.scored_frames if f not in have]
    return missing_seqs, missing_frames


def check_predictions(gts: list[GroundTruth], results: MaskReader, where: str) -> None:
    """Raise one DataError listing every missing sequence and frame (scored frames only)."""
    if gts and gts[0].task == "sav":  # the per-object layout
        from vosbench.metrics.sav import check_object_predictions

        return check_object_predictions(gts, results, where)
    if not results.sequences():
        raise DataError(f"{where}: no predictions found (expected <sequence>/<frame>.png masks)")
    missing_seqs, missing_frames = _missing_predictions(gts, results)
    raise_missing(where, [("sequence(s) missing", missing_seqs), ("frame(s) missing", missing_frames)])


def score_sequence(
    gt: GroundTruth,
    results: MaskReader,
    *,
    ignore_extra_ids: bool = False,
    bound_th: float = DEFAULT_BOUND_TH,
    stop_at_late: bool = False,
) -> SequenceScores:
    """Per-frame J and F of every object of one sequence; each PNG is decoded once.

    DAVIS-2017 rules ignore annotated ids that the first frame lacks and list them in
    ``late_ids``; with ``stop_at_late`` the scoring stops at the first such frame (the caller
    then scores the split with the ``late`` rules)."""
    if gt.task == "sav":
        from vosbench.metrics.sav import score_sav

        return score_sav(gt, results, bound_th=bound_th)
    if gt.task in ("davis2016", "late"):
        return score_dynamic(gt, results, ignore_extra_ids=ignore_extra_ids, bound_th=bound_th)
    if gt.task == "mosev2":  # its own tolerances (bound_th does not apply)
        return score_mosev2(gt, results, ignore_extra_ids=ignore_extra_ids)
    if gt.task != "davis2017":
        return score_static(gt, results, ignore_extra_ids=ignore_extra_ids, bound_th=bound_th)
    first = read_id_mask(gt.paths[0], allow_gray=True)
    objects = first[first != VOID_ID]
    n_objects = int(objects.max()) if objects.size else 0
    frames = gt.scored_frames
    late: set[int] = set()
    j = np.empty((n_objects, len(frames)), dtype=np.float64)
    f = np.empty((n_objects, len(frames)), dtype=np.float64)
    if n_objects == 0:  # no logging here: this may run in a worker process
        return SequenceScores(gt.name, frames, j, f)
    footprint = disk_footprint(boundary_tolerance(first.shape, bound_th))
    for t, path in enumerate(gt.paths[1:-1]):
        gt_mask = read_id_mask(path, allow_gray=True)
        if gt_mask.shape != first.shape:
            raise DataError(f"{path}: annotation size {_size(gt_mask)} differs from the first frame's {_size(first)}")
        if int(gt_mask.max()) > n_objects:  # void, or an object that the first frame lacks (ignored here)
            late.update(int(i) for i in np.unique(gt_mask[gt_mask > n_objects]) if i != VOID_ID)
            if late and stop_at_late:
                return SequenceScores(gt.name, frames, j, f, late_ids=tuple(sorted(late)))
        pred = results.read(gt.name, path.stem)
        if pred.shape != gt_mask.shape:
            raise DataError(f"{results.describe(gt.name, path.stem)}: prediction size {_size(pred)} differs from the annotation's {_size(gt_mask)}")
        if not ignore_extra_ids and int(pred.max()) > n_objects:  # else score_frame ignores them
            extra = [int(i) for i in np.unique(pred[pred > n_objects])]
            raise DataError(davis2017_objects(gt.name, first).message(results.describe(gt.name, path.stem), extra))
        j[:, t], f[:, t] = score_frame(gt_mask, pred, n_objects, footprint)
    return SequenceScores(gt.name, frames, j, f, late_ids=tuple(sorted(late)))


def _size(mask: np.ndarray) -> str:
    return f"{mask.shape[1]}x{mask.shape[0]}"


def _open_source(task: str, results: str | os.PathLike):
    """The predictions of ``results`` in the task's layout: per-object folders for SA-V, else label maps."""
    if task == "sav":
        from vosbench.metrics.sav import open_object_results

        return open_object_results(results)
    return open_results(results)


class DavisEvaluator:
    """Streams per-sequence scores of one split into the official tables.

    >>> ev = DavisEvaluator("data/davis", "val")
    >>> ev.reset()
    >>> for name in ev.sequence_names:
    ...     ev.process(name, "runs/stm/val")
    >>> result = ev.evaluate()
    """

    def __init__(
        self,
        data_root: str | os.PathLike,
        split: str = "val",
        resolution: str = "480p",
        *,
        ignore_extra_ids: bool = False,
        bound_th: float = DEFAULT_BOUND_TH,
        task: str = "auto",
        benchmark: Benchmark | None = None,
    ):
        self.benchmark = benchmark or open_benchmark(data_root, split, resolution, task)
        self.dataset = self.benchmark.dataset
        self.ignore_extra_ids = ignore_extra_ids
        self.bound_th = bound_th
        self._scores: dict[str, SequenceScores] = {}

    @property
    def split(self) -> str:
        return self.benchmark.split

    @property
    def task(self) -> str:
        return self.benchmark.task

    @property
    def sequence_names(self) -> list[str]:
        """The split's sequences in file order, each once (the official toolkit keys them in a dict)."""
        return self.benchmark.sequence_names

    def ground_truth(self, names: Iterable[str] | None = None) -> list[GroundTruth]:
        """Annotation lists of ``names`` (default: the split); one DataError lists every problem."""
        return self.benchmark.ground_truth(None if names is None else list(names))

    def reset(self) -> None:
        """Forget every processed sequence."""
        self._scores.clear()

    def process(self, sequence_name: str, results: str | os.PathLike | MaskReader) -> SequenceScores:
        """Score one sequence from a results folder/zip (path) or any :class:`MaskReader`."""
        if isinstance(results, (str, os.PathLike)):
            reader, where = _open_source(self.task, results), str(results)
        else:
            reader, where = results, "predictions"
        (gt,) = self.ground_truth([sequence_name])
        check_predictions([gt], reader, where)
        scores = score_sequence(gt, reader, ignore_extra_ids=self.ignore_extra_ids, bound_th=self.bound_th)
        self.add(scores)
        return scores

    def process_sequence(self, sequence_name: str, masks: Mapping[str, np.ndarray]) -> SequenceScores:
        """Score one sequence from in-memory ``{frame name: H,W id mask}`` predictions."""
        return self.process(sequence_name, ArrayResults({sequence_name: masks}))

    def add(self, scores: SequenceScores) -> None:
        """Record scores computed elsewhere (e.g. in a worker process)."""
        if scores.name not in self.sequence_names:
            raise DataError(f"sequence {scores.name!r} is not in split {self.split!r}")
        if scores.n_objects == 0:
            log.warning("sequence %s has no objects in its first annotation; it adds no rows", scores.name)
        self._scores[scores.name] = scores

    def evaluate(self, *, require_all: bool = False) -> EvaluationResult:
        """The tables over the processed sequences, in split order."""
        missing = [n for n in self.sequence_names if n not in self._scores]
        if require_all and missing:
            raise DataError(f"sequences not evaluated: {', '.join(missing)}")
        scores = [self._scores[n] for n in self.sequence_names if n in self._scores]
        if not any(s.n_objects for s in scores):
            raise DataError(f"nothing to evaluate in split {self.split!r}: no objects in the processed sequences")
        result = EvaluationResult.from_scores(self.split, self.benchmark.resolution, scores, self.task)
        if self.task == "mosev2":
            result.extra, result.object_extra = mosev2_summary(result)
        else:
            result.extra = benchmark_extras(result)
        return result


@dataclass(frozen=True)
class _Task:
    gt: GroundTruth
    results: MaskReader
    ignore_extra_ids: bool
    bound_th: float
    stop_at_late: bool = False


def _run_task(task: _Task) -> SequenceScores:
    return score_sequence(task.gt, task.results, ignore_extra_ids=task.ignore_extra_ids, bound_th=task.bound_th,
                          stop_at_late=task.stop_at_late)


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork on Linux, spawn elsewhere.

    fork starts workers in milliseconds; spawn and forkserver re-import the caller's ``__main__``
    in every worker (for the ``vosbench`` script: every verb module, torch included, seconds each).
    """
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (even by SIGKILL); elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() == 1:  # the parent died before the request: nothing will signal us
            os._exit(1)


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _fork_signals_blocked():
    """Hold SIGINT/SIGTERM while workers are forked: a worker that got one before its initializer ran
    would run the parent's handler and print a traceback. The worker unblocks them once its own
    handlers are set; the parent gets any that arrived when this block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _worker_init() -> None:
    """Tie a worker's life to its parent and give it its own std streams.

    The parent handles Ctrl-C (SIGINT goes to the whole process group) and SIGTERM by stopping
    every worker, so workers ignore SIGINT and die with the parent.

    A thread of the parent (the CLI's progress display) may have held a std stream's lock at the
    moment of the fork; the worker would then block flushing it when it exits. Workers never log
    or print; this only keeps their exit safe.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):  # blocked by the parent around the fork (_fork_signals_blocked)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    _die_with_parent()
    try:
        sys.stdout = open(os.dup(1), "w", buffering=1, closefd=True)  # noqa: SIM115
        sys.stderr = open(os.dup(2), "w", buffering=1, closefd=True)  # noqa: SIM115
    except OSError:  # no std streams to duplicate: nothing to protect
        pass


def _score_all(tasks: list[_Task], workers: int, progress: Progress) -> list[SequenceScores]:
    """Score tasks in-process (workers <= 1) or in a process pool; errors propagate, never hang."""
    if workers <= 1:
        out = []
        for task in tasks:
            out.append(_run_task(task))
            progress.advance(len(task.gt.scored_frames))
        return out
    by_name: dict[str, SequenceScores] = {}
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(), initializer=_worker_init)
    finished = False
    restore = _sigterm_raises()
    try:
        # longest sequences first, for balance; results are put back in split order below
        ordered = sorted(tasks, key=lambda t: -len(t.gt.paths))
        with _fork_signals_blocked():  # the first submit forks every worker
            pending = {pool.submit(_run_task, t): t for t in ordered}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                task = pending.pop(fut)
                try:
                    by_name[task.gt.name] = fut.result()
                except BrokenProcessPool:
                    raise VosbenchError(
                        "an evaluation worker process died unexpectedly (killed by the OS, e.g. out of memory?); "
                        "rerun with --workers 1 to see the failure"
                    ) from None
                progress.advance(len(task.gt.scored_frames))
        finished = True
    finally:
        if not finished:  # an error, Ctrl-C or SIGTERM: stop the workers now, do not wait for their tasks
            _stop_workers(pool)
        pool.shutdown(wait=True, cancel_futures=True)
        restore()
    return [by_name[t.gt.name] for t in tasks]


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError, ValueError):
            proc.terminate()


def _sigterm_raises():
    """While scoring, SIGTERM raises KeyboardInterrupt in the main thread, so the pool is stopped
    (and the CLI prints one line) instead of the parent vanishing and leaving its workers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, old)


MAX_DEFAULT_WORKERS = 8  # evaluation is memory-light, but each worker is still a process


def default_workers(n_sequences: int) -> int:
    """One worker per CPU, at most 8 and at most one per sequence."""
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS, n_sequences))


def evaluate_results(
    data: str | os.PathLike,
    results: str | os.PathLike,
    split: str = "val",
    resolution: str = "480p",
    *,
    workers: int | None = None,
    ignore_extra_ids: bool = False,
    progress: Progress | None = None,
    json_path: str | os.PathLike | None = None,
    write_csv: bool = True,
    bound_th: float = DEFAULT_BOUND_TH,
    task: str = "auto",
    allow_mixed: bool = False,
) -> EvaluationResult:
    """Evaluate a results folder or submission zip against split ``split`` of the DAVIS root ``data``.

    Writes ``global_results-<split>.csv`` and ``per-sequence_results-<split>.csv`` into the
    results folder (next to a zip), and with ``json_path`` the full-precision values. Always
    recomputes. Every missing file is listed in one error before any scoring starts. With
    ``workers`` > 1 sequences are scored in a process pool (fork on Linux; elsewhere spawn, which
    needs the caller's script to be guarded by ``if __name__ == "__main__":``); an error in a
    worker is raised here, a worker that dies ends the run with a VosbenchError.

    ``task`` picks the benchmark's rules (:mod:`vosbench.metrics.benchmarks`); ``"auto"`` detects
    it from the layout and the first annotations, and when DAVIS-2017 rules meet annotated objects
    that the first frame lacks, scores the split again with the ``late`` rules.
    ``result.task`` says which rules were used. A results folder whose sequences' provenance
    records name different runs is refused (:func:`~vosbench.provenance.require_one_run`) unless
    ``allow_mixed``.
    """
    progress = ensure_progress(progress)
    if json_path is not None and Path(json_path).is_dir():
        raise DataError(f"{json_path}: --json names a folder; give the path of the JSON file to write")
    benchmark = open_benchmark(data, split, resolution, task)
    source = _open_source(benchmark.task, results)
    if isinstance(source, FolderResults):
        require_one_run(source.root, benchmark.sequence_names, allow_mixed)
    for folder in {source.output_dir, *([Path(json_path).parent] if json_path is not None else [])}:
        sweep_temps(folder)  # temp files of a run killed while writing its tables
    while True:
        evaluator = DavisEvaluator(data, split, resolution, ignore_extra_ids=ignore_extra_ids, bound_th=bound_th,
                                   benchmark=benchmark)
        gts = evaluator.ground_truth()
        check_predictions(gts, source, str(results))
        detect_late = task == "auto" and benchmark.task == "davis2017"
        tasks = [_Task(gt, source, ignore_extra_ids, bound_th, detect_late) for gt in gts]
        n_workers = default_workers(len(tasks)) if workers is None else max(1, min(workers, len(tasks)))
        progress.start(f"evaluating {len(tasks)} sequences", total=sum(len(gt.scored_frames) for gt in gts))
        scores = _score_all(tasks, n_workers, progress)
        late = [(s.name, s.late_ids) for s in scores if s.late_ids]
        if detect_late and late:
            name, ids = late[0]
            benchmark = benchmark.with_task(
                "late", f"objects absent from the first frame are annotated later ({name}: id(s) {', '.join(map(str, ids))})"
            )
            continue
        break
    for s in scores:
        evaluator.add(s)
    result = evaluator.evaluate(require_all=True)
    result.detected = benchmark.detected
    try:
        if write_csv:
            result.write_csvs(source.output_dir)
        if json_path is not None:
            result.write_json(json_path)
    except OSError as exc:
        raise DataError(f"{exc.filename or source.output_dir}: cannot write the results ({exc.strerror or exc})") from None
    return result
