"""The JEPA world model: encoder + predictor, with the interface planners rely on."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from ami.config import ModelConfig
from ami.perception import build_encoder
from ami.world_model.predictor import MLPPredictor


class WorldModel(nn.Module):
    """encode(obs) → z;  predict(z_hist, a) → ẑ_next;  rollout(z_hist, a_seq) → ẑ_1..T.

    Actions are given in the world's units, as blocks of `frameskip` actions flattened to
    (frameskip · action_dim,); the model scales them itself.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_encoder(cfg)  # a CNN or a ViT, per cfg.encoder
        self.predictor = MLPPredictor(cfg.embed_dim, cfg.history, cfg.frameskip * cfg.action_dim,
                                      cfg.predictor_width, cfg.predictor_depth,
                                      cfg.predictor_activation)

    @property
    def block_dim(self) -> int:
        return self.cfg.frameskip * self.cfg.action_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, obs) -> torch.Tensor:
        """obs (..., H, W, C) uint8 (numpy or tensor) → z (..., D)."""
        x = torch.as_tensor(np.asarray(obs) if not torch.is_tensor(obs) else obs)
        x = x.to(self.device, non_blocking=True)
        lead = x.shape[:-3]
        x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).float().div_(255.0)  # (N, C, H, W)
        return self.encoder(x).reshape(*lead, self.cfg.embed_dim)

    def predict(self, z_hist: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """z_hist (B, h, D), action block (B, fs·A) → ẑ_next (B, D)."""
        return self.predictor(z_hist, action / self.cfg.action_scale)

    def teacher_forced(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """One-step predictions of every frame after the first h of windows z (B, n, D), each
        from the true history before it, actions (B, n-1, fs·A) → (B, n-h, D)."""
        h = self.cfg.history
        b, n, d = z.shape
        z_hist = z.unfold(1, h, 1)[:, : n - h].permute(0, 1, 3, 2)  # (B, n-h, h, D)
        a = actions[:, h - 1 : n - 1]                               # (B, n-h, fs·A)
        return self.predict(z_hist.reshape(-1, h, d), a.reshape(b * (n - h), -1)).reshape(
            b, n - h, d)

    def rollout(self, z_hist: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """z_hist (B, h, D), action blocks (B, T, fs·A) → predicted embeddings (B, T, D)."""
        return self.predictor.rollout(z_hist, actions / self.cfg.action_scale)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build_world_model(cfg: ModelConfig) -> WorldModel:
    """The world model `cfg.kind` names: the JEPA model, or the generative baseline."""
    if cfg.kind == "generative":
        from ami.baselines.generative import GenerativeWorldModel
        return GenerativeWorldModel(cfg)
    if cfg.kind != "jepa":
        raise ValueError(f"unknown world model kind {cfg.kind!r}: jepa or generative")
    return WorldModel(cfg)
