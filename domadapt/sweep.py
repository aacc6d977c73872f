"""``domadapt sweep RECIPE --space SPACE.toml --trials N``: tune one method on validation
subjects, then test the chosen setting once.

Optuna's TPE sampler proposes settings through its ask/tell interface; a trial runs the
recipe with them on the executor (in this process, or its units as Ray tasks) in *search*
mode: each fold's validation subjects are carved from the fold's training subjects, the
unit keeps the epoch with the best validation UA, and the test fold is never predicted
(:func:`domadapt.run.learners.predict_test` is not called). The objective is the selected
validation UA, averaged over the seeds of a fold and then over the folds. After the
search one final run of the best setting reads the test folds, with
``"selected_by": "validation"`` in its results.json. There is no pruning: a trial's
objective exists only once every fold has trained.

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
(each trial's validation results), ``best.toml`` (a runnable recipe: the recipe with the
chosen settings), ``final/`` (the final run's results files and table), ``sweep.json``
and ``plots/`` (Optuna's optimisation history and parameter importances).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
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

#: the sections a space may vary: features and data are fixed per sweep (the segments are
#: extracted once), and eval's folds and seed define the validation split being tuned on
SWEEPABLE = ("train", "model")
SPACE_KEYS = ("low", "high", "log", "step", "choices")
STUDY_FILE = "study.db"


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

    def config(self, params: dict[str, Any]) -> ExperimentConfig:
        """The recipe with ``params``, reduced to the tuned row."""
        cfg = build_config(self.tree, overrides={**self.overrides, **params}, quick=self.quick)
        evaluation = cfg.eval if cfg.eval.baseline == self.method else dataclasses.replace(cfg.eval, baseline=None)
        return dataclasses.replace(cfg, methods=tuple(m for m in cfg.methods if m.label == self.method), eval=evaluation)

    def fingerprint(self) -> str:
        text = json.dumps(
            [self.tree, [p.__dict__ for p in self.space], self.method, self.overrides, self.quick], sort_keys=True, default=str
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
    """Search on validation, write best.toml, run the best setting on the test folds once.

    Returns what ``sweep.json`` holds: the study, every trial, the best one and the final
    run's results folder.
    """
    import optuna

    executor = executor or LocalExecutor()
    with OutDirLock(setup.out):
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours
        study = _study(setup, optuna, seed=setup.config({}).eval.seed)
        while True:
            stale = _stale_trials(setup, study, optuna)
            done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
            if not stale and done >= setup.trials:
                break
            failed = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)))
            if failed >= setup.trials:
                raise DomadaptError(f"{setup.out}: {failed} trials diverged (non-finite loss); narrow the space")
            if stale:
                number, params, resume = stale[0].number, stale[0].params, True
            else:
                trial = study.ask()
                trial.set_user_attr("out", str(setup.out.resolve()))
                number, params, resume = trial.number, {p.key: p.suggest(trial) for p in setup.space}, False
            say(f"trial {number}: {', '.join(f'{k}={v!r}' for k, v in params.items())}{' (resumed)' if resume else ''}")
            value = _trial(setup, number, params, domains, device=device, executor=executor, resume=resume, say=say)
            study.tell(number, value, state=None if value is not None else optuna.trial.TrialState.FAIL)
            say(f"trial {number}: " + (f"validation UA {value:.4f}" if value is not None else "FAILED (non-finite loss)"))
        best = study.best_trial
        say(f"best: trial {best.number}, validation UA {best.value:.4f}, {best.params}")
        write_best_recipe(setup, best.params, setup.out / "best.toml", note=f"trial {best.number}, validation UA {best.value:.4f}")
        summary = {
            "study": study.study_name,
            "storage": setup.storage or f"sqlite:///{setup.out / STUDY_FILE}",
            "objective": "validation UA of the kept model, mean over seeds per fold, then over folds; test folds unread",
            "method": setup.method,
            "space": [p.__dict__ for p in setup.space],
            "trials": [
                {"number": t.number, "state": t.state.name, "params": t.params, "value": t.value}
                for t in study.get_trials(deepcopy=False)
            ],
            "best": {"trial": best.number, "params": best.params, "validation_uar": best.value},
            "plots": _plots(study, setup.out / "plots"),
            "final": str(setup.out / "final"),
        }
        _final_run(setup, best, domains, device=device, executor=executor, say=say)
        atomic_write(setup.out / "sweep.json", json.dumps(summary, indent=2, default=str) + "\n")
        return summary


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
        sampler=optuna.samplers.TPESampler(seed=seed),
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


def _trial(
    setup: SweepSetup, number: int, params: dict[str, Any], domains: Any, *, device: Any, executor: Executor,
    resume: bool, say,
) -> float | None:
    """One trial in search mode: the objective, or None when its training diverged."""
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
    by_fold: dict[int, list[float]] = {}
    for r in results:
        by_fold.setdefault(r["fold"], []).append(r["validation_uar"])
    value = float(sum(sum(v) / len(v) for v in by_fold.values()) / len(by_fold))
    atomic_write(folder / "validation.json", json.dumps({"params": params, "objective": value, "by_fold": by_fold}, indent=2))
    return value


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
        f"# {setup.out / 'best.toml'}: chosen by `domadapt sweep` on validation UA ({note});\n"
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


def _final_run(setup: SweepSetup, best: Any, domains: Any, *, device: Any, executor: Executor, say) -> None:
    """The best setting on the test folds, once; a killed final run continues."""
    from domadapt.run import config_fingerprint, run_experiment

    cfg = setup.config(best.params)
    folder = setup.out / "final"
    config = folder / "config.json"
    same = config.exists() and json.loads(config.read_text()).get("fingerprint") == config_fingerprint(cfg)
    run_experiment(
        cfg, domains, out_dir=folder, device=device, resume=same, executor=executor, say=say,
        annotate={
            "selected_by": "validation",
            "sweep": {"trial": best.number, "params": best.params, "validation_uar": best.value, "out": str(setup.out)},
        },
    )


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
