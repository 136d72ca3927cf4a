"""Model-predictive path integral control: a cost-weighted average of sampled sequences."""

from __future__ import annotations

import torch

from ami.actor.planner import ActionBounds
from ami.actor.sampling import SamplingPlanner


class MPPIPlanner(SamplingPlanner):
    """Each iteration moves the mean to the softmax(−cost / λ)-weighted mean of the samples.

    λ is measured in units of the iteration's cost spread (std), so one temperature suits
    costs of any scale.
    """

    def __init__(self, bounds: ActionBounds, horizon: int, block_dim: int, samples: int = 300,
                 iterations: int = 30, temperature: float = 0.1, init_std: float = 1.0,
                 min_std: float = 0.05, seed: int = 0, noise_beta: float = 0.0):
        super().__init__(bounds, horizon, block_dim, samples, iterations, init_std, min_std,
                         seed, noise_beta)
        self.temperature = temperature

    def refit(self, cand, cost, mean, std):
        w = torch.softmax(-(cost - cost.min()) / (self.temperature * cost.std() + 1e-8), 0)
        w = w[:, None, None]
        new_mean = (w * cand).sum(0)
        return new_mean, (w * (cand - new_mean) ** 2).sum(0).sqrt()
