"""DAVIS-2017 metrics: J (region), F (boundary), per-object mean/recall/decay, global tables, and
an evaluator that scores result folders or submission zips exactly as the official toolkit; the
rules of DAVIS-2016, late objects, YouTube-VOS, MOSE and LVOS (:mod:`vosbench.metrics.benchmarks`)."""

from vosbench.metrics.benchmarks import TASKS, Benchmark, open_benchmark
from vosbench.metrics.boundary import boundary_f_measure, boundary_tolerance, disk_footprint, seg2bmap
from vosbench.metrics.evaluator import DavisEvaluator, GroundTruth, evaluate_results, score_sequence
from vosbench.metrics.frame import score_frame
from vosbench.metrics.jaccard import jaccard
from vosbench.metrics.report import EvaluationResult, ObjectResult, SequenceScores
from vosbench.metrics.results_source import ArrayResults, FolderResults, MaskReader, ZipResults, open_results
from vosbench.metrics.summary import GlobalSummary, Statistics, decay_bin_edges, statistics, summarize
from vosbench.metrics.validation import ObjectIds, read_prediction

__all__ = [
    "TASKS",
    "ArrayResults",
    "Benchmark",
    "DavisEvaluator",
    "EvaluationResult",
    "FolderResults",
    "GlobalSummary",
    "GroundTruth",
    "MaskReader",
    "ObjectIds",
    "ObjectResult",
    "SequenceScores",
    "Statistics",
    "ZipResults",
    "boundary_f_measure",
    "boundary_tolerance",
    "decay_bin_edges",
    "disk_footprint",
    "evaluate_results",
    "jaccard",
    "open_benchmark",
    "open_results",
    "read_prediction",
    "score_frame",
    "score_sequence",
    "seg2bmap",
    "statistics",
    "summarize",
]
