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
        self.embed_dim, self.history = embed_dim, history
        dims = [history * embed_dim + action_dim] + [width] * (depth - 1)
        layers: list[nn.Module] = []
        for i, o in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(i, o), nn.GELU()]
        self.net = nn.Sequential(*layers, nn.Linear(width, embed_dim))

    def forward(self, z_hist: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        # z_hist (B, h, D), action (B, A') → (B, D)
        x = torch.cat([z_hist.flatten(1), action], dim=-1)
        return z_hist[:, -1] + self.net(x)

    def rollout(self, z_hist: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Autoregressive predictions (B, T, D) from z_hist (B, h, D) and actions (B, T, A').

        The same function as calling forward T times, arranged for planning speed: the first
        layer's action half is applied to all T blocks in one matmul, so the loop does no
        concatenation and one fused multiply-add per layer.
        """
        first = self.net[0]
        hd = self.history * self.embed_dim
        w_z, w_a = first.weight[:, :hd], first.weight[:, hd:]            # (W, hD), (W, A')
        # (T, B, W): time-major, so each step's slice is contiguous for addmm
        a_proj = torch.addmm(first.bias, actions.transpose(0, 1).flatten(0, 1), w_a.t())
        a_proj = a_proj.view(actions.shape[1], actions.shape[0], -1)
        rest = self.net[1:]
        preds = []
        for k in range(actions.shape[1]):
            h = torch.addmm(a_proj[k], z_hist.flatten(1), w_z.t())
            z_next = z_hist[:, -1] + rest(h)
            preds.append(z_next)
            z_hist = z_next[:, None] if self.history == 1 else \
                torch.cat([z_hist[:, 1:], z_next[:, None]], dim=1)
        return torch.stack(preds, dim=1)
