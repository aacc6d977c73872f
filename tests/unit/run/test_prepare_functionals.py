"""prepare_functionals: the classical rows' functionals computed once, before the units,
by the workers the run has; left to the units in one process."""

from types import SimpleNamespace

from domadapt.recipe_loader import build_config, load_recipe
from domadapt.run import learners


def _ctx(score_test=True):
    cfg = build_config(load_recipe("casia2modma"))  # baseline:egemaps (target only) + deep rows
    corpus = lambda name: SimpleNamespace(name=name, root=f"/data/{name}")  # noqa: E731
    domains = SimpleNamespace(target=corpus("modma"), sources=[corpus("casia")])
    return SimpleNamespace(cfg=cfg, domains=domains, functionals={}, cache_dir=None, progress=False, score_test=score_test)


def test_computed_once_for_the_target_by_the_runs_workers(monkeypatch):
    calls = []
    monkeypatch.setattr(learners, "utterance_functionals",
                        lambda corpus, kind, **kw: calls.append((corpus.name, kind, kw["jobs"])) or kind)
    ctx = _ctx()
    learners.prepare_functionals(ctx, jobs=2)
    assert calls == [("modma", "egemaps", 2)]  # one classical row, use_source off: no source corpus
    learners.prepare_functionals(ctx, jobs=None)  # a second call (or the units) reuses them
    assert len(calls) == 1 and ctx.functionals == {("egemaps", "modma", "/data/modma"): "egemaps"}
    learners.prepare_functionals(_ctx(), jobs=1)  # one process: the first unit computes them
    learners.prepare_functionals(_ctx(score_test=False), jobs=2)  # a sweep's search trains no classical row
    assert len(calls) == 1
