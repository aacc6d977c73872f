"""The ``domadapt`` console command.

    domadapt data summary CORPUS ROOT [--json]   what a corpus tree holds, and what was skipped
    domadapt report RUN_DIR [RUN_DIR ...]        merge runs into one comparison table
        [--baseline NAME] [--out DIR]            ... with paired comparisons against a row
    domadapt recipe NAME [...]                   same as python -m domadapt.recipe NAME [...]
    domadapt list [KIND] [--markdown]            registered names (KIND: each with its doc and options;
                                                 --markdown: the option reference of every kind)
    domadapt sweep RECIPE --space S.toml --trials N   tune one method on validation, test the best once
    domadapt predict MODEL AUDIO... [--out P.csv]  a model folder's predictions for files, folders, a CSV
    domadapt export MODEL --format torchscript|onnx   the model's network (features -> probabilities)

    --import MODULE (before the command, repeatable) imports a module that registers your
    own corpora, backbones, losses, methods, splitters, schedules, executors or
    feature extractors first.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from domadapt.errors import DomadaptError
from domadapt.recipe import add_verbosity, set_log_level
from domadapt.plugins import import_modules


def _data_summary(args: argparse.Namespace) -> int:
    from domadapt.corpora import load_corpus
    from domadapt.corpora.summary import format_summary, summarize

    summary = summarize(load_corpus(args.corpus, args.root))
    print(json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary))
    return 0


def _report(args: argparse.Namespace) -> int:
    from domadapt.report import (
        add_statistics, find_baseline, format_markdown, format_table, merge_results, write_results,
    )

    merged = merge_results(args.run_dirs)
    if args.baseline:
        find_baseline(merged, args.baseline)  # a wrong name is a usage error here, before any work
    results = add_statistics(merged, baseline=args.baseline)  # recomputed from each run's per-run files
    print(format_markdown(results) if args.markdown else format_table(results))
    if args.out is not None:
        paths = write_results(args.out, results)
        print(f"written: {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    from domadapt.option_reference import KINDS, entry_lines, markdown_reference
    from domadapt.recipe_loader import list_recipes, recipes_location

    if args.markdown:
        print(markdown_reference())
        return 0
    folder, origin = recipes_location()
    if args.kind is None:
        for title, registry in KINDS.items():
            print(f"{title}: {', '.join(registry.names()) or '(none registered)'}")
        print(f"recipes ({origin}, {folder}): {', '.join(list_recipes())}")
        return 0
    if args.kind == "recipes":
        print(f"# {origin}: {folder} (a recipe of your own: python -m domadapt.recipe PATH.toml)")
        for name in list_recipes():
            print(f"{name}: {_recipe_description(name)}")
            print(f"    {folder / (name + '.toml')}")
        return 0
    registry = KINDS[args.kind]
    for name in registry.names():
        print("\n".join(entry_lines(registry, name)))
    return 0


def _recipe_description(name: str) -> str:
    from domadapt.recipe_loader import load_recipe

    return str(load_recipe(name).get("recipe", {}).get("description", ""))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="domadapt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_verbosity(p)
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module (dotted name on sys.path, or a .py file) that registers your own "
        "entries, before the command; repeatable",
    )
    sub = p.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="look at a corpus").add_subparsers(dest="data_command", required=True)
    summ = data.add_parser("summary", help="utterances, subjects, classes, durations, rates, skipped files")
    summ.add_argument("corpus", help="registered corpus name (casia, iemocap, modma, daic_woz, folder)")
    summ.add_argument("root", type=Path)
    summ.add_argument("--json", action="store_true", help="machine-readable output")
    summ.set_defaults(func=_data_summary)
    rep = sub.add_parser(
        "report",
        help="merge run folders into one comparison table, the statistics recomputed from their per-run files",
    )
    rep.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    rep.add_argument("--markdown", action="store_true", help="print results.md's text instead of the plain table")
    rep.add_argument(
        "--baseline",
        metavar="NAME",
        help="compare every row with this one (e.g. target_only, or recipe/target_only when several runs "
        "hold one), paired over the same (fold, seed) runs: Δ UA with a 95%% CI (corrected resampled "
        "t-test), Wilcoxon p, Holm across the rows, a significance mark",
    )
    rep.add_argument(
        "--out", type=Path, metavar="DIR", help="also write results.{json,md,csv} and results_summary.csv here"
    )
    rep.set_defaults(func=_report)
    lst = sub.add_parser("list", help="registered names; with KIND each entry's doc, options, defaults, allowed values")
    lst.add_argument(
        "kind",
        nargs="?",
        choices=(
            "corpora", "backbones", "losses", "methods", "learners", "splitters", "schedules", "validators", "executors",
            "extractors", "recipes",
        ),
    )
    lst.add_argument("--markdown", action="store_true", help="print the option reference of every kind (docs/options.md)")
    lst.set_defaults(func=_list)
    sub.add_parser("recipe", help="run a recipe (see python -m domadapt.recipe --help)", add_help=False)
    _sweep_parser(sub)
    _model_parsers(sub)
    return p


def _model_parsers(sub) -> None:
    from domadapt.model_commands import add_export_parser, add_predict_parser

    add_predict_parser(sub)
    add_export_parser(sub)


def _sweep_parser(sub) -> None:
    from domadapt.recipe import add_executor_arguments

    sw = sub.add_parser(
        "sweep",
        help="tune one method's settings with Optuna on validation subjects; test the best once",
        description="Optuna TPE (or a grid) over a space file (see domadapt/sweep.py for its format); objective "
        "(--objective, docs/model-selection.md): UA on target validation subjects carved from each fold's training "
        "subjects (target_val, an oracle in unsupervised DA), UA on held-out source rows, DEV, or a validator of the "
        "unlabelled target's predictions, averaged over folds; every trial records every objective. The test folds "
        "are read only by the final run(s). Run the same command again to continue a killed sweep.",
    )
    sw.add_argument("recipe", help="recipe name or path to a .toml")
    sw.add_argument("--space", type=Path, required=True, metavar="SPACE.toml", help='[params."train.lr"] low/high/log or choices')
    sw.add_argument("--trials", type=int, metavar="N", help="completed trials to reach (required for tpe; grid: its size)")
    sw.add_argument(
        "--objective", default="target_val", metavar="NAME",
        help="what the search maximises: target_val (the default; target labels: an oracle in unsupervised DA), "
        "source_val, dev, or a validator name (snd, im, ...)",
    )
    sw.add_argument("--sampler", default="tpe", choices=("tpe", "grid"), help="tpe, or grid (every combination of the choices once)")
    sw.add_argument(
        "--test-every-pick", action="store_true",
        help="also run each other objective's pick on the test folds (OUT/picks/), to set its test UA beside the chosen one",
    )
    sw.add_argument("--storage", metavar="URL", help="SQLAlchemy URL of the study (default sqlite:///OUT/study.db)")
    sw.add_argument("--out", type=Path, metavar="DIR", help="output folder (default runs/NAME-sweep-TIMESTAMP)")
    sw.add_argument("--methods", metavar="NAME", help="the method to tune (needed when the recipe has several)")
    sw.add_argument("--quick", action="store_true", help="the recipe's [quick] settings")
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE", help="a fixed override")
    sw.add_argument("--source-root", action="append", type=Path, default=[], metavar="DIR", help="as for a recipe")
    sw.add_argument("--target-root", type=Path, metavar="DIR", help="as for a recipe")
    sw.add_argument("--device", default="auto", help="auto | cpu | cuda")
    sw.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch")
    sw.add_argument("--cache-dir", type=Path, help="synthetic corpora and feature cache")
    sw.add_argument("--quiet", action="store_true", help="only the trial lines and the final table")
    add_executor_arguments(sw)
    sw.set_defaults(func=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    import time

    import torch

    from domadapt.recipe_loader import build_config, load_recipe
    from domadapt.device import resolve_device
    from domadapt.run import extract_domains, load_corpora
    from domadapt.outdir_lock import OutDirLock
    from domadapt.recipe import build_executor_from, parse_overrides
    from domadapt.report import format_table, load_results
    from domadapt.selection import check_objective
    from domadapt.sweep import SweepSetup, check_space, grid_size, load_space, run_sweep, tuned_method

    check_objective(args.objective)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    tree = load_recipe(args.recipe)
    overrides = parse_overrides(args.overrides)
    cfg = build_config(tree, overrides=overrides, quick=args.quick)
    space = load_space(args.space)
    check_space(space, tree, overrides=overrides, quick=args.quick, where=args.space)
    trials = args.trials if args.trials is not None or args.sampler != "grid" else grid_size(space, where=args.space)
    if trials is None or trials < 1:
        raise DomadaptError(f"--trials {trials}: expected at least 1")
    out = args.out or Path("runs") / f"{cfg.name}-sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    setup = SweepSetup(
        tree=tree, space=space, trials=trials, out=out, method=tuned_method(cfg, args.methods),
        overrides=overrides, quick=args.quick, storage=args.storage, objective=args.objective, sampler=args.sampler,
        test_every_pick=args.test_every_pick,
    )
    device = resolve_device(args.device)
    trial_lines = lambda text="", *a, **k: print(text) if str(text).startswith(("trial ", "best", "picks", "|")) else None  # noqa: E731
    with OutDirLock(out):  # a second sweep on this folder is refused before any data is read
        sources, target = load_corpora(
            cfg, source_roots=list(args.source_root), target_root=args.target_root, cache_dir=args.cache_dir
        )
        domains = extract_domains(cfg, sources, target, device=device, cache_dir=args.cache_dir)
        with build_executor_from(args) as executor:
            run_sweep(setup, domains, device=device, executor=executor, say=trial_lines if args.quiet else print)
    print()
    print(format_table(load_results(out / "final")))
    print(f"\n{out}/best.toml: the chosen setting as a recipe; {out}/final/results.{{json,md,csv}}: its test folds")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    leading = _leading_options(argv)  # domadapt -v --import m recipe NAME: forwarded to the recipe
    if argv[:1] == ["recipe"]:
        from domadapt.recipe import main as recipe_main

        return recipe_main([*argv[1:], *leading])
    args = build_parser().parse_args([*leading, *argv])
    set_log_level(args.verbose)
    try:
        import_modules(args.imports)
        return args.func(args)
    except DomadaptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _leading_options(argv: list[str]) -> list[str]:
    """Remove the options before the command that a recipe takes too (``--import MODULE``,
    ``--import=MODULE``, ``-v``, ``-vv``, ``--verbose``, ``-q``, ``--quiet``) from ``argv``
    (in place) and return them."""
    options = []
    while argv:
        if argv[0] == "--import" and len(argv) > 1:
            options += argv[:2]
            del argv[:2]
        elif argv[0].startswith("--import=") or argv[0] in ("--verbose", "--quiet", "-q") or re.fullmatch(r"-v+", argv[0]):
            options.append(argv.pop(0))
        else:
            break
    return options


if __name__ == "__main__":
    sys.exit(main())
