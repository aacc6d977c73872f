"""Subprocess for test_resume: trains a tiny multi-stage run with per-epoch checkpoints.

usage: python resume_worker.py CHECKPOINT METHOD resume|fresh
Prints "epoch STAGE N" at the start of every epoch (after the previous epoch's checkpoint)
and, at the end, one JSON line with the test probabilities and the history.
"""

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent.parent))
from tiny import CPU, spec, tiny_fold, tiny_method, tiny_train  # noqa: E402

from domadapt.engine import EagerReplica, Run, fit  # noqa: E402

torch.set_num_threads(1)
checkpoint, name, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
options = {"refresh_every": 2} if name == "multitrain_ae" else {}
fold = tiny_fold()
cfg = tiny_train(epochs=6, pretrain_epochs=3)
replica = EagerReplica(tiny_method(fold, spec(name, **options), cfg, seed=7), 7, fold, CPU)
for stage in replica.stages:
    inner = stage.on_epoch_start

    def hook(epoch, stage=stage, inner=inner):
        print(f"epoch {stage.name} {epoch}", flush=True)
        time.sleep(0.05)
        if inner is not None:
            inner(epoch)

    stage.on_epoch_start = hook
(history,) = fit(replica, cfg, Run(checkpoint=checkpoint, resume=mode == "resume"))
probs = replica.predict(replica.method.target_logits, fold.target_test.x)[0]
print(json.dumps({"probs": probs.tolist(), "history": history}), flush=True)
