"""Model and training configurations, and the named presets (`tiny`, `small`, `base`).

Presets are a dict of `ModelConfig` instances, picked by name then overridden with
`dataclasses.replace`, as DiT's `DiT_models` does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from model.errors import ConfigError
from store.trace import GRID_SIZE, MODEL_STEPS

# validation metrics (see `model.train.evaluate`) a run can keep its best snapshot by: all points' average
# displacement, or the moving points' average or final one (where the trace leaves what it carries)
SELECT_METRICS = ("ade_px", "ade_moving_px", "fde_moving_px")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the trace world model.

    Attributes:
        image_size: side of the square RGB (and depth) input the encoders see, in pixels.
        image_patch: stride of the image stem; the encoder yields (image_size / image_patch)^2 tokens.
        width: channel width of every token (condition and trace tokens).
        depth: number of DiT decoder blocks.
        heads: attention heads per block (width must divide by it).
        mlp_ratio: hidden width of block MLPs, as a multiple of `width`.
        cond_layers: transformer layers that mix image, depth and text tokens before the decoder.
        text_layers: transformer layers of the hashed-n-gram text encoder.
        text_buckets: rows of the hashed word/bigram/char-trigram embedding table.
        text_max_words: instructions are cut to this many words.
        point_patch: trace tokenisation, grid points per token side (1: one token per point).
        time_patch: trace tokenisation, steps per token (MODEL_STEPS: one token spans the whole horizon).
        steps: predicted steps after the start (the store's trace is cut to this).
        prediction: what the decoder's head predicts: "x" (the clean deltas; velocity = (x - x_t)/(1 - t),
            which passes noise through a narrow token without having to reconstruct it) or "v" (velocity).
        trace_input: how the noisy deltas x_t enter the trace tokens: "time-scaled" feeds t * x_t, so at
            t = 0 (pure noise, where the best x_hat is the condition's mean trace) the tokens carry the
            condition alone instead of a noise vector ~16x stronger than it; "raw" feeds x_t.
        cond_dropout: probability of replacing the whole condition by the learned null condition.
        image_backbone: "scratch", or a pretrained backend: "safetensors:<file>", "timm:<name>",
            "hf:<dir or id>" (see `model.encoders.build_image_encoder`).
        text_backbone: "hashed", or "sentence-transformers:<dir or id>".
        freeze_backbone: keep pretrained backbone weights fixed during training.
        sampler: default ODE sampler at prediction, "heun" or "euler".
        sample_steps: default number of sampler steps (Euler costs `steps` network calls, Heun 2 * steps - 1).
            Measured (benchmarks/model_bench.py --only sampler): on trained networks a few steps land nearer
            the conditional mean than 100 Euler steps, which sample the learnt spread, so their ADE is lower;
            Euler-2 keeps some spread between seeds (Euler-1 keeps none: every seed gives the same trace).
        guidance: default classifier-free guidance scale (1.0: no guidance, one network call).
    """

    image_size: int = 96
    image_patch: int = 16
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    cond_layers: int = 1
    text_layers: int = 1
    text_buckets: int = 8192
    text_max_words: int = 16
    point_patch: int = 2
    time_patch: int = MODEL_STEPS
    steps: int = MODEL_STEPS
    prediction: str = "x"
    trace_input: str = "time-scaled"
    cond_dropout: float = 0.1
    image_backbone: str = "scratch"
    text_backbone: str = "hashed"
    freeze_backbone: bool = True
    sampler: str = "euler"
    sample_steps: int = 2  # 2 network calls; ADE below 100-step Euler's on trained networks (see above)
    guidance: float = 1.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `ConfigError` naming the first inconsistent field and the fix."""
        if self.width % self.heads:
            raise ConfigError(f"width {self.width} is not divisible by heads {self.heads}; pick heads dividing width")
        if self.image_size % self.image_patch:
            raise ConfigError(
                f"image_size {self.image_size} is not a multiple of image_patch {self.image_patch}; change either"
            )
        if self.image_patch not in (4, 8, 16, 32):
            raise ConfigError(f"image_patch {self.image_patch} is not one of 4, 8, 16, 32")
        if GRID_SIZE % self.point_patch:
            raise ConfigError(f"point_patch {self.point_patch} does not divide the {GRID_SIZE}-point grid side")
        if self.steps % self.time_patch:
            raise ConfigError(f"time_patch {self.time_patch} does not divide steps {self.steps}")
        if self.sampler not in ("heun", "euler"):
            raise ConfigError(f"sampler {self.sampler!r} is unknown; use 'heun' or 'euler'")
        if self.prediction not in ("x", "v"):
            raise ConfigError(f"prediction {self.prediction!r} is unknown; use 'x' or 'v'")
        if self.trace_input not in ("time-scaled", "raw"):
            raise ConfigError(f"trace_input {self.trace_input!r} is unknown; use 'time-scaled' or 'raw'")
        if self.sample_steps < 1:
            raise ConfigError(f"sample_steps {self.sample_steps} must be at least 1")
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ConfigError(f"cond_dropout {self.cond_dropout} must lie in [0, 1)")
        if self.image_backbone.partition(":")[0] not in ("scratch", "safetensors", "timm", "hf"):
            raise ConfigError(f"image_backbone {self.image_backbone!r} is unknown; use scratch, safetensors:<file>, "
                              "timm:<name> or hf:<id>")
        if self.text_backbone.partition(":")[0] not in ("hashed", "sentence-transformers"):
            raise ConfigError(f"text_backbone {self.text_backbone!r} is unknown; use hashed or sentence-transformers:<id>")

    @property
    def num_tokens(self) -> int:
        """Trace tokens the decoder attends over."""
        return (GRID_SIZE // self.point_patch) ** 2 * (self.steps // self.time_patch)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"model config has unknown fields {unknown}; it was written by a newer version")
        return cls(**data)


PRESETS: dict[str, ModelConfig] = {
    # Tests and CPU demos: 3.3 M parameters, 100 trace tokens, ~70 training samples/s on 2 idle cores.
    "tiny": ModelConfig(image_size=96, image_patch=16, width=128, depth=4, heads=4, cond_layers=1, text_layers=1),
    # Interactive CPU use: ~3x tiny's compute per network call.
    "small": ModelConfig(
        image_size=128,
        image_patch=16,
        width=192,
        depth=6,
        heads=6,
        cond_layers=2,
        text_layers=2,
        text_buckets=16384,
    ),
    # Close to the paper's decoder (6 layers, 768 wide); for GPUs.
    "base": ModelConfig(
        image_size=224,
        image_patch=16,
        width=768,
        depth=6,
        heads=12,
        cond_layers=4,
        text_layers=4,
        text_buckets=65536,
        text_max_words=32,
        point_patch=1,
    ),
}


def preset(name: str, **overrides) -> ModelConfig:
    """The named preset, with fields overridden (e.g. `preset("tiny", depth=2)`)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


@dataclass
class TrainConfig:
    """One training (or fine-tuning) run.

    Attributes:
        out_dir: checkpoint directory written (the last state; `out_dir/best` holds the best one).
        preset: model preset name (ignored when starting from or resuming a checkpoint).
        model_overrides: fields replaced in the preset (e.g. {"depth": 2}).
        steps: optimiser steps in total (a resumed run continues up to this count).
        batch_size: samples per step per process.
        lr: peak learning rate.
        min_lr_ratio: the cosine decays to `lr * min_lr_ratio`.
        warmup_steps: linear warm-up length.
        weight_decay: AdamW decoupled weight decay.
        grad_clip: global gradient-norm clip (0 disables it).
        ema_decay: decay of the exponential moving average of weights (0 disables EMA).
        eval_every: validate every this many steps (and at the end); 0 only at the end.
        checkpoint_every: write the last checkpoint every this many steps (and at the end).
        eval_samples: validation samples scored per evaluation (at most the validation set).
        seed: seeds parameters, data order, augmentation and noise.
        device: "auto", "cpu" or "cuda".
        num_workers: data-loader worker processes.
        augment: apply colour jitter, crop/scale and horizontal flips to training samples.
        flip_prob: probability of a horizontal flip (u flips with the image).
        crop_scale: smallest side fraction kept by the random crop (1.0 disables cropping).
        jitter: colour-jitter strength (brightness, contrast, saturation in +-jitter).
        time_logit_mean, time_logit_std: flow times are sampled as sigmoid(N(mean, std)) (logit-normal,
            as JiT does for x-prediction: mostly noisy times, where the condition matters); std 0 samples
            uniformly.
        log_every: report progress every this many steps.
        threads: torch CPU threads (0 keeps torch's default).
        select_metric: the validation metric (lower is better, one of `SELECT_METRICS`) that picks
            `out_dir/best`; where it is NaN (no validation point moves) the all-points ADE decides.
        provenance: free-form description of the training data, stored in config.json.
    """

    out_dir: str = "checkpoint"
    preset: str = "tiny"
    model_overrides: dict = field(default_factory=dict)
    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    eval_every: int = 500
    checkpoint_every: int = 500
    eval_samples: int = 64
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    augment: bool = True
    flip_prob: float = 0.5
    crop_scale: float = 0.8
    jitter: float = 0.2
    time_logit_mean: float = -0.8
    time_logit_std: float = 0.8
    log_every: int = 10
    threads: int = 0
    select_metric: str = "ade_px"
    provenance: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad field and the fix."""
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError(f"steps {self.steps} and batch_size {self.batch_size} must be at least 1")
        if self.lr <= 0:
            raise ConfigError(f"lr {self.lr} must be positive")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay {self.ema_decay} must lie in [0, 1)")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device {self.device!r} is unknown; use auto, cpu or cuda")
        if self.select_metric not in SELECT_METRICS:
            raise ConfigError(f"select_metric {self.select_metric!r} is unknown; use one of {', '.join(SELECT_METRICS)}")
        if not 0.1 <= self.crop_scale <= 1.0:
            raise ConfigError(f"crop_scale {self.crop_scale} must lie in [0.1, 1]")
