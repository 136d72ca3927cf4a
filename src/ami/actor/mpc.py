"""Receding-horizon control: plan, execute the first steps, re-plan from what is observed."""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import torch

from ami.actor.planner import CostFn, Planner, PlanningResult


class RecedingHorizon:
    """Keeps the latent history and the last plan; `act` returns the next actions to execute."""

    def __init__(self, model, planner: Planner, replan_every: int, warm_start: bool = True,
                 proposer: Planner | None = None):
        fs = model.cfg.frameskip
        self.model, self.planner, self.proposer = model, planner, proposer
        self.replan_every, self.warm_start = replan_every, warm_start
        self.frameskip, self.action_dim = fs, model.cfg.action_dim
        self.history = deque(maxlen=(model.cfg.history - 1) * fs + 1)  # per-step embeddings
        self.last: PlanningResult | None = None
        self.plan_seconds: list[float] = []

    def reset(self) -> None:
        self.history.clear()
        self.last = None

    def observe(self, z: torch.Tensor) -> None:
        """Record the embedding (D,) of the newest observation."""
        self.history.append(z)

    def z_hist(self) -> torch.Tensor:
        """(1, h, D): embeddings frameskip steps apart, the oldest padded by repetition."""
        fs, h = self.frameskip, self.model.cfg.history
        items = list(self.history)
        picked = [items[max(0, len(items) - 1 - k * fs)] for k in reversed(range(h))]
        return torch.stack(picked)[None]

    def act(self, cost_fn: CostFn) -> np.ndarray:
        """Plan from the current history; returns (replan_every, A) actions in world units."""
        init = self._shifted_plan() if self.warm_start and self.last is not None else None
        t = time.perf_counter()
        z_hist = self.z_hist()
        if init is None and self.proposer is not None:  # e.g. the Mode-1 policy's guess
            init = self.proposer.plan(self.model, z_hist, cost_fn).actions
        self.last = self.planner.plan(self.model, z_hist, cost_fn, init)
        self.plan_seconds.append(time.perf_counter() - t)
        steps = self.last.actions.reshape(-1, self.action_dim)               # (T·fs, A)
        return steps[: self.replan_every].cpu().numpy()

    def _shifted_plan(self) -> torch.Tensor:
        """The last plan moved forward by the executed steps, padded with its final action."""
        steps = self.last.actions.reshape(-1, self.action_dim)
        k = min(self.replan_every, len(steps))
        shifted = torch.cat([steps[k:], steps[-1:].expand(k, -1)])
        return shifted.reshape(self.last.actions.shape)
