"""Intrinsic cost: distance of predicted embeddings to the goal embedding."""

from __future__ import annotations

import torch


class GoalCost:
    """Squared L2 distance to z_goal, on the final predicted step or summed over the horizon."""

    def __init__(self, z_goal: torch.Tensor, mode: str = "final"):
        if mode not in ("final", "sum"):
            raise ValueError(f"goal cost mode must be 'final' or 'sum', got {mode!r}")
        self.z_goal, self.mode = z_goal.reshape(1, 1, -1), mode

    def __call__(self, z_pred: torch.Tensor, actions: torch.Tensor):
        d = (z_pred.float() - self.z_goal).pow(2).sum(-1)                 # (S, T)
        goal = d[:, -1] if self.mode == "final" else d.mean(1)
        return goal, {"goal": goal}
