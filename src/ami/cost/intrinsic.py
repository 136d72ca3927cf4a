"""The cost module: named terms over a predicted latent trajectory, added up with weights.

Every term maps (z_pred (S, T, D), actions (S, T, fs·A)) to one value per candidate (S,). The
total and each weighted term are returned by name, so a plan can always say why it was chosen.
"""

from __future__ import annotations

from typing import Protocol

import torch


class CostTerm(Protocol):
    name: str
    weight: float

    def __call__(self, z_pred: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(S, T, D), (S, T, fs·A) → unweighted cost per candidate (S,)."""


class GoalDistance:
    """Squared L2 distance of predicted embeddings to the goal's, averaged over the horizon
    (arrive early and stay) or on the final step only."""

    name = "goal"

    def __init__(self, z_goal: torch.Tensor, mode: str = "sum", weight: float = 1.0):
        if mode not in ("final", "sum"):
            raise ValueError(f"goal cost mode must be 'final' or 'sum', got {mode!r}")
        self.z_goal, self.mode, self.weight = z_goal.reshape(1, 1, -1), mode, weight

    def __call__(self, z_pred, actions):
        if self.mode == "final":
            return (z_pred[:, -1].float() - self.z_goal[0]).square_().sum(-1)
        # Σ over D, mean over T, as one reduction over each candidate's T·D numbers
        d = (z_pred.float() - self.z_goal).square_()                        # (S, T, D)
        return d.sum(dim=(1, 2)).div_(z_pred.shape[1])


class ActionEffort:
    """Mean squared action, in units of the action scale: spend little effort."""

    name = "effort"

    def __init__(self, weight: float, action_scale: float = 1.0):
        self.weight, self.scale = weight, action_scale

    def __call__(self, z_pred, actions):
        return (actions.float() / self.scale).pow(2).mean(dim=(1, 2))


class IntrinsicCost:
    """Σ weight · term; `z_goal` is the goal term's embedding (the Mode-1 policy reads it)."""

    def __init__(self, terms: list[CostTerm]):
        names = [t.name for t in terms]
        if len(set(names)) != len(names):
            raise ValueError(f"cost terms need distinct names, got {names}")
        self.terms = terms

    @property
    def z_goal(self) -> torch.Tensor | None:
        return next((t.z_goal for t in self.terms if isinstance(t, GoalDistance)), None)

    def __call__(self, z_pred: torch.Tensor, actions: torch.Tensor
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        values = {t.name: t(z_pred, actions) if t.weight == 1 else t.weight * t(z_pred, actions)
                  for t in self.terms}
        total = sum(values.values()) if len(values) > 1 else next(iter(values.values()))
        return total, values
