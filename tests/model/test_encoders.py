"""Encoders: stable hashed text features, the depth token, and the local pretrained-backbone path."""

import pytest
import torch

from model.config import preset
from model.encoders import (
    FEATURES_PER_WORD,
    ConvStem,
    DepthEncoder,
    build_image_encoder,
    hash_instructions,
    save_image_backbone,
)
from model.errors import ConfigError
from model.network import TraceFlowNet


def test_hashing_is_stable_padded_and_word_sensitive():
    ids, mask = hash_instructions(["Move the RED block left!", "move the red block left", ""], 4096, 8)
    assert ids.shape == (3, 8, FEATURES_PER_WORD) and mask.tolist()[0] == [True] * 5 + [False] * 3
    assert torch.equal(ids[0], ids[1])  # case and punctuation do not matter
    assert mask[2].sum() == 1 and (ids[2, 0] > 0).any()  # an empty instruction is one "<empty>" word
    assert ids.max() < 4096 and (ids[~mask] == 0).all()
    right, _ = hash_instructions(["move the red block right"], 4096, 8)
    assert torch.equal(right[0, :4], ids[0, :4]) and not torch.equal(right[0, 4], ids[0, 4])
    again, _ = hash_instructions(["move the red block left"], 4096, 8)
    assert torch.equal(again[0], ids[0])


def test_depth_encoder_uses_the_no_depth_token_when_absent():
    encoder = DepthEncoder(preset("tiny"))
    depth = torch.rand(2, 2, 96, 96)
    out = encoder(depth, torch.tensor([True, False]))
    assert out.shape == (2, 128, 6, 6)
    torch.testing.assert_close(out[1], encoder.no_depth[:, None, None].expand(128, 6, 6))
    assert not torch.allclose(out[0], out[1])


def test_safetensors_backbone_loads_the_saved_weights(tmp_path):
    cfg = preset("tiny")
    donor = ConvStem(3, cfg.width, cfg.image_patch)
    path = save_image_backbone(donor, tmp_path / "stem.safetensors")
    loaded_cfg = preset("tiny", image_backbone=f"safetensors:{path}")
    stem = build_image_encoder(loaded_cfg)
    image = torch.rand(1, 3, 96, 96)
    torch.testing.assert_close(stem(image), donor(image))
    model = TraceFlowNet(loaded_cfg)
    assert not any(p.requires_grad for p in model.image_encoder.parameters())  # frozen by default
    assert all(p.requires_grad for p in model.depth_encoder.parameters())


def test_backbone_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        build_image_encoder(preset("tiny", image_backbone=f"safetensors:{tmp_path}/none.safetensors"))
    wide = save_image_backbone(ConvStem(3, 64, 16), tmp_path / "wide.safetensors")
    with pytest.raises(ConfigError, match="has shape"):
        build_image_encoder(preset("tiny", image_backbone=f"safetensors:{wide}"))
    with pytest.raises(ConfigError, match="pip install timm"):
        build_image_encoder(preset("tiny", image_backbone="timm:resnet18"))
    with pytest.raises(ConfigError, match="pip install sentence-transformers"):
        TraceFlowNet(preset("tiny", text_backbone="sentence-transformers:all-MiniLM-L6-v2"))
    with pytest.raises(ConfigError, match="unknown"):
        build_image_encoder(preset("tiny", image_backbone="resnet"))


def test_a_timm_backbone_rebuilt_from_a_checkpoint_does_not_fetch_pretrained_weights(monkeypatch):
    """timm is optional (not installed here): a stand-in module records what the encoder asks of it."""
    import sys
    import types

    calls = []

    class Features(torch.nn.Module):
        feature_info = types.SimpleNamespace(channels=lambda: [8, 16])

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 16, 8, stride=8)

        def forward(self, image):
            return [self.conv(image)]

    def create_model(name, pretrained, features_only, out_indices):
        calls.append((name, pretrained, features_only))
        return Features()

    monkeypatch.setitem(sys.modules, "timm", types.SimpleNamespace(create_model=create_model))
    cfg = preset("tiny", image_backbone="timm:tiny_net")
    encoder = build_image_encoder(cfg)
    assert encoder(torch.rand(2, 3, 96, 96)).shape == (2, cfg.width, 6, 6)
    TraceFlowNet(cfg, load_pretrained=False)  # what load_checkpoint does
    assert calls == [("tiny_net", True, True), ("tiny_net", False, True)]
