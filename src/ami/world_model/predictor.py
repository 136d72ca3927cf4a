"""The action-conditioned predictor: (z history, action block) → next embedding."""

from __future__ import annotations

import torch
import torch.nn as nn


class MLPPredictor(nn.Module):
    """ẑ_{t+1} = z_t + MLP([z_{t-h+1..t}, a_t]); the residual form makes "stay" easy to learn."""

    def __init__(self, embed_dim: int, history: int, action_dim: int, width: int, depth: int):
        super().__init__()
        if depth < 2:
            raise ValueError(f"predictor depth must be >= 2, got {depth}")
        dims = [history * embed_dim + action_dim] + [width] * (depth - 1)
        layers: list[nn.Module] = []
        for i, o in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(i, o), nn.GELU()]
        self.net = nn.Sequential(*layers, nn.Linear(width, embed_dim))

    def forward(self, z_hist: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        # z_hist (B, h, D), action (B, A') → (B, D)
        x = torch.cat([z_hist.flatten(1), action], dim=-1)
        return z_hist[:, -1] + self.net(x)
