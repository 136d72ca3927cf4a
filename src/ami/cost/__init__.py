"""Cost: intrinsic terms over predicted latent trajectories (goal, effort, guardrails) and a
trainable critic, each reported by name."""

from ami.cost.intrinsic import ActionEffort, CostTerm, GoalDistance, IntrinsicCost

__all__ = ["ActionEffort", "CostTerm", "GoalDistance", "IntrinsicCost"]
