"""Run by test_train.py under `torchrun --nproc_per_node 2`: a short DDP training on synthetic data.

Each rank writes a digest of its final raw weights so the test can check the replicas agree.
"""

import hashlib
import os
import sys
from pathlib import Path

import torch

import model.train as training
from model.config import TrainConfig
from model.synthetic import SyntheticTraceDataset

torch.set_num_threads(1)
out = Path(sys.argv[1])
runs = []
step_once = training._train_step


def _spy(run, batch):  # keeps a handle on this rank's replica
    runs.append(run) if not runs else None
    return step_once(run, batch)


training._train_step = _spy
cfg = TrainConfig(out_dir=str(out / "ckpt"), steps=4, batch_size=2, model_overrides={"depth": 1}, warmup_steps=1,
                  eval_every=0, checkpoint_every=0, log_every=1, device="cpu")
training.train(cfg, SyntheticTraceDataset(num_videos=4, samples_per_video=2), SyntheticTraceDataset(1, 2, seed=9))
digest = hashlib.sha256()
for name, tensor in sorted(runs[0].model.module.state_dict().items()):
    digest.update(name.encode() + tensor.numpy().tobytes())
(out / f"rank{os.environ['RANK']}.txt").write_text(digest.hexdigest())
