"""``domadapt sweep RECIPE --space SPACE.toml --trials N``: tune one method on an objective
that never reads the test folds, then test the chosen setting once.

Optuna's sampler (TPE, or a grid) proposes settings through its ask/tell interface; a
trial runs the recipe with them on the executor (in this process, or its units as Ray
tasks) in *search* mode: each fold's validation subjects are carved from the fold's
training subjects, the unit keeps its epoch by its own selection, and the test fold is
never predicted (:func:`domadapt.run.learners.predict_test` is not called). The kept
model of each unit is scored with every objective; a trial's value is the chosen one,
averaged over the seeds of a fold and then over the folds. After the search one final run
of the best setting reads the test folds, with ``"selected_by": OBJECTIVE`` in its
results.json. There is no pruning: a trial's objective exists only once every fold has
trained.

``--objective`` names what the search maximises (:mod:`domadapt.selection`): ``target_val``
(UA on labelled target validation subjects, the default; in unsupervised DA an ORACLE),
``source_val``, ``dev`` or a registered validator (``snd``, ``im``, a user's own) scored on
the unlabelled target training data. Every trial records every objective, so
``sweep.json`` names each objective's pick; ``--test-every-pick`` also runs each other
objective's pick on the test folds (``picks/trial-NNNN/``), so the test UA of every pick
stands beside the oracle's. ``--sampler grid`` tries every combination of the space's
``choices`` once (each objective then picks from the same trials).

The space file names ``--set`` keys of the ``[train]`` and ``[model]`` sections::

    [params."train.lr"]
    low = 1e-4
    high = 1e-2
    log = true           # sampled on a log scale

    [params."train.step_size"]
    low = 2
    high = 8             # both whole numbers: an integer parameter (step = 1 unless given)

    [params."model.dropout"]
    choices = [0.0, 0.1, 0.3]

Output (``--out``): ``study.db`` (the Optuna study, SQLite, unless ``--storage`` names
another SQLAlchemy URL; running the same command again continues a killed sweep: finished
trials are kept, the trial the kill interrupted resumes from its folder), ``trials/NNNN/``
(each trial's objectives), ``best.toml`` (a runnable recipe: the recipe with the
chosen settings), ``final/`` (the final run's results files and table), ``sweep.json``
and ``plots/`` (Optuna's optimisation history and parameter importances).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from domadapt.config import ExperimentConfig, MethodSpec
from domadapt.recipe_loader import build_config
from domadapt.errors import DomadaptError
from domadapt.executors import Executor, LocalExecutor
from domadapt.files import atomic_write
from domadapt.outdir_lock import OutDirLock
from domadapt.selection import ORACLE, check_objective, describe, objective_names

#: the sections a space may vary: features and data are fixed per sweep (the segments are
#: extracted once), and eval's folds and seed define the validation split being tuned on
SWEEPABLE = ("train", "model")
SPACE_KEYS = ("low", "high", "log", "step", "choices")
STUDY_FILE = "study.db"
SAMPLERS = ("tpe", "grid")


@dataclass(frozen=True)
class Param:
    """One dimension of the search space: a ``--set`` key and its range or choices."""

    key: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] | None = None

    def suggest(self, trial: Any) -> Any:
        """The value ``trial`` (an ``optuna.Trial``) proposes."""
        if self.choices is not None:
            return trial.suggest_categorical(self.key, list(self.choices))
        if _is_int(self.low) and _is_int(self.high) and (self.step is None or _is_int(self.step)):
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)

    def extremes(self) -> list[Any]:
        """Values to check the key with before the search starts."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_space(path: Path) -> list[Param]:
    """The ``[params."section.key"]`` tables of a space file; errors name the file and key."""
    try:
        tree = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DomadaptError(f"{path}: not a readable TOML space file ({exc})") from None
    params = tree.get("params")
    if not isinstance(params, dict) or not params or set(tree) != {"params"}:
        raise DomadaptError(f'{path}: expected only [params."section.key"] tables (e.g. [params."train.lr"] low/high)')
    space = []
    for key, spec in params.items():
        where = f'{path}: [params."{key}"]'
        if not isinstance(spec, dict):
            raise DomadaptError(f"{where}: expected a table with low/high or choices")
        if key.split(".")[0] not in SWEEPABLE or key.count(".") != 1:
            raise DomadaptError(f"{where}: a sweep varies {' or '.join(f'{s}.KEY' for s in SWEEPABLE)} settings")
        unknown = sorted(set(spec) - set(SPACE_KEYS))
        if unknown:
            raise DomadaptError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(SPACE_KEYS)}")
        if "choices" in spec:
            if set(spec) != {"choices"} or not isinstance(spec["choices"], list) or not spec["choices"]:
                raise DomadaptError(f"{where}: choices = [a non-empty list], alone")
            space.append(Param(key, choices=tuple(spec["choices"])))
            continue
        low, high = spec.get("low"), spec.get("high")
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
        if not numbers or not low < high or (spec.get("log") and low <= 0):
            raise DomadaptError(f"{where}: expected numbers low < high (low > 0 with log = true), got {low!r}, {high!r}")
        space.append(Param(key, low, high, log=bool(spec.get("log", False)), step=spec.get("step")))
    return space


def grid_of(space: list[Param], *, where: Path) -> dict[str, list[Any]]:
    """The grid ``--sampler grid`` walks: every parameter's ``choices``."""
    ranged = [p.key for p in space if p.choices is None]
    if ranged:
        raise DomadaptError(f'{where}: --sampler grid needs choices = [...] for every parameter; [params."{ranged[0]}"] has low/high')
    return {p.key: list(p.choices) for p in space}


def grid_size(space: list[Param], *, where: Path) -> int:
    """How many settings ``--sampler grid`` tries."""
    return math.prod(len(v) for v in grid_of(space, where=where).values())


def check_space(space: list[Param], tree: dict[str, Any], *, overrides: dict[str, Any], quick: bool, where: Path) -> None:
    """Every key and extreme value of ``space`` against the configuration's own checks."""
    for param in space:
        for value in param.extremes():
            try:
                build_config(tree, overrides={**overrides, param.key: value}, quick=quick)
            except DomadaptError as exc:
                raise DomadaptError(f'{where}: [params."{param.key}"] = {value!r}: {exc}') from None


@dataclass
class SweepSetup:
    """What a sweep is run with; everything but the data."""

    tree: dict[str, Any]  # the recipe, as load_recipe read it
    space: list[Param]
    trials: int
    out: Path
    method: str  # the tuned row's label
    overrides: dict[str, Any]
    quick: bool = False
    storage: str | None = None
    objective: str = ORACLE  # a name of domadapt.selection.objective_names()
    sampler: str = "tpe"  # SAMPLERS
    test_every_pick: bool = False  # run each objective's pick on the test folds, not only the chosen one

    def __post_init__(self) -> None:
        check_objective(self.objective)
        if self.sampler not in SAMPLERS:
            raise DomadaptError(f"--sampler {self.sampler!r}: expected one of {', '.join(SAMPLERS)}")
        if self.sampler == "grid":
            size = grid_size(self.space, where=self.out)
            if self.trials > size:
                raise DomadaptError(f"--trials {self.trials}: the grid has {size} settings")

    def config(self, params: dict[str, Any]) -> ExperimentConfig:
        """The recipe with ``params``, reduced to the tuned row."""
        cfg = build_config(self.tree, overrides={**self.overrides, **params}, quick=self.quick)
        evaluation = cfg.eval if cfg.eval.baseline == self.method else dataclasses.replace(cfg.eval, baseline=None)
        return dataclasses.replace(cfg, methods=tuple(m for m in cfg.methods if m.label == self.method), eval=evaluation)

    def fingerprint(self) -> str:
        text = json.dumps(
            [self.tree, [p.__dict__ for p in self.space], self.method, self.overrides, self.quick, self.objective, self.sampler],
            sort_keys=True, default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def tuned_method(cfg: ExperimentConfig, wanted: str | None) -> str:
    """The one deep row a sweep tunes: ``--methods`` or the recipe's only row."""
    from domadapt.run import learner_of  # the runner's heavy imports, only once a sweep is checked

    labels = [m.label for m in cfg.methods]
    if wanted is None:
        if len(labels) != 1:
            raise DomadaptError(f"a sweep tunes one method: pass --methods NAME (recipe {cfg.name} has {', '.join(labels)})")
        wanted = labels[0]
    if wanted not in labels:
        raise DomadaptError(f"--methods {wanted}: not one method of recipe {cfg.name} ({', '.join(labels)})")
    learner = learner_of(next(m for m in cfg.methods if m.label == wanted))
    if not learner.searchable:
        raise DomadaptError(f"--methods {wanted}: {learner.why_not_searchable}")
    return wanted


def run_sweep(setup: SweepSetup, domains: Any, *, device: Any, executor: Executor | None = None, say=print) -> dict[str, Any]:
    """Search on ``setup.objective``, write best.toml, run the best setting on the test folds
    once (and, with ``test_every_pick``, every other objective's pick).

    Returns what ``sweep.json`` holds: the study, every trial with every objective, each
    objective's pick, the best one and the final run's results folder.
    """
    import optuna

    executor = executor or LocalExecutor()
    if setup.objective == "dev" and not domains.shared_labels:
        raise DomadaptError("--objective dev: needs the sources and the target to share one label set")
    with OutDirLock(setup.out):
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours
        study = _study(setup, optuna, seed=setup.config({}).eval.seed)
        while True:
            stale = _stale_trials(setup, study, optuna)
            done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
            failed = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)))
            if not stale and done >= setup.trials:
                break
            if failed >= setup.trials:
                raise DomadaptError(
                    f"{setup.out}: {failed} trials failed (a non-finite loss or {setup.objective}); narrow the space"
                )
            if not stale and setup.sampler == "grid" and done + failed >= setup.trials:
                break  # each setting tried once, and at least one scored
            if stale:
                number, params, resume = stale[0].number, stale[0].params, True
            else:
                trial = study.ask()
                trial.set_user_attr("out", str(setup.out.resolve()))
                number, params, resume = trial.number, {p.key: p.suggest(trial) for p in setup.space}, False
            say(f"trial {number}: {', '.join(f'{k}={v!r}' for k, v in params.items())}{' (resumed)' if resume else ''}")
            objectives = _trial(setup, number, params, domains, device=device, executor=executor, resume=resume, say=say)
            if objectives is None or objectives[setup.objective] is None:
                study.tell(number, state=optuna.trial.TrialState.FAIL)
                why = "non-finite loss" if objectives is None else f"no finite {setup.objective}: {_scores_line(objectives)}"
                say(f"trial {number}: FAILED ({why})")
                continue
            study.tell(number, objectives[setup.objective])
            say(f"trial {number}: {setup.objective} {objectives[setup.objective]:.4f}  ({_scores_line(objectives)})")
        best = study.best_trial
        say(f"best: trial {best.number}, {setup.objective} {best.value:.4f}, {best.params}")
        write_best_recipe(setup, best.params, setup.out / "best.toml", note=f"trial {best.number}, {setup.objective} {best.value:.4f}")
        # every trained trial, also one the chosen objective could not score (a DEV left
        # undefined), is a candidate for the other objectives
        trained = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL))
        scores = {t.number: trial_objectives(setup, t.number) for t in trained}
        picks = objective_picks(trained, scores)
        tested = {best.number: _final_run(setup, best, domains, device=device, executor=executor, say=say)}
        if setup.test_every_pick:
            for name, pick in picks.items():
                if pick is not None and pick["trial"] not in tested:
                    picked = next(t for t in trained if t.number == pick["trial"])
                    folder = setup.out / "picks" / f"trial-{picked.number:04d}"
                    tested[picked.number] = _final_run(
                        setup, picked, domains, device=device, executor=executor, say=say, folder=folder, picked_by=name
                    )
        for pick in picks.values():
            if pick is not None and pick["trial"] in tested:
                pick["test"] = tested[pick["trial"]]
        summary = {
            "study": study.study_name,
            "storage": setup.storage or f"sqlite:///{setup.out / STUDY_FILE}",
            "objective": setup.objective,
            "objective_is": describe(setup.objective) + "; mean over seeds per fold, then over folds; test folds unread",
            "oracle": f"{ORACLE} reads target labels: in unsupervised DA it is the oracle the other picks are measured against",
            "sampler": setup.sampler,
            "method": setup.method,
            "space": [p.__dict__ for p in setup.space],
            "trials": [
                {"number": t.number, "state": t.state.name, "params": t.params, "value": t.value,
                 "objectives": scores.get(t.number)}
                for t in study.get_trials(deepcopy=False)
            ],
            "picks": picks,
            "best": {"trial": best.number, "params": best.params, setup.objective: best.value, "final": str(setup.out / "final")},
            "plots": _plots(study, setup.out / "plots"),
            "final": str(setup.out / "final"),
        }
        atomic_write(setup.out / "sweep.json", json.dumps(summary, indent=2, default=str) + "\n")
        for line in picks_table(summary):
            say(line)
        return summary


def trial_objectives(setup: SweepSetup, number: int) -> dict[str, float | None] | None:
    """Every objective of trial ``number`` as its folder recorded it (None: not this folder's)."""
    path = setup.out / "trials" / f"{number:04d}" / "validation.json"
    return json.loads(path.read_text())["objectives"] if path.exists() else None


def objective_picks(trials: list[Any], scores: dict[int, dict[str, float | None] | None]) -> dict[str, dict[str, Any] | None]:
    """Each objective's pick among the trained ``trials`` (``scores``: their objectives by
    number): the first of the highest score, its setting and every objective's value
    there; None when no trial has a value for it."""
    picks: dict[str, dict[str, Any] | None] = {}
    for name in objective_names():
        scored = [t for t in trials if (scores.get(t.number) or {}).get(name) is not None]
        if not scored:
            picks[name] = None
            continue
        best = max(scored, key=lambda t: (scores[t.number][name], -t.number))
        picks[name] = {"trial": best.number, "params": best.params, "objectives": scores[best.number]}
    return picks


def picks_table(summary: dict[str, Any]) -> list[str]:
    """The printed summary: each objective's pick, its score there and, where its pick was
    run on the test folds, the test UA; the oracle and the chosen objective marked."""
    lines = [f"picks ({summary['method']}; search driven by {summary['objective']}):",
             "| objective | trial | setting | its score | test UA |", "|---|---|---|---|---|"]
    for name, pick in summary["picks"].items():
        label = name + (" (ORACLE: target labels)" if name == ORACLE else "") + (" <- chose" if name == summary["objective"] else "")
        if pick is None:
            lines.append(f"| {label} | – | – | not available | – |")
            continue
        setting = ", ".join(f"{k.split('.')[-1]}={v:g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}" for k, v in pick["params"].items())
        test = f"{pick['test']['uar']:.4f}" if "test" in pick else "–"
        lines.append(f"| {label} | {pick['trial']} | {setting} | {pick['objectives'][name]:.4f} | {test} |")
    return lines


def _scores_line(objectives: dict[str, float | None]) -> str:
    return ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} –" for k, v in objectives.items())


def _stale_trials(setup: SweepSetup, study: Any, optuna: Any) -> list[Any]:
    """Running trials of this sweep's folder, left by a killed driver (this process holds
    the folder, so their driver is gone): in the study of the folder's own SQLite file
    every running trial, in a shared ``--storage`` those marked with this folder. One
    killed before it had its whole setting is marked failed, the others resume."""
    ours = str(setup.out.resolve())
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    stale = [t for t in running if setup.storage is None or t.user_attrs.get("out") == ours]
    keys = {p.key for p in setup.space}
    for t in [t for t in stale if set(t.params) != keys]:
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    return [t for t in stale if set(t.params) == keys]


def _study(setup: SweepSetup, optuna: Any, *, seed: int) -> Any:
    """The sweep's study, created or loaded; one of another recipe or space is refused."""
    setup.out.mkdir(parents=True, exist_ok=True)
    storage = setup.storage or f"sqlite:///{setup.out / STUDY_FILE}"
    name = f"domadapt-{setup.config({}).name}-{setup.method}"
    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize", load_if_exists=True,
        sampler=_sampler(setup, optuna, seed=seed),
    )
    fingerprint = setup.fingerprint()
    previous = study.user_attrs.get("fingerprint")
    if previous is None:
        study.set_user_attr("fingerprint", fingerprint)
    elif previous != fingerprint:
        raise DomadaptError(
            f"{storage}: study {name!r} was run with another recipe, space or settings; use a new --out or --storage"
        )
    return study


def _sampler(setup: SweepSetup, optuna: Any, *, seed: int) -> Any:
    if setup.sampler == "grid":

        class AskTellGrid(optuna.samplers.GridSampler):
            """Optuna's grid without its end-of-grid ``study.stop()``, which only
            ``study.optimize`` allows: the ask/tell loop stops at ``setup.trials`` itself."""

            def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
                pass

        return AskTellGrid(grid_of(setup.space, where=setup.out), seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _trial(
    setup: SweepSetup, number: int, params: dict[str, Any], domains: Any, *, device: Any, executor: Executor,
    resume: bool, say,
) -> dict[str, float | None] | None:
    """One trial in search mode: every objective (each a mean over the seeds of a fold,
    then over the folds; None where a fold has none), or None when its training diverged."""
    from domadapt.engine.loop import NonFiniteLossError
    from domadapt.run import plan_run, run_units

    folder = setup.out / "trials" / f"{number:04d}"
    quiet = lambda *a, **k: None  # noqa: E731 - the trial's own lines: its per-unit scores are enough
    plan = plan_run(
        setup.config(params), domains, out_dir=folder, device=executor.device(device), resume=resume, score_test=False,
        say=quiet,
    )
    try:
        results = [r for unit_results in run_units(executor, plan, say=say) for r in unit_results]
    except NonFiniteLossError as exc:
        say(f"trial {number}: {exc}")
        return None
    by_fold: dict[str, dict[int, list[float | None]]] = {}
    for r in results:
        for name, value in r["objectives"].items():
            by_fold.setdefault(name, {}).setdefault(r["fold"], []).append(value)
    objectives = {name: _mean_of_folds(folds) for name, folds in by_fold.items()}
    atomic_write(folder / "validation.json", json.dumps({"params": params, "objectives": objectives, "by_fold": by_fold}, indent=2))
    if setup.objective == ORACLE and objectives[ORACLE] is None:  # a UA is always finite: the folds hold no rows for it
        raise DomadaptError(f"--objective {ORACLE}: the folds have no target validation subjects (train.val_fraction = 0?)")
    return objectives


def _mean_of_folds(folds: dict[int, list[float | None]]) -> float | None:
    values = [v for seeds in folds.values() for v in seeds]
    if any(v is None for v in values):
        return None
    return float(sum(sum(seeds) / len(seeds) for seeds in folds.values()) / len(folds))


def write_best_recipe(setup: SweepSetup, params: dict[str, Any], path: Path, *, note: str) -> None:
    """A runnable recipe: the swept one (its ``extends`` merged in) with the chosen settings
    and the sweep's ``--set`` values, only the tuned row, and neither overridden by
    ``[quick]`` (the sweep's --quick is named in the header)."""
    import tomli_w

    tree = json.loads(json.dumps(setup.tree))  # a deep copy
    chosen = {**setup.overrides, **params}
    for dotted, value in chosen.items():
        section, key = dotted.split(".", 1)
        tree.setdefault(section, {})[key] = value
    quick = {k: v for k, v in tree.pop("quick", {}).items() if k not in chosen}
    if quick:
        tree["quick"] = quick
    if tree.get("eval", {}).get("baseline") not in (None, setup.method):  # the one row left is no other's baseline
        del tree["eval"]["baseline"]
    tree["methods"] = [
        row for row in tree.get("methods", [])
        if MethodSpec(row["name"], {k: v for k, v in row.items() if k != "name"}).label == setup.method
    ]
    header = (
        f"# {setup.out / 'best.toml'}: chosen by `domadapt sweep` on {setup.objective} ({note});\n"
        f"# run: python -m domadapt.recipe {path}{' --quick' if setup.quick else ''}\n"
    )
    atomic_write(path, header + tomli_w.dumps(_toml_ready(tree)))


def _toml_ready(obj: Any) -> Any:
    """TOML has no null: unset options are left out (their defaults apply)."""
    if isinstance(obj, dict):
        return {k: _toml_ready(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [_toml_ready(v) for v in obj]
    return obj


def _final_run(
    setup: SweepSetup, trial: Any, domains: Any, *, device: Any, executor: Executor, say, folder: Path | None = None,
    picked_by: str | None = None,
) -> dict[str, float]:
    """Trial ``trial``'s setting on the test folds, once (the best one into ``final/``); a
    killed final run continues. Returns the row's mean test UA and accuracy."""
    from domadapt.run import config_fingerprint, run_experiment

    cfg = setup.config(trial.params)
    folder = folder or setup.out / "final"
    config = folder / "config.json"
    same = config.exists() and json.loads(config.read_text()).get("fingerprint") == config_fingerprint(cfg)
    results = run_experiment(
        cfg, domains, out_dir=folder, device=device, resume=same, executor=executor, say=say,
        annotate={
            "selected_by": picked_by or setup.objective,
            "sweep": {"trial": trial.number, "params": trial.params, "objective": picked_by or setup.objective, "out": str(setup.out)},
        },
    )
    (row,) = results["rows"]
    return {"uar": row["metrics"]["uar"]["mean"], "accuracy": row["metrics"]["accuracy"]["mean"], "folder": str(folder)}


def _plots(study: Any, folder: Path) -> dict[str, str]:
    """Optuna's history and importance plots as PNGs; what was skipped, with the reason."""
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    folder.mkdir(parents=True, exist_ok=True)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    plots = {"history": plot_optimization_history}
    skipped = {}
    if len(complete) < 2:
        skipped["importance"] = f"{len(complete)} completed trial(s): importances need at least 2"
    elif len({json.dumps(t.params, sort_keys=True) for t in complete}) < 2 or len({t.value for t in complete}) < 2:
        skipped["importance"] = "every completed trial has the same setting or the same score: nothing to attribute"
    else:
        plots["importance"] = plot_param_importances
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the matplotlib backend is "experimental"
        for name, plot in plots.items():
            ax = plot(study)
            ax.figure.savefig(folder / f"{name}.png", dpi=120, bbox_inches="tight")
            plt.close(ax.figure)
    return {name: f"skipped: {why}" for name, why in skipped.items()} | {name: str(folder / f"{name}.png") for name in plots}
