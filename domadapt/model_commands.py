"""``domadapt predict`` and ``domadapt export``: the command lines of a model folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_predict_parser(sub) -> None:
    pr = sub.add_parser(
        "predict",
        help="class probabilities of audio files from a model folder (python -m domadapt.recipe NAME --final ...)",
        description="Predict every AUDIO (a file, a folder searched recursively, or a CSV manifest of path[,subject] "
        "rows) with the model folder MODEL. Files that cannot be predicted (unreadable, empty, silent, too short "
        "for one window) are listed as skipped with the reason; the exit status is 1 only when nothing was predicted.",
    )
    pr.add_argument("model", type=Path, metavar="MODEL", help="a model folder (model.json + model.safetensors)")
    pr.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files, folders, or .csv manifests (path[,subject])")
    pr.add_argument(
        "--out", type=Path, metavar="PREDS.csv",
        help="write the per-file CSV here (and PREDS.subjects.csv where subjects are given); default: print it",
    )
    pr.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default auto: CUDA when present")
    pr.set_defaults(func=_predict)


def _predict(args: argparse.Namespace) -> int:
    from domadapt.inference import expand_inputs, load_model

    model = load_model(args.model, device=args.device)
    paths, subjects = expand_inputs(args.audio)
    table = model.predict_many(paths, subjects=subjects, progress=not args.quiet)
    for skip in table.skipped:
        print(f"skipped {skip.path}: {skip.reason}", file=sys.stderr)
    if args.out is None:
        _print_csv(table.rows)
    else:
        table.write_csv(args.out)
        if table.subjects:
            table.write_csv(args.out.with_suffix(".subjects.csv"), table.subjects)
    print(
        f"{len(table.rows)} of {len(paths)} files predicted, {len(table.skipped)} skipped"
        + (f"; written: {args.out}" + (f", {args.out.with_suffix('.subjects.csv')}" if table.subjects else "") if args.out else ""),
        file=sys.stderr,
    )
    return 0 if table.rows else 1


def _print_csv(rows: list[dict]) -> None:
    import csv

    if rows:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def add_export_parser(sub) -> None:
    ex = sub.add_parser(
        "export",
        help="the model folder's network (window features -> probabilities) as TorchScript or ONNX",
        description="Export the network from window features to class probabilities (the folder's standardisation "
        "inside; the MFCC front-end stays in Python, see domadapt/export.py). Written into MODEL unless --out.",
    )
    ex.add_argument("model", type=Path, metavar="MODEL")
    ex.add_argument("--format", required=True, choices=("torchscript", "onnx"))
    ex.add_argument("--out", type=Path, metavar="FILE")
    ex.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from domadapt.export import export_model

    path = export_model(args.model, args.format, out=args.out)
    print(f"written: {path}")
    return 0
