"""Cross-entropy method over action sequences, batched over candidates."""

from __future__ import annotations

import torch

from ami.actor.planner import ActionBounds
from ami.actor.sampling import SamplingPlanner


class CEMPlanner(SamplingPlanner):
    """Keep the elites, refit the Gaussian to them (with optional momentum)."""

    def __init__(self, bounds: ActionBounds, horizon: int, block_dim: int, samples: int = 300,
                 iterations: int = 30, elites: int = 30, init_std: float = 1.0,
                 min_std: float = 0.05, momentum: float = 0.0, seed: int = 0,
                 noise_beta: float = 0.0):
        if elites > samples:
            raise ValueError(f"elites ({elites}) cannot exceed samples ({samples})")
        super().__init__(bounds, horizon, block_dim, samples, iterations, init_std, min_std,
                         seed, noise_beta)
        self.elites, self.momentum = elites, momentum

    def refit(self, cand, cost, mean, std):
        elite = cand[torch.topk(cost, self.elites, largest=False).indices]   # (E, T, fs·A)
        elite_std, elite_mean = torch.std_mean(elite, dim=0)
        m = self.momentum
        if m == 0:
            return elite_mean, elite_std
        return m * mean + (1 - m) * elite_mean, m * std + (1 - m) * elite_std
