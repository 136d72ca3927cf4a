"""Receding-horizon control: plan, execute the first steps, re-plan from what is observed."""

from __future__ import annotations

import time

import numpy as np
import torch

from ami.actor.planner import CostFn, Planner, PlanningResult


class RecedingHorizon:
    """Plans from a latent history, keeps the last plan to warm-start the next one."""

    def __init__(self, planner: Planner, action_dim: int, replan_every: int,
                 warm_start: bool = True, proposer: Planner | None = None):
        self.planner, self.proposer = planner, proposer
        self.action_dim, self.replan_every, self.warm_start = action_dim, replan_every, warm_start
        self.last: PlanningResult | None = None
        self.plan_seconds: list[float] = []

    def reset(self) -> None:
        self.last = None

    def plan(self, model, z_hist: torch.Tensor, cost_fn: CostFn) -> np.ndarray:
        """Plan from z_hist (1, h, D); returns the next (replan_every, A) actions, world units."""
        init = self._shifted_plan() if self.warm_start and self.last is not None else None
        t = time.perf_counter()
        if init is None and self.proposer is not None:  # e.g. the Mode-1 policy's guess
            init = self.proposer.plan(model, z_hist, cost_fn).actions
        self.last = self.planner.plan(model, z_hist, cost_fn, init)
        self.plan_seconds.append(time.perf_counter() - t)
        steps = self.last.actions.reshape(-1, self.action_dim)               # (T·fs, A)
        return steps[: self.replan_every].cpu().numpy()

    def _shifted_plan(self) -> torch.Tensor:
        """The last plan moved forward by the executed steps, padded with its final action."""
        steps = self.last.actions.reshape(-1, self.action_dim)
        k = min(self.replan_every, len(steps))
        shifted = torch.cat([steps[k:], steps[-1:].expand(k, -1)])
        return shifted.reshape(self.last.actions.shape)
