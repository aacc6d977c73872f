"""The results files every recipe writes, the statistics behind them, the comparison across
runs, and the plots.

The results dict is a contract other code relies on::

    {"recipe": str, "data": "synthetic" | "real", "title": str, "subject_overlap": bool,
     "config": {...}, "git": str | None, "skipped": [{"path", "reason"}],
     "rows": [{"method": str, "backbone": str,
               "metrics": {"accuracy" | "uar" | "macro_f1" | "subject_accuracy" | ...:
                           {"mean", "std", "runs": [...]}}}]}

Metric values are fractions in [0, 1]; tables show them in percent. ``merge_results`` may
also produce ``data == "mixed"`` (runs on synthetic and real data side by side).
Every file is written atomically (a temp file in the same folder, then ``os.replace``), so
a crash never leaves a half-written results.json behind.

The package, by job: :mod:`~domadapt.report.runs` (the results dict's checks and the per-run
files), :mod:`~domadapt.report.statistics` (bootstrap intervals, the paired comparison with a
baseline row), :mod:`~domadapt.report.tables` (results.md and the terminal table),
:mod:`~domadapt.report.files` (writing, reading and merging the results files),
:mod:`~domadapt.report.plots` and :mod:`~domadapt.report.rows` (a run's per-run results
summarised into rows).
"""

from __future__ import annotations

from domadapt.report.files import CSV_COLUMNS, SUMMARY_CSV_COLUMNS, load_results, merge_results, write_results
from domadapt.report.plots import plot_confusion, plot_curves, plot_feature_space, plot_learning_curve
from domadapt.report.runs import DATA_KINDS, RowRuns, find_baseline, load_row_runs, row_ids
from domadapt.report.statistics import COMPARED_METRICS, SUBJECT_METRICS, add_statistics, compare, subject_intervals
from domadapt.report.tables import TABLE_COLUMNS, format_markdown, format_table

__all__ = [
    "DATA_KINDS",
    "TABLE_COLUMNS",
    "CSV_COLUMNS",
    "SUMMARY_CSV_COLUMNS",
    "COMPARED_METRICS",
    "SUBJECT_METRICS",
    "RowRuns",
    "load_row_runs",
    "row_ids",
    "find_baseline",
    "subject_intervals",
    "compare",
    "add_statistics",
    "write_results",
    "load_results",
    "merge_results",
    "format_table",
    "format_markdown",
    "plot_confusion",
    "plot_curves",
    "plot_feature_space",
    "plot_learning_curve",
]
