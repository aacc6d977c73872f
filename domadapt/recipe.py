"""``python -m domadapt.recipe NAME``: run a recipe end to end and print its results table.

With no ``--source-root`` / ``--target-root`` the recipe runs on the embedded synthetic
stand-in corpora (generated once into the cache) and says so loudly.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
from pathlib import Path

from domadapt import __version__
from domadapt.recipe_loader import build_config, list_recipes, load_recipe, parse_value, recipe_protocols
from domadapt.errors import DomadaptError
from domadapt.outdir_lock import OutDirLock
from domadapt.plugins import import_modules

BANNER = "=" * 78


#: the learning-curve points of --curve: labelled target training subjects per fold
CURVE_POINTS = (4, 8, 16, "all")

#: the exit status of a run ended by Ctrl-C (128 + SIGINT, as a shell reports it)
EXIT_INTERRUPTED = 130


def positive_int(text: str) -> int:
    """An argparse ``type``: an int >= 1, else a usage error naming the value."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive whole number")
    return value


def add_verbosity(p: argparse.ArgumentParser) -> None:
    """``--version``, ``-v/--verbose`` and ``-q/--quiet``, the same on every entry point."""
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="more log lines: -v info (cache hits, summaries), -vv debug",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or lines and no per-run lines")


def set_log_level(verbose: int) -> None:
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m domadapt.recipe",
        description="Run a domadapt recipe (recipes/NAME.toml) and print its results table.",
    )
    p.add_argument("name", nargs="?", help=f"recipe name or path to a .toml ({', '.join(list_recipes())})")
    p.add_argument("--list", action="store_true", help="list the recipes and exit")
    add_verbosity(p)
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module (dotted name on sys.path, or a .py file) before the recipe is "
        "checked, so that its registered corpora, backbones, losses, methods ... exist; repeatable",
    )
    p.add_argument(
        "--source-root",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="root of a real source corpus (repeat once per source, in recipe order); "
        "omitted: synthetic stand-in data",
    )
    p.add_argument("--target-root", type=Path, metavar="DIR", help="root of the real target corpus")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default runs/NAME-TIMESTAMP)")
    p.add_argument("--quick", action="store_true", help="smoke-sized run (the recipe's [quick] overrides)")
    p.add_argument("--seeds", type=positive_int, help="seeds per fold (eval.seeds)")
    p.add_argument("--folds", type=positive_int, help="folds (eval.folds)")
    p.add_argument(
        "--curve",
        action="store_true",
        help=f"a learning curve: train with {', '.join(map(str, CURVE_POINTS))} labelled target subjects per fold "
        "(eval.target_subjects); writes plots/learning-curve.png and the table per point",
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default auto: CUDA when present")
    p.add_argument(
        "--sequential-seeds",
        action="store_true",
        help="train seeds one after another (train.vmap_seeds=false); by default a fold's seeds "
        "train as one vmapped model where the method allows",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the general extractor (train.compile=true): about two minutes of "
        "compiling first (cold), faster steps after; pays on long runs only (benchmarks/bench_compile.py)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="CPU threads for torch per unit (default 1: the same numbers whatever --jobs; the data "
        "preparation before the units keeps torch's choice unless this is given)",
    )
    p.add_argument("--methods", help="comma-separated subset of the recipe's methods, e.g. target_only,align:mmd")
    p.add_argument(
        "--baseline",
        metavar="NAME",
        help="compare every row with this method (e.g. target_only), paired over the same (fold, seed) runs: "
        "Δ UA with a 95%% CI (corrected resampled t-test), Wilcoxon p, Holm across the rows and a "
        "significance mark in the table and results.{md,json}",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a setting, e.g. --set train.epochs=5 (value parsed as TOML)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out (finished runs are kept)")
    p.add_argument(
        "--final",
        action="store_true",
        help="train one model of --method on ALL labelled target subjects (no test fold) and write it as a "
        "model folder to --out, for `domadapt predict` and domadapt.load_model",
    )
    p.add_argument("--method", metavar="LABEL", help="with --final: the recipe's method to train, e.g. align:mmd")
    p.add_argument(
        "--from",
        dest="from_run",
        type=Path,
        metavar="RUN_DIR",
        help="with --final: take the epoch budget from this cross-validated run of the method (the median "
        "best validation epoch over its runs); default: the recipe's epochs",
    )
    p.add_argument("--cache-dir", type=Path, help="synthetic corpora and feature cache (default ~/.cache/domadapt)")
    add_executor_arguments(p)
    return p


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    """``--executor`` and the Ray options (the recipe and ``domadapt sweep`` share them)."""
    g = p.add_argument_group("where the units run")
    g.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: the units on this machine, --jobs at a time (default); ray: every (method, fold, seeds) "
        "unit a Ray task (a local Ray instance, or a cluster with --ray-address)",
    )
    g.add_argument(
        "--jobs",
        type=positive_int,
        metavar="N",
        help="local: units at once, each in its own process; default $DOMADAPT_JOBS, else one per core "
        "as memory allows (1 on CUDA); 1 = one after another in this process",
    )
    g.add_argument("--ray-address", metavar="auto|HOST:PORT", help="join the Ray cluster `ray start` runs (default: start a local one)")
    g.add_argument("--cpus-per-run", type=float, default=1.0, metavar="N", help="CPUs reserved per unit under Ray (default 1)")
    g.add_argument(
        "--gpus-per-run",
        type=float,
        metavar="F",
        help="GPU share per unit under Ray: 0.25 packs four units on one GPU (default 1 on CUDA, else 0)",
    )


def default_jobs() -> int | None:
    """``--jobs``'s default: ``$DOMADAPT_JOBS`` (a machine's or a test suite's own choice), else
    None (one worker per core, as memory allows)."""
    value = os.environ.get("DOMADAPT_JOBS", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise DomadaptError(f"DOMADAPT_JOBS={value!r}: expected a positive whole number of worker processes")
    return int(value)


def local_jobs(args: argparse.Namespace) -> int | None:
    """The local executor's worker processes: ``--jobs``, else :func:`default_jobs`."""
    return args.jobs if args.jobs is not None else default_jobs()


def build_executor_from(args: argparse.Namespace):
    """The executor the command line asks for (Ray is imported only when it starts)."""
    from domadapt.executors import build_executor

    if args.executor == "local":
        if args.ray_address or args.gpus_per_run is not None:
            raise DomadaptError("--ray-address/--gpus-per-run need --executor ray")
        # one thread per unit unless asked: the same numbers whatever --jobs (docs/performance.md)
        return build_executor("local", jobs=local_jobs(args), threads=args.threads or 1, imports=tuple(args.imports))
    if args.jobs is not None:
        raise DomadaptError("--jobs needs --executor local (Ray's units per machine follow --cpus-per-run)")
    return build_executor(
        "ray", address=args.ray_address, cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run,
        imports=tuple(args.imports), threads=args.threads,
    )


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise DomadaptError(f"--set {item!r}: expected SECTION.KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(value.strip())
    return out


def select_methods(cfg, methods: str):
    """``cfg`` with only the rows of ``--methods`` (comma-separated labels)."""
    wanted = [m.strip() for m in methods.split(",") if m.strip()]
    known = [m.label for m in cfg.methods]
    missing = [m for m in wanted if m not in known]
    if missing:
        raise DomadaptError(f"--methods {', '.join(missing)}: not in recipe {cfg.name} ({', '.join(known)})")
    return type(cfg)(**{**cfg.__dict__, "methods": tuple(m for m in cfg.methods if m.label in wanted)})


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(list_recipes()))
        return 0
    if not args.name:
        parser.error("a recipe NAME or path to a .toml is required (--list shows the recipes)")
    set_log_level(args.verbose)
    try:
        return _run(args)
    except DomadaptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{interrupted(args.out, argv, prog=parser.prog)}", file=sys.stderr)
        return EXIT_INTERRUPTED


def interrupted(out: Path | None, argv: list[str], *, prog: str) -> str:
    """The line a Ctrl-C ends with: what ``out`` kept and the command that resumes it."""
    if out is None or not out.is_dir():
        return "interrupted before any run started: nothing kept"
    # runs/ and checkpoints/ of the run, or of each protocol's run below it
    finished = sum(1 for p in out.rglob("*.json") if "runs" in p.relative_to(out).parts[:-1])
    partial = len(list(out.rglob("*.pt")))
    kept = f"{finished} finished run{'s' * (finished != 1)} kept in {out}/runs"
    if partial:
        kept += f" and {partial} checkpoint{'s' * (partial != 1)} of unfinished ones"
    rest, skip = [], False
    for arg in argv:  # the same command with --out OUT --resume in place of its own
        if skip:
            skip = False
        elif arg == "--out":
            skip = True
        elif not (arg.startswith("--out=") or arg == "--resume"):
            rest.append(arg)
    return f"interrupted: {kept}; resume with: {prog} {shlex.join([*rest, '--out', str(out), '--resume'])}"


def _run(args: argparse.Namespace) -> int:
    if args.executor == "local" and local_jobs(args) != 1:
        from domadapt.executors import start_worker_server

        start_worker_server()  # its imports on another core while this process checks the recipe
    import_modules(args.imports)
    overrides = parse_overrides(args.overrides)
    if args.seeds is not None:
        overrides["eval.seeds"] = args.seeds
    if args.folds is not None:
        overrides["eval.folds"] = args.folds
    if args.curve:
        overrides["eval.target_subjects"] = list(CURVE_POINTS)
    if args.sequential_seeds:
        overrides["train.vmap_seeds"] = False
    if args.compile:
        overrides["train.compile"] = True
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    recipe = load_recipe(args.name)
    protocols = recipe_protocols(recipe)
    cfgs = [build_config(recipe, overrides=overrides, quick=args.quick, protocol=p) for p in protocols or [None]]
    name = str(recipe.get("recipe", {}).get("name", cfgs[0].name))
    if args.final and len(cfgs) > 1:
        raise DomadaptError(f"--final: recipe {name} runs {len(cfgs)} protocols; a final model is trained once (set one protocol's keys with --set)")
    out = args.out = args.out or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"  # for a Ctrl-C's line
    if len(cfgs) == 1:
        return _run_one(args, cfgs[0], out)
    # One run per protocol on the same data (features cached once), then one merged table.
    start = time.time()
    dirs = [out / _slug(p) for p in protocols]
    for cfg, run_dir in zip(cfgs, dirs):
        code = _run_one(args, cfg, run_dir)
        if code:
            return code
    from domadapt.report import add_statistics, format_table, merge_results, write_results

    merged = add_statistics(merge_results(dirs))
    merged["title"] = f"{name}: {len(dirs)} protocols on the same data"
    write_results(out, merged)
    print(f"\n{BANNER}\n{format_table(merged)}")
    print(f"\n{len(dirs)} protocols in {time.time() - start:.0f} s; merged results in {out}/results.{{json,md,csv}}")
    return 0


def _slug(text: str) -> str:
    """A folder name for a protocol label."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text).strip("-")


def _run_one(args: argparse.Namespace, cfg, out: Path) -> int:
    from domadapt.device import resolve_device  # imports torch: not for --help / --version

    if args.final or args.method or args.from_run:
        if not (args.final and args.method):
            raise DomadaptError("--final and --method go together (--from too): --final --method LABEL [--from RUN_DIR]")
        clashing = [flag for flag, on in (("--curve", args.curve), ("--resume", args.resume), ("--baseline", args.baseline)) if on]
        if clashing:
            raise DomadaptError(f"--final trains one model without a test fold; {', '.join(clashing)} belong to cross-validated runs")
        args.methods = args.method
    if args.methods:
        cfg = select_methods(cfg, args.methods)
    if args.baseline is not None and args.baseline not in [m.label for m in cfg.methods]:
        raise DomadaptError(  # checked before any data is loaded, not after the last run
            f"--baseline {args.baseline}: not a method of this run ({', '.join(m.label for m in cfg.methods)})"
        )
    device = resolve_device(args.device)
    synthetic = not args.source_root and args.target_root is None
    print(BANNER)
    if synthetic:
        print("domadapt: NO DATA PATHS GIVEN - running on SYNTHETIC stand-in corpora.")
        print("These numbers say nothing about real speech; pass --source-root/--target-root for real data.")
    elif (cfg.data.source and not args.source_root) or args.target_root is None:
        print("domadapt: PART of the data is SYNTHETIC (a root was given for only one side).")
    print(f"recipe {cfg.name}{' (--quick)' if args.quick else ''}: {cfg.description}")
    print(f"output: {out}")
    print(BANNER)
    executor = build_executor_from(args)  # its options checked before any data is read
    with OutDirLock(out):  # a second run on a live run's folder is refused before any data is read
        return _run_in(args, cfg, device, out, executor)


def _run_in(args: argparse.Namespace, cfg, device, out: Path, executor) -> int:
    """Load, extract, run and print the table, with ``out`` held by this process."""
    from domadapt.run import extract_domains, load_corpora, run_experiment  # heavy imports
    from domadapt.report import format_table

    say = (lambda *a, **k: None) if args.quiet else print
    start = time.time()
    progress = not args.quiet  # a bar on a terminal, plain lines in a log (domadapt/progress.py)
    sources, target = load_corpora(
        cfg, source_roots=list(args.source_root), target_root=args.target_root, cache_dir=args.cache_dir,
        progress=progress, jobs=executor.preparation_jobs(),
    )
    domains = extract_domains(
        cfg, sources, target, device=device, cache_dir=args.cache_dir, progress=progress, jobs=executor.preparation_jobs()
    )
    if args.final:
        from domadapt.run.trained_models import train_final

        train_final(cfg, domains, cfg.methods[0], out=out, device=device, from_run=args.from_run, progress=progress, say=say)
        print(f"\nfinal model in {time.time() - start:.0f} s: {out} (predict with: domadapt predict {out} AUDIO...)")
        return 0
    with executor:
        results = run_experiment(
            cfg, domains, out_dir=out, device=device, resume=args.resume, progress=progress, cache_dir=args.cache_dir,
            executor=executor, say=say,
            **({"baseline": args.baseline} if args.baseline else {}),  # the runner's keyword (domadapt/run/plan.py)
        )
    print()
    print(format_table(results))
    print(f"\n{len(results['rows'])} methods in {time.time() - start:.0f} s; results in {out}/results.{{json,md,csv}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
