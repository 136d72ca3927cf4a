"""Hierarchical planning (H-JEPA): plan a few abstract steps to the goal, then actions to the
first of them.

The high level finds a sequence of subgoal embeddings to the goal in one of two ways:
- `LandmarkSearch` (default): the fewest macro-steps through the landmark graph, whose edges are
  the high-level predictor's predictions for macro-actions taken in the data: subgoals each
  reachable from the last;
- `MacroCEMSearch`: CEM over macro-action sequences through the high-level predictor, against
  how close the predicted path comes to the goal (`ReachCost`).
The low level plans action blocks towards the first subgoal with CEM, against the task's cost
with its goal term pointed at the subgoal. Both levels re-plan every time the agent does
(receding horizon).
"""

from __future__ import annotations

import torch

from ami.actor.planner import ActionBounds, CostFn, Planner, PlanningResult
from ami.cost.intrinsic import GoalDistance, IntrinsicCost
from ami.world_model.hierarchy import HighLevelModel, LandmarkGraph


class MacroRollout:
    """The high level behind the interface planners roll out: z_hist (S, h, D) and
    macro-actions (S, T, M) → predicted embeddings (S, T, D)."""

    def __init__(self, high: HighLevelModel):
        self.high = high

    def rollout(self, z_hist: torch.Tensor, macros: torch.Tensor) -> torch.Tensor:
        return self.high.rollout(z_hist[:, -1], macros)


def macro_bounds(macro_dim: int, limit: float = 3.0) -> ActionBounds:
    """Macro-actions are SIGReg-shaped towards N(0, I): search them within ±limit."""
    return ActionBounds((-limit,) * macro_dim, (limit,) * macro_dim)


class ReachCost:
    """High-level goal term: the closest the predicted path comes to the goal, plus `early`
    times its mean distance. The minimum lets a long detour through doors win over pressing
    against the wall nearest the goal (which a horizon-averaged distance prefers); the mean
    breaks ties towards arriving early."""

    name = "reach"

    def __init__(self, z_goal: torch.Tensor, early: float = 0.1, weight: float = 1.0):
        self.z_goal, self.early, self.weight = z_goal.reshape(1, 1, -1), early, weight

    def __call__(self, z_pred, actions):
        d = (z_pred.float() - self.z_goal).pow(2).sum(-1)                 # (S, T)
        return d.min(1).values + self.early * d.mean(1)


class MacroCEMSearch:
    """Subgoals by CEM over macro-action sequences through the high-level predictor, against
    `ReachCost`; warm-started from its last plan. Free to pick any macro-action, it also finds
    those the predictor gets wrong (see `LandmarkGraph`)."""

    def __init__(self, high: HighLevelModel, planner: Planner):
        self.high, self.planner = high, planner
        self.rollout_model = MacroRollout(high)
        self._last: torch.Tensor | None = None

    def __call__(self, z_now: torch.Tensor, z_goal: torch.Tensor) -> tuple[torch.Tensor, float]:
        """z_now (1, D), z_goal (D,) → predicted subgoals (H, D) and the plan's cost."""
        result = self.planner.plan(self.rollout_model, z_now[:, None],
                                   IntrinsicCost([ReachCost(z_goal)]), self._last)
        self._last = result.actions
        return self.high.rollout(z_now, result.actions[None].to(z_now.device))[0], result.cost


class LandmarkSearch:
    """Subgoals along the fewest-macro-step path of the landmark graph from any of the `near`
    landmarks nearest to now to any of the `near` nearest to the goal (near a door, the single
    nearest landmark may lie on the other side, and its path would send the agent back and
    forth through the door); the goal itself ends the sequence."""

    def __init__(self, graph: LandmarkGraph, near: int = 3):
        self.graph, self.near = graph, near

    def _nearest(self, z: torch.Tensor) -> list[int]:
        distance = torch.cdist(z.float().reshape(1, -1), self.graph.landmarks)[0]
        return distance.argsort()[: self.near].tolist()

    def __call__(self, z_now: torch.Tensor, z_goal: torch.Tensor) -> tuple[torch.Tensor, float]:
        g = self.graph
        targets = self._nearest(z_goal)
        paths = [g.path(s, targets) for s in self._nearest(z_now)]
        reachable = [p for p in paths if p[-1] in targets]
        if not reachable:   # out of the graph's reach: head for the goal itself
            return z_goal.reshape(1, -1), float(len(g.landmarks))
        path = min(reachable, key=len)              # fewest hops; the nearest source on ties
        return torch.cat([g.landmarks[path[1:-1]], z_goal.reshape(1, -1)]), float(len(path) - 1)


class HierarchicalPlanner(Planner):
    """The high level's search picks subgoals; `low` plans actions towards the first one."""

    def __init__(self, search, low: Planner):
        self.search, self.low = search, low
        self.subgoal_plans: list[torch.Tensor] = []   # per plan: the subgoal sequence (H, D)

    @torch.inference_mode()
    def plan(self, model, z_hist: torch.Tensor, cost_fn: CostFn, init=None) -> PlanningResult:
        goal = _goal_term(cost_fn)
        subgoals, high_cost = self.search(z_hist[:, -1], goal.z_goal.reshape(-1))
        self.subgoal_plans.append(subgoals.cpu())
        low_cost = _with_goal(cost_fn, GoalDistance(subgoals[0], goal.mode, goal.weight))
        low = self.low.plan(model, z_hist, low_cost, init)
        # report the task's own cost of the chosen actions, and the high level's view
        a = low.actions[None].to(z_hist.device)
        total, terms = cost_fn(model.rollout(z_hist, a), a)
        named = {k: float(v[0]) for k, v in terms.items()}
        named.update(subgoal=low.terms.get("goal", low.cost), high=high_cost)
        return PlanningResult(low.actions, float(total[0]), named)


def _goal_term(cost_fn) -> GoalDistance:
    terms = getattr(cost_fn, "terms", [])
    goal = next((t for t in terms if isinstance(t, GoalDistance)), None)
    if goal is None:
        raise ValueError("hierarchical planning needs a goal: its cost must have a goal term")
    return goal


def _with_goal(cost_fn: IntrinsicCost, goal: GoalDistance) -> IntrinsicCost:
    """The task's cost with its goal term replaced by `goal` (the other terms kept)."""
    return IntrinsicCost([goal if isinstance(t, GoalDistance) else t for t in cost_fn.terms])
