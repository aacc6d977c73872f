"""The comparison table: results.md (:func:`format_markdown`) and the terminal's text
(:func:`format_table`)."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from domadapt.report.runs import _validate, row_ids
from domadapt.report.statistics import COMPARED_METRICS

# (metric key, column header) of the comparison tables, in order
TABLE_COLUMNS = (
    ("accuracy", "Accuracy (WA)"),
    ("uar", "UA"),
    ("macro_f1", "Macro-F1"),
    ("subject_accuracy", "Subject acc."),
)
RUNS_METRIC = "accuracy"  # the metric whose per-run values (fold x seed) the tables list
GAP_HEADER = "A-dist. before → after"  # proxy A-distance, held-out general features (0 = no gap, 2 = separable)
_MAX_SKIPPED_SHOWN = 100  # results.md lists this many skipped files; results.json has all


def _flags(results: Mapping[str, Any]) -> list[str]:
    flags = []
    if results["data"] == "synthetic":
        flags.append("SYNTHETIC stand-in data")
    elif results["data"] == "mixed":
        flags.append("MIXED data: some runs on SYNTHETIC stand-in data")
    if results["subject_overlap"]:
        flags.append("subjects overlap between train and test")
    return flags


def _title(results: Mapping[str, Any]) -> str:
    flags = _flags(results)
    return results["title"] + (f" ({'; '.join(flags)})" if flags else "")


def _pct(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def _pp(x: float) -> str:
    """A difference in percentage points, signed."""
    return f"{100 * x:+.2f}"


def _interval_text(d: Mapping[str, Any], key: str = "mean_diff") -> str:
    return f"{_pp(d[key])} [{_pp(d['ci_low'])}, {_pp(d['ci_high'])}]"


def _cells(row: Mapping[str, Any], rid: str, comparison: Mapping[str, Any] | None) -> list[str]:
    cells = [row["method"], row["backbone"]]
    boot = row.get("subject_bootstrap") or {}
    for key, _ in TABLE_COLUMNS:
        s = row["metrics"].get(key)
        missing = s is None or _pct(s["mean"]) == "–"
        text = "–" if missing else f"{_pct(s['mean'])} ± {_pct(s['std'])}"
        if not missing and "ci_low" in boot.get(key, {}):
            text += f" [{_pct(boot[key]['ci_low'])}, {_pct(boot[key]['ci_high'])}]"
        cells.append(text)
    cells += [_validation_cell(row), _gap_cell(row)]
    if comparison is not None:
        cells += _comparison_cells(rid, comparison)
    s = row["metrics"].get(RUNS_METRIC)
    cells.append("–" if s is None else ", ".join(_pct(v) for v in s["runs"]))
    return cells


def _comparison_cells(rid: str, comparison: Mapping[str, Any]) -> list[str]:
    if rid == comparison["baseline"]:
        return ["(baseline)", ""]
    c = comparison["rows"].get(rid, {})
    d = c.get(comparison.get("metric", COMPARED_METRICS[0]), {})
    if "mean_diff" not in d:
        return ["–", ""]
    return [_interval_text(d), c.get("mark", "")]


def _validation_cell(row: Mapping[str, Any]) -> str:
    """The selected validation UA; runs still at chance on validation are flagged."""
    v = row.get("validation")
    if not v or v.get("uar") is None:
        return "–"
    text = _pct(v["uar"]["mean"])
    if v["runs_at_chance"]:
        text += f" (AT CHANCE {v['runs_at_chance']}/{v['runs_judged']})"
    return text


def _gap_cell(row: Mapping[str, Any]) -> str:
    """The proxy A-distance of the held-out general features, before -> after training."""
    gap = row.get("domain_gap")
    if not gap:
        return "–"
    a = gap["general"]["a_distance"]
    return f"{a['before']['mean']:.2f} → {a['after']['mean']:.2f}"


def _comparison(results: Mapping[str, Any]) -> Mapping[str, Any] | None:
    c = results.get("comparison")
    return c if c and "error" not in c else None


def _headers(comparison: Mapping[str, Any] | None = None) -> list[str]:
    head = ["Method", "Backbone", *(h for _, h in TABLE_COLUMNS), "Val. UA", GAP_HEADER]
    if comparison is not None:
        head += [f"Δ UA vs {comparison['baseline']} [95% CI]", "Sig."]
    return head + ["Accuracy per run"]


def _n_runs(results: Mapping[str, Any]) -> str:
    counts = sorted({len(s["runs"]) for r in results["rows"] for s in r["metrics"].values()})
    return "/".join(str(c) for c in counts) or "0"


def _bootstrap_legend(results: Mapping[str, Any]) -> str | None:
    linkings = {iv.get("linking") for r in results["rows"] for iv in (r.get("subject_bootstrap") or {}).values()}
    linkings.discard(None)
    if not linkings:
        return None
    text = ("[lo, hi] after a subject-level mean: 95% bootstrap interval over test subjects "
            "(drawn within each test fold and class; all runs of a fold on the same draw)")
    if "confusion, comonotone" in linkings:
        text += ("; the runs store confusion matrices only, so a fold's seeds are lined up hit with hit: "
                 "the interval is conservative (at least as wide as with per-subject predictions)")
    if "independent" in linkings:
        text += "; some folds' seeds disagree on the class counts and were resampled separately (narrower)"
    return text + "."


def _sizes_text(sizes: Mapping[str, Any] | None) -> str:
    if not sizes:
        return "n_test/n_train unknown"
    return f"n_test/n_train = {sizes['n_test']:.4g}/{sizes['n_train']:.4g} {sizes['unit']} per fold"


def _comparison_legend(comparison: Mapping[str, Any]) -> str:
    n = len(comparison["holm_over"].get(comparison["metric"], []))
    return (
        f"Δ UA vs {comparison['baseline']}: mean paired difference over the same (fold, seed) runs, "
        f"percentage points, 95% CI of the corrected resampled t-test (Nadeau & Bengio 2003; "
        f"{_sizes_text(comparison['sizes'])}); Sig. * = Holm-adjusted p < {comparison['alpha']:g} "
        f"over the {n} compared row(s). Details below."
    )


def _p(x: Any) -> str:
    return "–" if x is None else (f"{x:.3g}" if x >= 1e-4 else f"{x:.1e}")


def _comparison_markdown(results: Mapping[str, Any]) -> list[str]:
    c = results.get("comparison")
    if not c:
        return []
    lines = ["", f"## Paired comparison with `{c['baseline']}`", ""]
    if "error" in c:
        return lines + [f"Not computed: {c['error']}"]
    lines.append(
        "Δ = row − baseline, percentage points, mean over the same (fold, seed) runs; 95% CI and p from the "
        f"corrected resampled t-test ({_sizes_text(c['sizes'])}), p Holm-adjusted over the rows compared "
        "on that metric (in brackets: unadjusted); Wilcoxon signed-rank p beside it (its floor with J pairs "
        "is 2/2^J). The subject bootstrap column resamples test subjects, paired."
    )
    lines.append("")
    head = ["Method", "Pairs", "Δ UA [95% CI]", "p", "Wilcoxon p", "Δ subject acc. [95% CI]", "p",
            "Wilcoxon p", "Δ subject acc. [subject bootstrap]"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---|" + "|".join(["---:"] * (len(head) - 1)) + "|")
    for rid, r in c["rows"].items():
        name = rid.replace("|", "\\|")
        if r["status"] != "compared":
            lines.append(f"| {name} | – | not compared: {r['reason'].replace('|', '/')} |" + " |" * (len(head) - 3))
            continue
        cells = [name, str(r["n_pairs"])]
        for metric in COMPARED_METRICS:
            d = r.get(metric, {})
            if "mean_diff" not in d:
                cells += [f"– ({d.get('reason', 'not computed')})", "–", "–"]
                continue
            cells += [_interval_text(d) + (f" {d['mark']}" if d["mark"] else ""),
                      f"{_p(d['p_t_holm'])} ({_p(d['p_t'])})",
                      f"{_p(d['p_wilcoxon_holm'])} ({_p(d['p_wilcoxon'])})"]
        b = r.get("subject_accuracy_bootstrap", {})
        cells.append(_interval_text(b, "estimate") if "ci_low" in b else f"– ({b.get('reason', 'not computed')})")
        lines.append("| " + " | ".join(x.replace("|", "/") for x in cells) + " |")
    notes = [(rid, r["note"]) for rid, r in c["rows"].items() if r.get("note")]
    if c.get("baseline_note"):
        notes.insert(0, (c["baseline"], c["baseline_note"]))
    if notes:
        lines += [""] + [f"- {rid}: {note}" for rid, note in notes]
    return lines


def _curve_markdown(results: Mapping[str, Any]) -> list[str]:
    """One table per learning-curve point: each method's UA and subject accuracy with the
    labelled target subjects it trained on, and its paired Δ UA against the baseline there."""
    curve = results.get("curve")
    if not curve:
        return []
    comparisons = curve.get("comparisons") or {}
    lines = ["", "## Learning curve: labelled target subjects per training fold", ""]
    lines.append("Percent, mean ± sample std over folds × seeds; plots/learning-curve.png draws the same.")
    for point in curve["points"]:
        comparison = comparisons.get(point)
        compared = comparison is not None and "error" not in comparison
        lines += ["", f"### {point} labelled subject(s)" if point != "all" else "### all labelled subjects", ""]
        if comparison is not None and not compared:
            lines += [f"Comparison not computed: {comparison['error']}", ""]
        head = ["Method", "Labelled subjects", "UA", "Subject acc."]
        if compared:
            head += [f"Δ UA vs {comparison['baseline']} [95% CI]", "Sig."]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|---|" + "|".join(["---:"] * (len(head) - 1)) + "|")
        for row, rid in zip(curve["rows"], row_ids(results)):
            at = row["points"][point]
            cells = [rid, f"{at['n_train_subjects']:.4g}"]
            cells += [f"{_pct(at[m]['mean'])} ± {_pct(at[m]['std'])}" for m in ("uar", "subject_accuracy")]
            if compared:
                cells += _comparison_cells(rid, comparison)
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def format_markdown(results: Mapping[str, Any]) -> str:
    """The ``results.md`` text: title with its warnings, the table (with the comparison
    columns when ``results["comparison"]`` exists), the comparison details, the skipped
    files."""
    _validate(results)
    comparison = _comparison(results)
    lines = [f"# {_title(results)}", ""]
    git = results["git"] or "unknown"
    lines.append(f"Recipe `{results['recipe']}` · data: {results['data']} · git: `{git}`")
    lines.append("")
    lines.append(f"Percent; mean ± sample std over {_n_runs(results)} runs (folds × seeds).")
    lines.append(
        "Val. UA: validation UA of the kept model (AT CHANCE: runs below chance + 5 points, not yet learned). "
        f"{GAP_HEADER}: proxy A-distance between held-out source and target general features "
        "(subject-grouped linear domain classifier; 0 = indistinguishable, 2 = separable), mean over runs."
    )
    legend = _bootstrap_legend(results)
    if legend:
        lines.append(legend)
    if comparison is not None:
        lines.append(_comparison_legend(comparison))
    lines.append("")
    head = _headers(comparison)
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
    for row, rid in zip(results["rows"], row_ids(results)):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(row, rid, comparison)) + " |")
    lines += _comparison_markdown(results)
    lines += _curve_markdown(results)
    skipped = results["skipped"]
    if skipped:
        lines += ["", f"## Skipped files ({len(skipped)})", ""]
        lines += [f"- `{s['path']}`: {s['reason']}" for s in skipped[:_MAX_SKIPPED_SHOWN]]
        if len(skipped) > _MAX_SKIPPED_SHOWN:
            lines.append(f"- ... and {len(skipped) - _MAX_SKIPPED_SHOWN} more (see results.json)")
    return "\n".join(lines) + "\n"


def format_table(results: Mapping[str, Any]) -> str:
    """The same table as aligned plain text, for the terminal."""
    _validate(results)
    comparison = _comparison(results)
    table = [_headers(comparison)] + [_cells(r, rid, comparison) for r, rid in zip(results["rows"], row_ids(results))]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [_title(results), f"percent; mean ± sample std over {_n_runs(results)} runs", ""]
    out += [line(table[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in table[1:]]
    legend = _bootstrap_legend(results)
    if legend or results.get("comparison"):
        out.append("")
    if legend:
        out.append(legend)
    c = results.get("comparison")
    if c and "error" in c:
        out.append(f"comparison with {c['baseline']}: not computed ({c['error']})")
    elif c:
        out.append(_comparison_legend(c).replace(" Details below.", " Details in results.md."))
        out += [f"  {rid}: not compared ({r['reason']})" for rid, r in c["rows"].items() if r["status"] != "compared"]
    if results["skipped"]:
        out += ["", f"{len(results['skipped'])} file(s) skipped (listed in results.md)"]
    return "\n".join(out) + "\n"
