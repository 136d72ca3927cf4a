"""Cost: intrinsic terms over predicted latent trajectories, each reported by name."""

from ami.cost.goal import GoalCost

__all__ = ["GoalCost"]
