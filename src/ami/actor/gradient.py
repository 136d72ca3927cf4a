"""Gradient planning: Adam on the action sequence through the differentiable world model."""

from __future__ import annotations

import torch

from ami.actor.planner import ActionBounds, CostFn, Planner, PlanningResult, final_result


class GradientPlanner(Planner):
    """Several restarts optimised in one batch; each step is projected back onto the bounds.

    Gradient descent falls into local minima of the latent cost (DINO-WM reports it); the
    restarts, drawn like CEM's first samples, are the cheap remedy.
    """

    def __init__(self, bounds: ActionBounds, horizon: int, block_dim: int, restarts: int = 16,
                 iterations: int = 30, lr: float = 0.3, init_std: float = 1.0, seed: int = 0):
        self.bounds, self.horizon, self.block_dim = bounds, horizon, block_dim
        self.restarts, self.iterations = restarts, iterations
        self.lr = lr * bounds.scale
        self.init_std = init_std * bounds.scale
        self.generator = torch.Generator().manual_seed(seed)

    def plan(self, model, z_hist, cost_fn: CostFn, init=None) -> PlanningResult:
        shape = (self.horizon, self.block_dim)
        mean = torch.zeros(shape) if init is None else init.detach().cpu()
        noise = torch.randn(self.restarts, *shape, generator=self.generator) * self.init_std
        if init is not None:
            noise[0] = 0.0                                      # one restart from the warm start
        dev = z_hist.device
        actions = self.bounds.project(mean + noise).to(dev).requires_grad_()
        opt = torch.optim.Adam([actions], lr=self.lr)
        z0 = z_hist.detach().expand(self.restarts, *z_hist.shape[1:])
        best_cost, best = float("inf"), mean
        with torch.enable_grad():
            for _ in range(self.iterations):
                cost = cost_fn(model.rollout(z0, actions), actions)[0]     # (R,)
                i = int(cost.argmin())
                if cost[i] < best_cost:
                    best_cost, best = float(cost[i].detach()), actions[i].detach().cpu().clone()
                (grad,) = torch.autograd.grad(cost.sum(), actions)
                actions.grad = grad
                opt.step()
                with torch.no_grad():
                    actions.copy_(self.bounds.project(actions))
        with torch.no_grad():
            final = cost_fn(model.rollout(z0, actions), actions)[0]
            i = int(final.argmin())
            if final[i] < best_cost:
                best = actions[i].detach().cpu().clone()
            return final_result(model, z_hist, cost_fn, best)
