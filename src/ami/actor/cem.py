"""Cross-entropy method over action sequences, batched over candidates."""

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


class CEMPlanner(Planner):
    """Sample around a Gaussian, keep the elites, refit; return the best sequence seen."""

    def __init__(self, bounds: ActionBounds, horizon: int, block_dim: int, samples: int = 300,
                 iterations: int = 30, elites: int = 30, init_std: float = 1.0,
                 min_std: float = 0.05, momentum: float = 0.0, seed: int = 0,
                 noise_beta: float = 0.0):
        if elites > samples:
            raise ValueError(f"elites ({elites}) cannot exceed samples ({samples})")
        self.bounds, self.horizon, self.block_dim = bounds, horizon, block_dim
        self.samples, self.iterations, self.elites = samples, iterations, elites
        self.init_std = init_std * bounds.scale
        self.min_std = min_std * bounds.scale
        self.momentum, self.noise_beta = momentum, noise_beta
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)

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
            dev_cand = cand.to(z0.device)
            cost, _ = cost_fn(model.rollout(z0, dev_cand), dev_cand)   # (S,)
            cost = cost.float().cpu()
            top = torch.topk(cost, self.elites, largest=False).indices
            elite = cand[top]                                           # (E, T, fs·A)
            if cost[top[0]] < best_cost:
                best_cost, best = float(cost[top[0]]), elite[0].clone()
            m = self.momentum
            elite_std, elite_mean = torch.std_mean(elite, dim=0)
            mean = elite_mean if m == 0 else m * mean + (1 - m) * elite_mean
            std = (elite_std if m == 0 else m * std + (1 - m) * elite_std).clamp_min_(self.min_std)
        return final_result(model, z_hist, cost_fn, best)
