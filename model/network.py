"""The trace world model: a DiT-style decoder over trace tokens attending to condition tokens.

Condition: image tokens (+ depth features or the learned "no depth" token) and instruction tokens,
mixed by `cond_layers` transformer layers. Trace tokens: patches of `point_patch` x `point_patch` grid
points x `time_patch` steps of the noisy normalised deltas (scaled by t, see `ModelConfig.trace_input`),
plus the points' start positions, the input pixel colour under each point and the (mixed) image
feature under the patch. Each block: adaLN-modulated self-attention, cross-attention to the
condition, adaLN-modulated MLP; adaLN gates and the output layer start at zero (DiT), so an untrained
network predicts zero velocity. With prediction "x" the head predicts the clean deltas x_hat and the
velocity is (x_hat - g x_t) / (1 - t), whose skip gate g starts at 0 (zero velocity) and reaches 1
within the first ten or so optimiser steps (a gate short of 1 leaves the head to cancel (1 - g) of
the noise, which it cannot: measured, a gate stuck near 0.92 kept the head near "nothing moves").
A learned null condition replaces the whole condition under condition dropout and for
classifier-free guidance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.config import ModelConfig
from model.encoders import (
    DepthEncoder,
    HashedTextEncoder,
    SentenceTransformerText,
    build_image_encoder,
    hash_instructions,
)
from store.trace import GRID_SIZE

MIN_REMAINING_TIME = 0.05  # x-prediction divides by 1 - t; this bounds the factor near t = 1
SKIP_GATE_GAIN = 1e4  # the x-prediction skip gate is tanh(gain * s): Adam opens it fully once s passes ~3 / gain


@dataclass
class Condition:
    """Everything the decoder needs besides the noisy trace; computed once per prediction.

    Attributes:
        tokens: (B, N, width) condition tokens.
        pad: (B, N) bool, true for padding tokens (ignored by cross-attention).
        pooled: (B, width) summary added to the time embedding for adaLN.
        point_features: (B, P, width) image features under each spatial trace patch (P = (20/p)^2).
        start: (B, K, 3) normalised start positions.
        point_colours: (B, K, 3) input-image RGB in [-1, 1] under each start position.
        cross_kv: per decoder block, the cross-attention keys and values of `tokens`, each
            (B, heads, N, width / heads): computed once, reused by every sampler step.
    """

    tokens: torch.Tensor
    pad: torch.Tensor
    pooled: torch.Tensor
    point_features: torch.Tensor
    start: torch.Tensor
    point_colours: torch.Tensor
    cross_kv: list[tuple[torch.Tensor, torch.Tensor]]


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class Attention(nn.Module):
    """Multi-head attention (self when `context` is None), with an optional key padding mask."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key_value = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def context_key_value(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of `context` (B, M, C) -> 2 x (B, h, M, d)."""
        k, v = self.key_value(context).view(context.shape[0], context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        return k, v

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, pad: torch.Tensor | None = None,
                key_value: tuple[torch.Tensor, torch.Tensor] | None = None):
        """x (B, N, C), context (B, M, C) or its precomputed `key_value`, pad (B, M) bool -> (B, N, C)."""
        batch, length, width = x.shape
        q = self.query(x).view(batch, length, self.heads, -1).transpose(1, 2)  # (B, h, N, d)
        k, v = key_value if key_value is not None else self.context_key_value(x if context is None else context)
        mask = None if pad is None else ~pad[:, None, None, :]  # (B, 1, 1, M) true = attend
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, N, d)
        return self.out(y.transpose(1, 2).reshape(batch, length, width))


class DecoderBlock(nn.Module):
    """adaLN-Zero self-attention, cross-attention to the condition, adaLN-Zero MLP."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm_self = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.self_attention = Attention(width, heads)
        self.norm_cross = nn.LayerNorm(width, eps=1e-6)
        self.cross_attention = Attention(width, heads)
        self.norm_mlp = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.adaptive = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        nn.init.zeros_(self.adaptive[1].weight)
        nn.init.zeros_(self.adaptive[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, cond_kv: tuple, pad: torch.Tensor) -> torch.Tensor:
        """x (B, N, C) trace tokens, c (B, C) time + pooled condition, cond_kv the condition's keys and
        values for this block's cross-attention, pad (B, M)."""
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.adaptive(c).chunk(6, dim=-1)  # 6 x (B, C)
        x = x + gate_a.unsqueeze(1) * self.self_attention(modulate(self.norm_self(x), shift_a, scale_a))
        x = x + self.cross_attention(self.norm_cross(x), pad=pad, key_value=cond_kv)
        return x + gate_m.unsqueeze(1) * self.mlp(modulate(self.norm_mlp(x), shift_m, scale_m))


def timestep_embedding(t: torch.Tensor, dim: int = 256) -> torch.Tensor:
    """Sinusoidal embedding of flow times t (B,) in [0, 1] -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class TraceFlowNet(nn.Module):
    """Velocity field over normalised trace deltas (B, K, S, 3), conditioned on image, depth and text."""

    def __init__(self, cfg: ModelConfig, load_pretrained: bool = True):
        super().__init__()
        self.cfg = cfg
        w, p, tp = cfg.width, cfg.point_patch, cfg.time_patch
        self.grid = cfg.image_size // cfg.image_patch
        self.spatial_tokens = (GRID_SIZE // p) ** 2
        self.time_tokens = cfg.steps // tp
        self.image_encoder = build_image_encoder(cfg, load_weights=load_pretrained)
        if cfg.freeze_backbone and cfg.image_backbone != "scratch":
            self.image_encoder.requires_grad_(False)
        self.depth_encoder = DepthEncoder(cfg)
        kind, _, source = cfg.text_backbone.partition(":")  # ModelConfig has checked the kind
        self.text_encoder = HashedTextEncoder(cfg) if kind == "hashed" else SentenceTransformerText(cfg, source)
        self.image_position = nn.Parameter(torch.randn(self.grid * self.grid, w) * 0.02)
        self.cond_type = nn.Parameter(torch.randn(2, w) * 0.02)  # image, text
        self.cond_mixer = nn.ModuleList(
            nn.TransformerEncoderLayer(w, cfg.heads, int(w * cfg.mlp_ratio), 0.0, batch_first=True, norm_first=True)
            for _ in range(cfg.cond_layers)
        )
        self.cond_norm = nn.LayerNorm(w)
        num_cond = self.grid * self.grid + (cfg.text_max_words if kind == "hashed" else 1)
        self.null_tokens = nn.Parameter(torch.randn(num_cond, w) * 0.02)
        self.null_point_feature = nn.Parameter(torch.zeros(w))
        self.point_feature_proj = nn.Linear(w, w)
        self.token_in = nn.Linear(p * p * (tp * 3 + 6), w)
        self.token_position = nn.Parameter(torch.randn(self.spatial_tokens * self.time_tokens, w) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(256, w), nn.SiLU(), nn.Linear(w, w))
        self.pooled_proj = nn.Linear(w, w)
        self.blocks = nn.ModuleList(DecoderBlock(w, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(w, elementwise_affine=False, eps=1e-6)
        self.adaptive_out = nn.Sequential(nn.SiLU(), nn.Linear(w, 2 * w))
        self.token_out = nn.Linear(w, p * p * tp * 3)
        self.skip_gate = nn.Parameter(torch.zeros(()))  # x-prediction only; zero keeps the initial velocity zero
        for layer in (self.adaptive_out[1], self.token_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    # ------------------------------------------------------------------------------- condition
    def condition(self, image, depth, has_depth, texts: list[str], start, drop=None) -> Condition:
        """Encode the condition once.

        Args:
            image: (B, 3, S, S) float in [-1, 1].
            depth: (B, 2, S, S) float [log depth, known] (zeros when absent).
            has_depth: (B,) bool.
            texts: B instructions.
            start: (B, K, 3) normalised start positions.
            drop: (B,) bool, replace the condition by the learned null condition (None: keep all).
        """
        batch = image.shape[0]
        features = self.image_encoder(image) + self.depth_encoder(depth, has_depth)  # (B, C, h, w)
        image_tokens = features.flatten(2).transpose(1, 2) + self.image_position + self.cond_type[0]  # (B, hw, C)
        text_tokens, text_pad = self._encode_text(texts, image.device)  # (B, T, C), (B, T)
        tokens = torch.cat([image_tokens, text_tokens + self.cond_type[1]], dim=1)  # (B, N, C)
        pad = torch.cat([torch.zeros_like(text_pad[:, :1]).expand(-1, image_tokens.shape[1]), text_pad], dim=1)
        for layer in self.cond_mixer:
            tokens = layer(tokens, src_key_padding_mask=pad)
        tokens = self.cond_norm(tokens)
        mixed_map = tokens[:, : self.grid**2].transpose(1, 2).reshape(batch, -1, self.grid, self.grid)
        point_features = self.point_feature_proj(self._features_at_patches(mixed_map, start))  # (B, P, C)
        if drop is None:
            drop = torch.zeros(batch, dtype=torch.bool, device=image.device)
        tokens = torch.where(drop[:, None, None], self.null_tokens.expand(batch, -1, -1), tokens)
        pad = torch.where(drop[:, None], torch.zeros_like(pad), pad)
        point_features = torch.where(drop[:, None, None], self.null_point_feature.expand_as(point_features), point_features)
        keep = (~pad).unsqueeze(-1).float()  # (B, N, 1)
        pooled = (tokens * keep).sum(1) / keep.sum(1)  # (B, C)
        colours = F.grid_sample(image, (start[..., :2] * 2.0 - 1.0).unsqueeze(2), align_corners=False)  # (B, 3, K, 1)
        colours = colours.squeeze(-1).transpose(1, 2)  # (B, K, 3)
        colours = torch.where(drop[:, None, None], torch.zeros_like(colours), colours)
        cross_kv = [block.cross_attention.context_key_value(tokens) for block in self.blocks]
        return Condition(tokens, pad, pooled, point_features, start, colours, cross_kv)

    def _encode_text(self, texts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(self.text_encoder, HashedTextEncoder):
            ids, word_mask = hash_instructions(texts, self.cfg.text_buckets, self.cfg.text_max_words)
            ids, word_mask = ids.to(device), word_mask.to(device)
            return self.text_encoder(ids, word_mask), ~word_mask
        tokens = self.text_encoder(texts)  # (B, 1, C)
        return tokens, torch.zeros(tokens.shape[:2], dtype=torch.bool, device=device)

    def _features_at_patches(self, feature_map: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """Bilinear features (B, C, h, w) at each spatial patch's mean start position -> (B, P, C)."""
        centres = self._patchify_points(start[..., :2].unsqueeze(2)).mean(2)  # (B, P, 2)
        grid = (centres * 2.0 - 1.0).unsqueeze(2)  # (B, P, 1, 2) in [-1, 1], x then y
        sampled = F.grid_sample(feature_map, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return sampled.squeeze(-1).transpose(1, 2)  # (B, P, C)

    # ---------------------------------------------------------------------------- tokenisation
    def _patchify_points(self, x: torch.Tensor) -> torch.Tensor:
        """(B, K, S, D) -> (B, P, p*p*S, D) grouping p x p neighbouring grid points."""
        b, _, s, d = x.shape
        p, n = self.cfg.point_patch, GRID_SIZE // self.cfg.point_patch
        x = x.view(b, n, p, n, p, s, d).permute(0, 1, 3, 2, 4, 5, 6)  # (B, n, n, p, p, S, D)
        return x.reshape(b, n * n, p * p * s, d)

    def tokenize(self, x: torch.Tensor, point_inputs: torch.Tensor) -> torch.Tensor:
        """Noisy deltas (B, K, S, 3) and per-point inputs (B, K, D) -> tokens (B, P*Tt, p*p*(tp*3 + D))."""
        b, p, tp = x.shape[0], self.cfg.point_patch, self.cfg.time_patch
        n = GRID_SIZE // p
        x = x.reshape(b, n, p, n, p, self.time_tokens, tp, 3).permute(0, 1, 3, 5, 2, 4, 6, 7)  # (B,n,n,Tt,p,p,tp,3)
        x = x.reshape(b, n * n, self.time_tokens, p * p * tp * 3)
        s = self._patchify_points(point_inputs.unsqueeze(2)).reshape(b, n * n, 1, -1)  # (B, P, 1, p*p*D)
        tokens = torch.cat([x, s.expand(-1, -1, self.time_tokens, -1)], dim=-1)  # (B, P, Tt, F)
        return tokens.reshape(b, n * n * self.time_tokens, -1)

    def untokenize(self, y: torch.Tensor) -> torch.Tensor:
        """Token outputs (B, P*Tt, p*p*tp*3) -> deltas (B, K, S, 3)."""
        b, p, tp = y.shape[0], self.cfg.point_patch, self.cfg.time_patch
        n = GRID_SIZE // p
        y = y.reshape(b, n, n, self.time_tokens, p, p, tp, 3).permute(0, 1, 4, 2, 5, 3, 6, 7)  # (B,n,p,n,p,Tt,tp,3)
        return y.reshape(b, GRID_SIZE * GRID_SIZE, self.cfg.steps, 3)

    # -------------------------------------------------------------------------------- velocity
    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Condition) -> torch.Tensor:
        """Velocity of noisy normalised deltas x (B, K, S, 3) at flow times t (B,) -> (B, K, S, 3)."""
        point_inputs = torch.cat([cond.start, cond.point_colours], dim=-1)  # (B, K, 6)
        x_in = x * t.to(x.dtype).reshape(-1, 1, 1, 1) if self.cfg.trace_input == "time-scaled" else x
        tokens = self.token_in(self.tokenize(x_in, point_inputs)) + self.token_position  # (B, P*Tt, C)
        b, c = tokens.shape[0], tokens.shape[-1]
        point = cond.point_features.unsqueeze(2).expand(-1, -1, self.time_tokens, -1).reshape(b, -1, c)
        tokens = tokens + point
        ada = self.time_mlp(timestep_embedding(t)) + self.pooled_proj(cond.pooled)  # (B, C)
        for block, cross_kv in zip(self.blocks, cond.cross_kv, strict=True):
            tokens = block(tokens, ada, cross_kv, cond.pad)
        shift, scale = self.adaptive_out(ada).chunk(2, dim=-1)
        head = self.untokenize(self.token_out(modulate(self.norm_out(tokens), shift, scale)))  # (B, K, S, 3)
        if self.cfg.prediction == "v":
            return head
        remaining = (1.0 - t.float()).clamp(min=MIN_REMAINING_TIME).reshape(-1, 1, 1, 1)  # (B, 1, 1, 1)
        gate = torch.tanh(SKIP_GATE_GAIN * self.skip_gate)  # 0 at init, learns ~1: v = (x_hat - x) / (1 - t)
        return (head - gate * x) / remaining

    def forward(self, x, t, image, depth, has_depth, texts, start, drop=None) -> torch.Tensor:
        """Training entry point (one call, as DDP needs): condition then velocity -> (B, K, S, 3)."""
        return self.velocity(x, t, self.condition(image, depth, has_depth, texts, start, drop))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
