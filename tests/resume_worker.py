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

sys.path.insert(0, str(Path(__file__).parent))
from tiny import spec, tiny_fold, tiny_model, tiny_train  # noqa: E402

from domadapt.methods import build_method  # noqa: E402
from domadapt.train import Trainer, predict_proba  # noqa: E402

torch.set_num_threads(1)
checkpoint, name, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
options = {"refresh_every": 2} if name == "multitrain_ae" else {}
fold = tiny_fold()
cfg = tiny_train(epochs=6, pretrain_epochs=3)
model = tiny_model(fold)
method = build_method(spec(name, **options), cfg)
stages_of = method.stages


def announcing_stages(m, d):
    stages = stages_of(m, d)
    for stage in stages:
        inner = stage.on_epoch_start

        def hook(epoch, stage=stage, inner=inner):
            print(f"epoch {stage.name} {epoch}", flush=True)
            time.sleep(0.05)
            if inner is not None:
                inner(epoch)

        stage.on_epoch_start = hook
    return stages


method.stages = announcing_stages
history = Trainer(cfg, device=torch.device("cpu"), checkpoint=checkpoint, resume=mode == "resume").fit(
    model, method, fold, seed=7
)
probs = predict_proba(lambda x: method.target_logits(model.eval(), x), fold.target_test.x)
print(json.dumps({"probs": probs.tolist(), "history": history}), flush=True)
