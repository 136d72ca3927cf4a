"""Model-predictive path integral control: a cost-weighted average of sampled sequences."""

from __future__ import annotations

import torch

from ami.actor.planner import (
    ActionBounds,
    CostFn,
    Planner,
    PlanningResult,
    final_result,
    sample_noise,
)


class MPPIPlanner(Planner):
    """Each iteration moves the mean to the softmax(−cost / λ)-weighted mean of the samples.

    λ is measured in units of the iteration's cost spread (std), so one temperature suits
    costs of any scale.
    """

    def __init__(self, bounds: ActionBounds, horizon: int, block_dim: int, samples: int = 300,
                 iterations: int = 30, temperature: float = 0.1, init_std: float = 1.0,
                 min_std: float = 0.05, seed: int = 0, noise_beta: float = 0.0):
        self.bounds, self.horizon, self.block_dim = bounds, horizon, block_dim
        self.samples, self.iterations, self.temperature = samples, iterations, temperature
        self.init_std, self.min_std = init_std * bounds.scale, min_std * bounds.scale
        self.noise_beta = noise_beta
        self.generator = torch.Generator().manual_seed(seed)

    @torch.inference_mode()
    def plan(self, model, z_hist, cost_fn: CostFn, init=None) -> PlanningResult:
        shape = (self.horizon, self.block_dim)
        mean = torch.zeros(shape) if init is None else init.detach().cpu().clone()
        std = torch.full(shape, self.init_std)
        noise = torch.empty(self.samples, *shape)
        z0 = z_hist.expand(self.samples, *z_hist.shape[1:])
        best_cost, best = float("inf"), mean
        for _ in range(self.iterations):
            sample_noise(noise, self.bounds.action_dim, self.noise_beta, self.generator)
            cand = self.bounds.project(mean + std * noise)
            cand[0] = self.bounds.project(mean)
            dev = cand.to(z0.device)
            cost = cost_fn(model.rollout(z0, dev), dev)[0].float().cpu()   # (S,)
            i = int(cost.argmin())
            if cost[i] < best_cost:
                best_cost, best = float(cost[i]), cand[i].clone()
            w = torch.softmax(-(cost - cost.min()) / (self.temperature * cost.std() + 1e-8), 0)
            mean = (w[:, None, None] * cand).sum(0)
            var = (w[:, None, None] * (cand - mean) ** 2).sum(0)
            std = var.sqrt().clamp_min(self.min_std)
        return final_result(model, z_hist, cost_fn, best)
