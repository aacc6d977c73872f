"""The benchmark scripts stay runnable: registry names match, and the seeds benchmark runs
end to end at toy size (its timings are not checked: speed claims live in benchmarks/)."""

from __future__ import annotations

import contextlib
import copy
import importlib
import math
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def run_all():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("run_all")
    finally:
        sys.path.remove(str(BENCH))


def test_every_registered_benchmark_has_run_and_its_ratio_name(run_all):
    assert set(run_all.DEFAULT) <= set(run_all.BENCHMARKS)
    for key, (module, name) in run_all.BENCHMARKS.items():
        mod = importlib.import_module(module)
        assert callable(mod.run), key
        assert mod.NAME == name, key


@pytest.mark.slow  # trains K seeds twice
def test_seeds_benchmark_runs_and_prints_its_ratio_line(run_all, capsys):
    bench_seeds = importlib.import_module("bench_seeds")
    ratio = bench_seeds.run(quick=True, device="cpu", threads=1, method="align", loss="dann", k=2, filters=8, levels=2, batch=32)
    out = capsys.readouterr().out
    assert math.isfinite(ratio)
    assert out.splitlines()[-1] == f"{bench_seeds.NAME} ratio={ratio:.2f}"
    assert "method=align (dann), K=2 seeds" in out
    # what the ratio compares must be the same training: vmapped and sequential seeds agree
    diff = re.search(r"max abs diff, test probabilities: (\S+); test UA: (\S+)", out)
    assert diff is not None and float(diff[1]) < 1e-4 and float(diff[2]) == 0.0


@pytest.mark.slow  # trains TIM under two protocols
@pytest.mark.usefixtures("embedded_corpora")
def test_small_corpus_diagnosis_runs_and_all_last_keeps_the_last_epoch(run_all, capsys):
    diagnose = importlib.import_module("diagnose_small_corpus")
    diagnose.main(["--quick", "--protocols", "recipe,all_last", "--no-probe", "--no-baseline", "--quiet"])
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line.split("|") for line in out.splitlines() if line.startswith("| TIM")}
    assert set(rows) == {"TIM target_only, recipe", "TIM target_only, all_last"}
    val_ua, kept_epoch = 6, 7  # cells after the row name: window UA, utterance UA, subject acc., train UA, ...
    assert rows["TIM target_only, all_last"][kept_epoch].strip() == "3.000 ± 0.000"  # --quick: 3 epochs, the last kept
    assert rows["TIM target_only, all_last"][val_ua].strip() == "–"  # no validation subjects, no validation UA
    assert rows["TIM target_only, recipe"][val_ua].strip() != "–"
    assert "small_corpus_all_last_over_recipe_ua ratio=" in out.splitlines()[-1]


@pytest.mark.slow  # eight recipe rows (plots, reports) per toolkit, even at 2 epochs
@pytest.mark.parametrize("reference", [False, True])
def test_reference_benchmark_prints_both_toolkits_table(run_all, capsys, reference):
    if reference:
        pytest.importorskip("skada")
        pytest.importorskip("skorch")
    bench = importlib.import_module("reference_da")
    argv = ["--seeds", "2", "--epochs", "2", "--problems", "moons", "--device", "cpu"]
    ratio = bench.measure(argv + ([] if reference else ["--no-skada"]))
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in out.splitlines() if line.startswith("| ") and "---" not in line}
    assert set(rows) == {"method"} | {p.name for p in bench.PAIRS}
    for pair in bench.PAIRS:
        ours, theirs, ours_closed, theirs_closed = rows[pair.name]
        assert ours != "–" and ours_closed != "–"
        assert (theirs != "–") == reference and (theirs_closed != "–") == reference
    assert math.isfinite(ratio)  # 1 - domadapt's mean gap closed on the moons
    assert out.splitlines()[-1] == f"{bench.NAME} ratio={ratio:.3f}"


@pytest.mark.slow  # trains TIM-Net on the embedded corpus
@pytest.mark.usefixtures("embedded_corpora")
def test_input_scale_diagnosis_scores_windows_per_utterance(run_all, capsys):
    diagnose = importlib.import_module("diagnose_input_scale")
    diagnose.main(["--quick", "--rows", "mfcc_utt_lr,mfcc_win_lr,tim_win", "--curve", "4",
                   "--set", "eval.folds=2", "--set", "train.epochs=1"])
    out = capsys.readouterr().out
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): [c.strip() for c in line.split("|")[3:7]]
            for line in out.splitlines() if line.startswith("| 4 ") or line.startswith("| all ")}
    # tim_win trains at "all" only (no --curve-tim); every other row at each point
    assert set(rows) == {("4", "mfcc_utt_lr"), ("4", "mfcc_win_lr"), ("all", "mfcc_utt_lr"),
                         ("all", "mfcc_win_lr"), ("all", "tim_win")}
    window, utterance, _, train = rows[("all", "tim_win")]
    assert window != "–" and utterance != "–" and train != "–"
    assert rows[("all", "mfcc_utt_lr")][0] == "–"  # a whole-utterance row has no window UA
    assert rows[("all", "mfcc_win_lr")][0] != "–" and rows[("all", "mfcc_win_lr")][3] == "–"


@pytest.mark.slow  # 35 TIM steps
def test_tim_step_benchmark_times_the_same_function_in_every_layout(run_all, capsys):
    bench = importlib.import_module("bench_tim_step")
    ratio = bench.run(quick=True, device="cpu")
    out = capsys.readouterr().out
    diff = re.search(r"conv, time-major and channel-major forwards, float32, eval mode: max abs difference (\S+)", out)
    assert diff is not None and float(diff[1]) < 1e-5  # the reference paths compute the same TIM
    assert len(re.findall(r"^  (conv|time-major|channel-major) +(float32|bf16 autocast) +\d+\.\d$", out, re.M)) == 6
    streams = re.findall(r"streams in one pass \S+ ms \((\d+) aten operators, (\d+) of them on activations\), "
                         r"one after the other \S+ ms \((\d+) aten operators, (\d+) of them on activations\): ratio=", out)
    assert len(streams) == 2  # the recipes' TIM and the small one
    for total, on_activations, total_in_turn, on_activations_in_turn in streams:  # the pairing really ran
        assert int(on_activations) < 0.6 * int(on_activations_in_turn) and int(total) < int(total_in_turn)
    assert out.splitlines()[-1] == f"{bench.NAME} ratio={ratio:.3f}"


def test_tim_step_profile_times_the_block_it_replaces(run_all):
    """profile_tim_step's compiled variant is only a fair comparison if, uncompiled, its
    block computes what TemporalAwareBlock does: the same outputs, gradients, dropout masks
    and BatchNorm running statistics."""
    import torch

    from domadapt.models.tim import TemporalAwareBlock

    prof = importlib.import_module("profile_tim_step")
    forward = prof.compiled_block_forward(compiler=lambda fn, **_: fn)
    block = TemporalAwareBlock(6, 6, 2, dilation=2, dropout=0.3, residual="mul", tab="standard").train()
    twin = copy.deepcopy(block)
    x = torch.randn(6, 5, 11)

    def run(module, use, seed=0):
        torch.manual_seed(seed)
        xi = x.clone().requires_grad_()
        with prof.swapped_forward(TemporalAwareBlock, use) if use is not None else contextlib.nullcontext():
            out = module(xi)
        out.pow(2).sum().backward()
        return out, xi.grad

    out, grad = run(block, None)
    out_v, grad_v = run(twin, forward)
    torch.testing.assert_close(out_v, out)
    torch.testing.assert_close(grad_v, grad)
    # the masks are random (another seed gives another output), so the match above was theirs too
    assert not torch.allclose(run(copy.deepcopy(block), forward, seed=1)[0], out)
    for name, tensor in block.state_dict().items():
        torch.testing.assert_close(twin.state_dict()[name], tensor, msg=name)
    for (name, p), q in zip(block.named_parameters(), twin.parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=name)


def test_busy_cores_reads_the_machine_counters_and_passes_the_exit_status_on(run_all, capsys):
    busy = importlib.import_module("busy_cores")
    # /proc/stat's first line: user nice system idle iowait irq softirq steal guest guest_nice
    before = busy.read_counters("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5\n")
    after = busy.read_counters("cpu  250 0 100 900 50 0 0 0 0 0\ncpu0 1 2 3 4 5\n")
    assert before == (1000, 850) and after == (1300, 950)
    # 300 jiffies passed, 100 of them idle: two thirds of 2 cores were busy
    assert busy.busy_cores(before, after, cores=2) == pytest.approx(4 / 3)
    status = busy.main(["--every", "0.05", "--", sys.executable, "-c", "print('one'); print('two'); raise SystemExit(3)"])
    out = capsys.readouterr().out.splitlines()
    assert status == 3
    assert [re.sub(r"^\[ *\d+\.\d s \| \d\.\d\d\] ", "", line) for line in out[:2]] == ["one", "two"]
    assert re.fullmatch(r"wall \d+\.\d s, \d\.\d\d of \d+ cores busy on average, \d+\.\d idle core-seconds \(exit status 3\)", out[2])


def fake_checkout(root: Path, seconds: float) -> Path:
    """A folder whose ``python -m domadapt.recipe`` sleeps ``seconds`` and writes, into its
    ``--out``, the file it ran from."""
    (root / "domadapt").mkdir(parents=True)
    (root / "domadapt" / "__init__.py").write_text("")
    (root / "domadapt" / "recipe.py").write_text(
        "import sys, time\nfrom pathlib import Path\n"
        f"time.sleep({seconds})\n"
        "out = Path(sys.argv[sys.argv.index('--out') + 1]); out.mkdir(parents=True)\n"
        "(out / 'ran').write_text(__file__)\n"
    )
    return root


def test_ab_runs_times_each_checkouts_own_code_in_turns(run_all, capsys, tmp_path, monkeypatch):
    ab = importlib.import_module("ab_runs")
    a, b = fake_checkout(tmp_path / "a", 0.05), fake_checkout(tmp_path / "b", 0.6)
    monkeypatch.setenv("PYTHONPATH", str(a))  # a stale path must not make B run A's code
    monkeypatch.setattr(ab.tempfile, "mkdtemp", lambda prefix="": str(tmp_path / prefix.strip("-")))
    assert ab.main([str(a), str(b), "--repeats", "2", "--args", "anything", "--keep"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out[:4]] == ["pair 1 A", "pair 1 B", "pair 2 B", "pair 2 A"]  # ABBA
    runs = tmp_path / "domadapt-ab-out"
    assert (runs / "B1" / "ran").read_text() == str(b / "domadapt" / "recipe.py")
    assert (runs / "A0" / "ran").read_text() == str(a / "domadapt" / "recipe.py")
    ratio = float(out[-1].removeprefix(f"{ab.NAME} ratio="))
    assert ratio > 3  # B sleeps 12x longer than A; interpreter start-up shrinks the ratio, not below 3
    with pytest.raises(SystemExit, match="expected a domadapt checkout"):
        ab.main([str(tmp_path), str(b)])
