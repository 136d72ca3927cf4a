"""Perception: observations (images) to embeddings."""

from __future__ import annotations

import torch.nn as nn

from ami.perception.encoder import ConvEncoder
from ami.perception.vit import ViT, ViTEncoder

__all__ = ["ConvEncoder", "ViT", "ViTEncoder", "build_encoder"]


def build_encoder(cfg) -> nn.Module:
    """The world model's encoder a `ModelConfig` names: (B, C, S, S) → (B, embed_dim)."""
    if cfg.encoder == "vit":
        v = cfg.vit
        return ViTEncoder(cfg.channels, cfg.image_size, cfg.embed_dim, v.patch, v.width,
                          v.depth, v.heads, v.tubelet or 1)
    if cfg.encoder != "cnn":
        raise ValueError(f"unknown encoder {cfg.encoder!r}: cnn or vit")
    return ConvEncoder(cfg.channels, cfg.image_size, cfg.encoder_width, cfg.embed_dim,
                       projector_bias=cfg.projector_bias)
