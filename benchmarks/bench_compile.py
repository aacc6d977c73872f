"""torch.compile: a fit with ``train.compile = true`` vs the same fit in eager mode.

``train.compile`` compiles the general extractor (TIM, the bulk of every step) in place with
``nn.Module.compile``. Compiled code is cached per process and reused by every later model of
the same architecture, so a recipe pays the compile once and each later run gets the faster
steps. Three fits of ``target_only`` on one fold, from identical initial weights:

  (a) eager;
  (b) compiled, the first in this process: includes compiling (train mode, the last partial
      batch, eval mode for model selection and the test predictions);
  (c) compiled again with a fresh model: the cached code, the steady state of a recipe.

Inductor's on-disk cache goes to a fresh temporary folder, so (b) is a cold compile.

    python benchmarks/bench_compile.py [--quick] [--device auto|cpu|cuda] [--threads N]

Prints the three times, the compile overhead (b - c) and after how many eager fits' worth of
work it is paid back. The last line is
``compile_steady_over_eager_lower_is_better ratio=<(c) / (a)>``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

NAME = "compile_steady_over_eager_lower_is_better"


def run(quick: bool = False, device: str = "auto", threads: int | None = None) -> float:
    """Time (a), (b), (c); print them and the ratio; return (c) / (a)."""
    cache = tempfile.mkdtemp(prefix="domadapt-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # before torch compiles anything: a cold compile

    import torch
    from bench_training_step import describe, random_fold, set_threads, synchronizer, tim_model

    from domadapt.config import MethodSpec, TrainConfig
    from domadapt.device import resolve_device
    from domadapt.engine import EagerReplica
    from domadapt.engine import fit as fit_replicas
    from domadapt.methods import build_method

    dev = resolve_device(device)
    set_threads(threads, dev)
    n_target, epochs = (200, 2) if quick else (600, 3)
    data = random_fold(n_source=64, n_target=n_target, n_eval=100, device=dev)
    cfg = TrainConfig(epochs=epochs, batch_size=64, lr=1e-3)
    spec = MethodSpec("target_only", {})
    sync = synchronizer(dev)

    def fit(compiled: bool) -> tuple[float, torch.Tensor]:
        method = build_method(spec, cfg, tim_model(0, dropout=0.1))
        sync()
        start = time.perf_counter()
        replica = EagerReplica(method, 0, data, dev, compile=compiled)
        fit_replicas(replica, cfg)
        probs = replica.predict(method.target_logits, data.target_test.x)[0]
        sync()
        return time.perf_counter() - start, probs

    fit(False)  # warm-up of the eager side (allocator, oneDNN primitives), untimed
    t_eager, p_eager = fit(False)
    t_first, _ = fit(True)
    t_steady, p_steady = fit(True)
    t_eager_again, _ = fit(False)  # eager once more, to see the drift of a shared machine
    eager = min(t_eager, t_eager_again)
    overhead = t_first - t_steady
    saved = eager - t_steady
    ratio = t_steady / eager
    steps = epochs * -(-n_target // 64)
    print(describe(dev))
    print(
        f"target_only, TIM (39 filters, 8 levels, dropout 0.1), target train {n_target} x [39, 94], "
        f"batch 64, {epochs} epochs ({steps} steps) + model selection on 100 + test on 100 segments"
    )
    print(f"(a) eager fit:                      {t_eager:7.2f} s (again at the end: {t_eager_again:.2f} s)")
    print(f"(b) compiled fit, first (compiles): {t_first:7.2f} s")
    print(f"(c) compiled fit, cached code:      {t_steady:7.2f} s")
    print(
        "max abs diff of test probabilities, (c) vs (a): "
        f"{float((p_steady - p_eager).abs().max()):.2e}"
    )
    if saved > 0:
        print(
            f"compile overhead {overhead:.1f} s; each compiled fit saves {saved:.2f} s: paid back after "
            f"{overhead / saved:.0f} fits of this size ({overhead / saved * steps:.0f} training steps)"
        )
    else:
        print(f"compile overhead {overhead:.1f} s; a compiled fit is not faster here: never paid back")
    print(f"{NAME} ratio={ratio:.3f}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    from bench_training_step import standard_main

    return standard_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
