"""Condition encoders: image (conv stem from scratch, or a pretrained backbone), depth with a learned
"no depth" token, and instruction text (hashed word/bigram/char-trigram embeddings + a transformer).

Pretrained backends sit behind `ModelConfig.image_backbone` / `text_backbone` and are never needed:
  "safetensors:<file>"           a conv stem of this architecture whose weights are read from a local file
                                 (e.g. one written by `save_image_backbone` from another checkpoint)
  "timm:<name>"                  a timm feature backbone (needs `pip install timm`)
  "hf:<dir or id>"               a Hugging Face vision model (needs `pip install transformers`)
  "sentence-transformers:<dir>"  a sentence-embedding text model (needs `pip install sentence-transformers`)
"""

from __future__ import annotations

import importlib
import math
import zlib
from pathlib import Path

import torch
from torch import nn

from model.config import ModelConfig
from model.errors import ConfigError

CHAR_NGRAMS_PER_WORD = 6
FEATURES_PER_WORD = 2 + CHAR_NGRAMS_PER_WORD  # word, bigram with the previous word, char trigrams


# ---------------------------------------------------------------------------------------------------
# Text


def _bucket(text: str, buckets: int) -> int:
    """Stable hash of a feature string into [1, buckets) (0 is padding)."""
    return 1 + zlib.crc32(text.encode("utf-8")) % (buckets - 1)


def hash_instructions(texts: list[str], buckets: int, max_words: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Hashed features of each word: the word, its bigram with the previous word, its char trigrams.

    Args:
        texts: B instructions.
    Returns:
        ids (B, W, FEATURES_PER_WORD) int64 in [0, buckets) with 0 as padding, and
        word_mask (B, W) bool, true for real words; W = max_words. An empty text becomes "<empty>".
    """
    ids = torch.zeros(len(texts), max_words, FEATURES_PER_WORD, dtype=torch.int64)
    word_mask = torch.zeros(len(texts), max_words, dtype=torch.bool)
    for row, text in enumerate(texts):
        words = "".join(c if c.isalnum() else " " for c in text.lower()).split()[:max_words] or ["<empty>"]
        previous = "<s>"
        for col, word in enumerate(words):
            padded = f"<{word}>"
            trigrams = [padded[i : i + 3] for i in range(max(1, len(padded) - 2))][:CHAR_NGRAMS_PER_WORD]
            features = [f"w:{word}", f"b:{previous} {word}"] + [f"c:{g}" for g in trigrams]
            ids[row, col, : len(features)] = torch.tensor([_bucket(f, buckets) for f in features])
            word_mask[row, col] = True
            previous = word
    return ids, word_mask


class HashedTextEncoder(nn.Module):
    """Instruction tokens from hashed n-gram embeddings, mixed by a small transformer."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.text_buckets, cfg.width, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.position = nn.Parameter(torch.zeros(cfg.text_max_words, cfg.width))
        nn.init.normal_(self.position, std=0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                cfg.width, cfg.heads, int(cfg.width * cfg.mlp_ratio), dropout=0.0, batch_first=True, norm_first=True
            )
            for _ in range(cfg.text_layers)
        )
        self.norm = nn.LayerNorm(cfg.width)

    def forward(self, ids: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """ids (B, W, F) int64, word_mask (B, W) bool -> tokens (B, W, width)."""
        counts = (ids > 0).sum(-1, keepdim=True).clamp(min=1)  # (B, W, 1)
        words = self.embedding(ids).sum(2) / counts + self.position[: ids.shape[1]]  # (B, W, width)
        for layer in self.layers:
            words = layer(words, src_key_padding_mask=~word_mask)
        return self.norm(words)


class SentenceTransformerText(nn.Module):
    """A pretrained sentence-embedding model as one condition token (frozen), projected to `width`."""

    def __init__(self, cfg: ModelConfig, source: str):
        super().__init__()
        module = _import_optional("sentence_transformers", "sentence-transformers")
        self.encoder = module.SentenceTransformer(source, device="cpu")
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(False)
        self.project = nn.Linear(self.encoder.get_sentence_embedding_dimension(), cfg.width)

    def forward(self, texts: list[str]) -> torch.Tensor:
        """B texts -> (B, 1, width)."""
        with torch.no_grad():
            embedded = self.encoder.encode(texts, convert_to_tensor=True).float()  # (B, D)
        return self.project(embedded.to(self.project.weight.device)).unsqueeze(1)


# ---------------------------------------------------------------------------------------------------
# Image and depth


class ConvStem(nn.Module):
    """Strided 3x3 conv stages from `in_channels` to a (B, width, S/patch, S/patch) feature map."""

    def __init__(self, in_channels: int, width: int, patch: int):
        super().__init__()
        stages = int(math.log2(patch))
        channels = [in_channels] + [max(16, width // 2 ** (stages - i)) for i in range(1, stages)] + [width]
        layers: list[nn.Module] = []
        for i in range(stages):
            layers.append(nn.Conv2d(channels[i], channels[i + 1], 3, stride=2, padding=1))
            if i < stages - 1:
                layers += [nn.GroupNorm(min(8, channels[i + 1]), channels[i + 1]), nn.GELU()]
        self.stages = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) -> (B, width, S/patch, S/patch)."""
        return self.stages(image)


class DepthEncoder(nn.Module):
    """Depth map to a feature map; samples without depth get a learned "no depth" token everywhere."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.stem = ConvStem(2, cfg.width, cfg.image_patch)
        self.no_depth = nn.Parameter(torch.zeros(cfg.width))
        nn.init.normal_(self.no_depth, std=0.02)

    def forward(self, depth: torch.Tensor, has_depth: torch.Tensor) -> torch.Tensor:
        """depth (B, 2, S, S) [log metres, known], has_depth (B,) bool -> (B, width, h, w)."""
        features = self.stem(depth)  # (B, width, h, w)
        missing = self.no_depth[None, :, None, None].expand_as(features)
        return torch.where(has_depth[:, None, None, None], features, missing)


class PretrainedImageBackbone(nn.Module):
    """A timm or Hugging Face vision backbone, resampled to the stem's grid and projected to `width`."""

    def __init__(self, cfg: ModelConfig, kind: str, source: str, load_weights: bool = True):
        """`load_weights` False builds the architecture only (a checkpoint's weights replace it next)."""
        super().__init__()
        self.kind, self.grid = kind, cfg.image_size // cfg.image_patch
        if kind == "timm":
            timm = _import_optional("timm", "timm")
            self.backbone = timm.create_model(source, pretrained=load_weights, features_only=True, out_indices=(-1,))
            channels = self.backbone.feature_info.channels()[-1]
        else:
            transformers = _import_optional("transformers", "transformers")
            if load_weights:
                self.backbone = transformers.AutoModel.from_pretrained(source)
            else:
                self.backbone = transformers.AutoModel.from_config(transformers.AutoConfig.from_pretrained(source))
            channels = self.backbone.config.hidden_size
        self.project = nn.Conv2d(channels, cfg.width, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, width, h, w)."""
        if self.kind == "timm":
            features = self.backbone(image)[-1]  # (B, C, h', w')
        else:
            hidden = self.backbone(pixel_values=image).last_hidden_state  # (B, 1 + h'w', C)
            side = int(math.isqrt(hidden.shape[1] - 1))
            features = hidden[:, -side * side :].transpose(1, 2).reshape(hidden.shape[0], -1, side, side)
        features = nn.functional.interpolate(features, size=(self.grid, self.grid), mode="bilinear")
        return self.project(features)


def build_image_encoder(cfg: ModelConfig, load_weights: bool = True) -> nn.Module:
    """The image encoder `cfg.image_backbone` names; pretrained weights are read when `load_weights`.

    A model rebuilt from a checkpoint passes `load_weights=False`: its weights come from the checkpoint.
    """
    kind, _, source = cfg.image_backbone.partition(":")
    if kind == "scratch":
        return ConvStem(3, cfg.width, cfg.image_patch)
    if kind == "safetensors":
        stem = ConvStem(3, cfg.width, cfg.image_patch)
        if load_weights:
            load_image_backbone(stem, source)
        return stem
    if kind in ("timm", "hf"):
        return PretrainedImageBackbone(cfg, kind, source, load_weights)
    raise ConfigError(f"image_backbone {cfg.image_backbone!r} is unknown; use scratch, safetensors:<file>, timm:<name> or hf:<id>")


def check_backbone_sources(cfg: ModelConfig) -> None:
    """Raise `ConfigError` now, before any data is read, when a pretrained backbone's weights file is missing
    or its package is not installed (what building the network would find later)."""
    image_kind, _, source = cfg.image_backbone.partition(":")
    if image_kind == "safetensors" and not Path(source).is_file():
        raise ConfigError(f"image backbone file {source} does not exist; pass a .safetensors written by save_image_backbone")
    packages = {"timm": ("timm", "timm"), "hf": ("transformers", "transformers"),
                "sentence-transformers": ("sentence_transformers", "sentence-transformers")}
    for kind in (image_kind, cfg.text_backbone.partition(":")[0]):
        if kind in packages:
            _import_optional(*packages[kind])


def save_image_backbone(stem: nn.Module, path: str | Path) -> Path:
    """Write a conv stem's weights to a safetensors file usable as `image_backbone="safetensors:<file>"`."""
    from safetensors.torch import save_file

    path = Path(path)
    save_file({name: tensor.detach().contiguous().cpu() for name, tensor in stem.state_dict().items()}, str(path))
    return path


def load_image_backbone(stem: nn.Module, path: str | Path) -> None:
    """Read conv-stem weights from a local safetensors file; shape mismatches name the tensor."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"image backbone file {path} does not exist; pass a .safetensors written by save_image_backbone")
    weights = load_file(str(path))
    expected = stem.state_dict()
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise ConfigError(f"image backbone {path} lacks {missing[0]}; it was saved from a different encoder")
    for name, tensor in expected.items():
        if weights[name].shape != tensor.shape:
            raise ConfigError(
                f"image backbone {path}: {name} has shape {tuple(weights[name].shape)}, expected {tuple(tensor.shape)}; "
                "use a backbone saved with the same width and image_patch"
            )
    stem.load_state_dict({name: weights[name] for name in expected})


def _import_optional(module: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"backend needs the {package} package, which is not installed; `pip install {package}` or use the default encoder") from exc
