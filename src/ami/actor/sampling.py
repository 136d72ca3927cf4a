"""The loop that CEM and MPPI share: sample around a Gaussian, score through the model, refit.

Subclasses say only how the sampling distribution is refitted from the scored candidates.
"""

from __future__ import annotations

from abc import abstractmethod

import torch

from ami.actor.planner import (
    ActionBounds,
    CostFn,
    Planner,
    PlanningResult,
    final_result,
    sample_noise,
)


class SamplingPlanner(Planner):
    """Gaussian sampling over action sequences, batched over candidates; returns the best
    sequence seen in any iteration."""

    def __init__(self, bounds: ActionBounds, horizon: int, block_dim: int, samples: int,
                 iterations: int, init_std: float, min_std: float, seed: int,
                 noise_beta: float):
        self.bounds, self.horizon, self.block_dim = bounds, horizon, block_dim
        self.samples, self.iterations = samples, iterations
        self.init_std, self.min_std = init_std * bounds.scale, min_std * bounds.scale
        self.noise_beta = noise_beta
        self.generator = torch.Generator().manual_seed(seed)

    @abstractmethod
    def refit(self, cand: torch.Tensor, cost: torch.Tensor, mean: torch.Tensor,
              std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """New (mean, std) (T, fs·A) from candidates (S, T, fs·A) and their costs (S,)."""

    @torch.inference_mode()
    def plan(self, model, z_hist, cost_fn: CostFn, init=None) -> PlanningResult:
        shape = (self.horizon, self.block_dim)
        mean = torch.zeros(shape) if init is None else init.detach().cpu().clone()
        std = torch.full(shape, self.init_std)
        noise = torch.empty(self.samples, *shape)
        z0 = z_hist.expand(self.samples, *z_hist.shape[1:])           # (S, h, D)
        best_cost, best = float("inf"), mean
        for _ in range(self.iterations):
            sample_noise(noise, self.bounds.action_dim, self.noise_beta, self.generator)
            cand = torch.addcmul(mean, std, noise)                      # (S, T, fs·A)
            cand[0] = mean                                              # the mean competes too
            cand = self.bounds.project(cand)
            dev = cand.to(z0.device)
            cost = cost_fn(model.rollout(z0, dev), dev)[0].float().cpu()   # (S,)
            low, i = cost.min(0)
            if low.item() < best_cost:
                best_cost, best = low.item(), cand[i].clone()
            mean, std = self.refit(cand, cost, mean, std)
            std = std.clamp_min(self.min_std)
        return final_result(model, z_hist, cost_fn, best)
