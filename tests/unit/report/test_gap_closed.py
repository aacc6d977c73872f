"""benchmarks/gap_closed.py: the gap closed is Δ over the oracle's Δ, its interval the
corrected-t interval over the same Δ, and a row is never credited with closing a gap that
does not exist."""

import importlib.util
import json
from pathlib import Path

import pytest

from domadapt.evaluate import summarize_runs
from domadapt.report import write_results
from domadapt.stats import corrected_resampled_ttest

ROOT = Path(__file__).resolve().parents[3]
FOLDS, SEEDS = 5, 2


def _module():
    spec = importlib.util.spec_from_file_location("gap_closed", ROOT / "benchmarks" / "gap_closed.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _source(f, s):
    return 0.20 + 0.02 * ((3 * f + s) % 5)  # spread over the runs, not a constant


def _run(label, f, s, uar):
    return {"method": label, "fold": f, "seed": s, "trained": "test", "history": {},
            "metrics": {"accuracy": uar, "uar": uar, "macro_f1": uar, "n": 100},
            "n_train": 300, "n_val": 60, "n_test": 100,
            "n_train_subjects": 26, "n_val_subjects": 6, "n_test_subjects": 8}


def _write(root: Path, rows: dict) -> None:
    """A run folder with per-run files and a results.json compared against source_only."""
    result_rows = []
    for label, fn in rows.items():
        runs = [_run(label, f, s, fn(f, s)) for f in range(FOLDS) for s in range(SEEDS)]
        folder = root / "runs" / label.replace(":", "-").replace(" ", "-").replace("(", "-").replace(")", "-")
        folder.mkdir(parents=True)
        for r in runs:
            (folder / f"fold{r['fold']}-seed{r['seed']}.json").write_text(json.dumps(r))
        result_rows.append({"method": label, "backbone": "mlp",
                            "metrics": {m: summarize_runs(r["metrics"][m] for r in runs) for m in ("accuracy", "uar", "macro_f1")}})
    write_results(root, {"recipe": "t", "data": "synthetic", "title": "t", "subject_overlap": False,
                         "config": {}, "git": "x", "skipped": [], "rows": result_rows}, baseline="source_only")


def _line(text: str, row: str) -> list[str]:
    return [c.strip() for c in next(x for x in text.splitlines() if x.startswith(f"| {row} |")).split("|")[1:-1]]


def test_gap_closed_is_delta_over_the_oracle_gap_with_its_interval(tmp_path):
    half = lambda f, s: _source(f, s) + 0.05 + 0.01 * ((f + s) % 3)  # noqa: E731  about half the gap
    _write(tmp_path, {"source_only": _source, "target_only (oracle)": lambda f, s: _source(f, s) + 0.10,
                      "align:mmd": half, "align:dann": lambda f, s: _source(f, s) - 0.01})
    text = _module().table(tmp_path, "target_only (oracle)")
    diffs = [half(f, s) - _source(f, s) for f in range(FOLDS) for s in range(SEEDS)]
    ref = corrected_resampled_ttest(diffs, n_train=32, n_test=8)
    gap = 0.10  # the oracle is 10 points above source_only in every run
    assert text.startswith("gap (oracle - source_only): 10.00 points")
    mmd = _line(text, "align:mmd")
    assert mmd[4] == f"{100 * ref['mean'] / gap:+.0f} % [{100 * ref['ci_low'] / gap:+.0f}, {100 * ref['ci_high'] / gap:+.0f}]"
    assert mmd[3] == f"{100 * ref['mean']:+.2f} [{100 * ref['ci_low']:+.2f}, {100 * ref['ci_high']:+.2f}]"
    assert ref["ci_low"] > 0 and mmd[5] == f"{FOLDS * SEEDS}/{FOLDS * SEEDS}"
    assert _line(text, "align:dann")[4] == "-10 % [-10, -10]" and _line(text, "align:dann")[5] == f"0/{FOLDS * SEEDS}"
    assert _line(text, "source_only")[3:5] == ["(baseline)", "(0 %)"]


def test_no_gap_closed_when_the_oracle_is_not_above_the_baseline(tmp_path):
    _write(tmp_path, {"source_only": _source, "target_only (oracle)": lambda f, s: _source(f, s) - 0.02,
                      "align:mmd": lambda f, s: _source(f, s) + 0.05})
    text = _module().table(tmp_path, "target_only (oracle)")
    assert _line(text, "align:mmd")[4] == "– (no gap)"
    with pytest.raises(SystemExit, match="no row 'oracle'"):
        _module().table(tmp_path, "oracle")
