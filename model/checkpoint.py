"""Checkpoints: a directory with `model.safetensors` (weights only, never pickle), `config.json`
(model config, normalisation, encoder ids, data provenance, step, checkpoint id, versions) and,
for exact resume, an optional `train_state.pt` (optimiser, raw weights, EMA, RNG states; tensors only).

`config.json` is written last, so a directory with a `config.json` is a complete checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path

import torch

from model.config import ModelConfig
from model.errors import CheckpointError, ConfigError
from model.network import TraceFlowNet
from model.normalize import NORMALIZATION

FORMAT = "tracegen-trace-model"
VERSION = 2  # 2: the x-prediction skip gate at gain 1e4 and the time-scaled trace input (v1 weights mean other things)
WEIGHTS, CONFIG, TRAIN_STATE = "model.safetensors", "config.json", "train_state.pt"


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    cfg: ModelConfig,
    step: int = 0,
    meta: dict | None = None,
    train_state: dict | None = None,
) -> Path:
    """Write a checkpoint directory (files replaced atomically, `config.json` last).

    Args:
        path: directory (created if needed).
        model: the network whose weights are saved (pass the EMA copy for inference weights).
        cfg: its `ModelConfig`.
        step: optimiser steps that produced it.
        meta: extra JSON-able fields, e.g. {"data": provenance, "train": train config}.
        train_state: tensors-and-numbers dict for exact resume (written with torch.save).
    Returns:
        The directory.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if train_state is not None:
        _atomic(path / TRAIN_STATE, lambda tmp: torch.save(train_state, tmp))
    weights = {name: t.detach().contiguous().cpu() for name, t in model.state_dict().items()}
    _atomic(path / WEIGHTS, lambda tmp: save_file(weights, str(tmp), metadata={"format": FORMAT}))
    digest = hashlib.sha256((path / WEIGHTS).read_bytes()).hexdigest()
    config = {
        "format": FORMAT,
        "version": VERSION,
        "checkpoint_id": f"tg-{digest[:16]}",
        "step": int(step),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": cfg.to_dict(),
        "normalization": NORMALIZATION,
        "encoders": {"image": cfg.image_backbone, "text": cfg.text_backbone},
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        **(meta or {}),
    }
    _atomic(path / CONFIG, lambda tmp: tmp.write_text(json.dumps(config, indent=2, default=str)))
    return path


def read_checkpoint_config(path: str | Path) -> dict:
    """The validated `config.json` of a checkpoint directory."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} is not a directory; pass the --out directory of `tracegen pretrain`")
    for name in (CONFIG, WEIGHTS):
        if not (path / name).is_file():
            raise CheckpointError(f"checkpoint {path} lacks {name}; it is incomplete, re-run training or pick another")
    try:
        config = json.loads((path / CONFIG).read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint {path}/{CONFIG} is not valid JSON ({exc}); re-save the checkpoint") from exc
    if config.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {config.get('format')!r}, not {FORMAT!r}; it is not a trace model")
    if config.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has version {config.get('version')}, this tracegen reads version {VERSION}; "
            "use the tracegen release that wrote it"
        )
    if config.get("normalization") != NORMALIZATION:
        raise CheckpointError(f"checkpoint {path} uses normalisation {config.get('normalization')}; this tracegen uses {NORMALIZATION}")
    return config


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[TraceFlowNet, ModelConfig, dict]:
    """Rebuild the network from a checkpoint directory.

    Returns:
        (model in eval mode on `device`, its ModelConfig, the whole config.json as meta).
    """
    from safetensors.torch import load_file

    config = read_checkpoint_config(path)
    try:
        cfg = ModelConfig.from_dict(config["model"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} has an unusable model config: {exc}") from exc
    model = TraceFlowNet(cfg, load_pretrained=False)
    weights = load_file(str(Path(path) / WEIGHTS))
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {path} weights do not fit its config (missing {missing[:3]}, unexpected {unexpected[:3]}); "
            "it was written by an incompatible version"
        )
    for name, tensor in expected.items():
        if weights[name].shape != tensor.shape:
            raise CheckpointError(f"checkpoint {path}: {name} has shape {tuple(weights[name].shape)}, expected {tuple(tensor.shape)}")
    model.load_state_dict(weights)
    return model.to(device).eval(), cfg, config


def load_train_state(path: str | Path) -> dict | None:
    """The resume state saved with a checkpoint, or None when it has none."""
    state_path = Path(path) / TRAIN_STATE
    if not state_path.is_file():
        return None
    return torch.load(state_path, map_location="cpu", weights_only=True)


def _atomic(target: Path, write) -> None:
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, target)
