"""Schedules λ(p) for the alignment weight and the GRL coefficient."""

from __future__ import annotations

import math
import pickle

import pytest

from domadapt.align.schedule import (
    SCHEDULES,
    ConstantSchedule,
    DANNSchedule,
    LinearWarmupSchedule,
    build_schedule,
    list_schedules,
)
from domadapt.errors import DomadaptError

GRID = [i / 20 for i in range(21)]


def test_list_schedules():
    assert list_schedules() == sorted(SCHEDULES) == ["constant", "dann", "linear", "step"]


def test_constant():
    lam = build_schedule("constant", value=0.3)
    assert isinstance(lam, ConstantSchedule)
    assert all(lam(p) == 0.3 for p in GRID)
    assert build_schedule("constant")(0.7) == 1.0


def test_dann_formula_endpoints_and_monotone():
    lam = build_schedule("dann")
    assert isinstance(lam, DANNSchedule) and lam.gamma == 10.0
    for p in GRID:
        assert lam(p) == pytest.approx(2 / (1 + math.exp(-10 * p)) - 1, rel=1e-12)
    assert lam(0.0) == 0.0
    assert lam(1.0) == pytest.approx(0.9999092, rel=1e-6)
    values = [lam(p) for p in GRID]
    assert values == sorted(values)
    slow = build_schedule("dann", gamma=2.0, value=0.5)
    assert slow(1.0) == pytest.approx(0.5 * (2 / (1 + math.exp(-2)) - 1))


def test_linear_warmup():
    lam = build_schedule("linear", warmup=0.25, value=2.0)
    assert isinstance(lam, LinearWarmupSchedule)
    assert lam(0.0) == 0.0
    assert lam(0.125) == pytest.approx(1.0)
    assert lam(0.25) == pytest.approx(2.0)
    assert lam(0.9) == 2.0
    assert build_schedule("linear", warmup=1.0)(0.4) == pytest.approx(0.4)
    assert build_schedule("linear", warmup=0.0)(0.0) == 1.0
    assert build_schedule("linear")(0.05) == pytest.approx(0.5)  # default warmup 0.1


def test_step_switches_on_at_start():
    lam = build_schedule("step", start=0.25, value=2.0)
    assert [lam(p) for p in (0.0, 0.2499, 0.25, 1.0)] == [0.0, 0.0, 2.0, 2.0]
    assert build_schedule("step")(0.29) == 0.0 and build_schedule("step")(0.3) == 1.0  # default 0.3


def test_schedules_print_and_pickle():
    lam = build_schedule("dann", gamma=5.0)
    assert "gamma=5.0" in repr(lam)
    assert pickle.loads(pickle.dumps(lam))(0.3) == lam(0.3)


def test_unknown_name_lists_known_ones():
    with pytest.raises(DomadaptError, match="known schedules: constant, dann, linear"):
        build_schedule("cosine")


def test_unknown_option_lists_valid_ones():
    expected = r"unknown option\(s\) alpha; valid options: gamma, value"
    with pytest.raises(DomadaptError, match=expected):
        build_schedule("dann", alpha=3)


@pytest.mark.parametrize("name", ["constant", "dann", "linear", "step"])
@pytest.mark.parametrize("p", [-0.01, 1.01, float("nan"), None])
def test_progress_outside_unit_interval_raises(name, p):
    with pytest.raises(DomadaptError, match="progress"):
        build_schedule(name)(p)


@pytest.mark.parametrize(
    "name, options",
    [("dann", {"gamma": 0.0}), ("linear", {"warmup": 1.5}), ("linear", {"warmup": -0.1}), ("step", {"start": 1.2})],
)
def test_bad_option_values_raise(name, options):
    with pytest.raises(DomadaptError, match=name):
        build_schedule(name, **options)
