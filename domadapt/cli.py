"""The ``domadapt`` console command.

    domadapt data summary CORPUS ROOT [--json]   what a corpus tree holds, and what was skipped
    domadapt report RUN_DIR [RUN_DIR ...]        merge runs into one comparison table
    domadapt recipe NAME [...]                   same as python -m domadapt.recipe NAME [...]
    domadapt list                                registered corpora, backbones, losses, methods, recipes
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from domadapt.errors import DomadaptError


def _data_summary(args: argparse.Namespace) -> int:
    from domadapt.corpora import load_corpus
    from domadapt.corpora.summary import format_summary, summarize

    summary = summarize(load_corpus(args.corpus, args.root))
    print(json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary))
    return 0


def _report(args: argparse.Namespace) -> int:
    from domadapt.report import format_markdown, format_table, merge_results

    merged = merge_results(args.run_dirs)
    print(format_markdown(merged) if args.markdown else format_table(merged))
    return 0


def _list(args: argparse.Namespace) -> int:
    from domadapt.align import list_losses
    from domadapt.config import list_recipes
    from domadapt.corpora import list_corpora
    from domadapt.methods import list_methods
    from domadapt.models import list_backbones

    for title, names in [
        ("corpora", list_corpora()),
        ("backbones", list_backbones()),
        ("alignment losses", list_losses()),
        ("methods", list_methods()),
        ("recipes", list_recipes()),
    ]:
        print(f"{title}: {', '.join(names)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="domadapt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="look at a corpus").add_subparsers(dest="data_command", required=True)
    summ = data.add_parser("summary", help="utterances, subjects, classes, durations, rates, skipped files")
    summ.add_argument("corpus", help="registered corpus name (casia, iemocap, modma, daic_woz, folder)")
    summ.add_argument("root", type=Path)
    summ.add_argument("--json", action="store_true", help="machine-readable output")
    summ.set_defaults(func=_data_summary)
    rep = sub.add_parser("report", help="merge run folders into one comparison table")
    rep.add_argument("run_dirs", nargs="+", type=Path)
    rep.add_argument("--markdown", action="store_true")
    rep.set_defaults(func=_report)
    sub.add_parser("list", help="registered names").set_defaults(func=_list)
    sub.add_parser("recipe", help="run a recipe (see python -m domadapt.recipe --help)", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["recipe"]:
        from domadapt.recipe import main as recipe_main

        return recipe_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DomadaptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
