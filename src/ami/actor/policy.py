"""Mode-1: a reactive, goal-conditioned policy in latent space, (z, z_goal) → action block.

Trained on the offline episodes with hindsight goal relabelling: any frame k blocks later in the
same episode is a goal that the actions actually taken lead to. It acts in one forward pass, so
it is orders of magnitude faster than planning; it can also seed the planner's first guess.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ami.actor.planner import ActionBounds, Planner, PlanningResult, final_result
from ami.optim import fit


class GoalConditionedPolicy(nn.Module):
    """(B, D), (B, D) → action blocks (B, fs·A) in units of the action scale (|a| ≲ 1)."""

    def __init__(self, embed_dim: int, block_dim: int, width: int = 256, depth: int = 3):
        super().__init__()
        dims = [2 * embed_dim] + [width] * (depth - 1)
        layers: list[nn.Module] = []
        for i, o in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(i, o), nn.GELU()]
        self.net = nn.Sequential(*layers, nn.Linear(width, block_dim))

    def forward(self, z: torch.Tensor, z_goal: torch.Tensor) -> torch.Tensor:
        # the goal enters as a displacement, so "where to go" is relative to "where I am"
        return self.net(torch.cat([z, z_goal - z], dim=-1))


def hindsight_pairs(z: np.ndarray, actions: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                    frameskip: int, max_blocks: int, n: int, rng: np.random.Generator):
    """n samples (z_t, z_{t+k·fs}, a_t..a_{t+fs-1}) with k uniform in 1..max_blocks.

    z (N_frames, D) and actions (N_frames, A) are flat over episodes as in EpisodeDataset.
    """
    ep = rng.integers(len(starts), size=n)
    span = lengths[ep] - 1                                          # actions in the episode
    k = rng.integers(1, max_blocks + 1, size=n) * frameskip
    k = np.minimum(k, (span // frameskip) * frameskip)              # stay inside the episode
    ok = k >= frameskip
    ep, k, span = ep[ok], k[ok], span[ok]
    t = starts[ep] + (rng.random(len(ep)) * (span - k + 1)).astype(int)
    blocks = actions[t[:, None] + np.arange(frameskip)].reshape(len(t), -1)
    return z[t], z[t + k], blocks


def train_policy(policy: GoalConditionedPolicy, z: np.ndarray, actions: np.ndarray,
                 starts: np.ndarray, lengths: np.ndarray, frameskip: int, action_scale: float,
                 steps: int = 3000, batch_size: int = 256, max_blocks: int = 8, lr: float = 1e-3,
                 seed: int = 0, progress=None) -> list[float]:
    """Regress the taken action block on (z, hindsight goal); returns the loss per step."""
    rng = np.random.default_rng(seed)

    def batch_loss():
        zt, zg, a = hindsight_pairs(z, actions, starts, lengths, frameskip, max_blocks,
                                    batch_size, rng)
        pred = policy(torch.from_numpy(zt), torch.from_numpy(zg))
        return F.mse_loss(pred, torch.from_numpy(a) / action_scale)
    return fit(policy, batch_loss, steps, lr, progress)


class PolicyActor:
    """Acts with the Mode-1 policy alone: one forward pass per action block."""

    def __init__(self, policy: GoalConditionedPolicy, bounds: ActionBounds, action_scale: float,
                 horizon: int):
        self.policy, self.bounds = policy.eval(), bounds
        self.scale, self.horizon = action_scale, horizon

    @torch.inference_mode()
    def propose(self, z: torch.Tensor, z_goal: torch.Tensor) -> torch.Tensor:
        """(D,), (D,) → one action block (fs·A) in world units, within the bounds."""
        return self.bounds.project(self.policy(z[None], z_goal[None])[0] * self.scale)


class PolicyPlanner(Planner):
    """Mode-1 behind the Planner interface: roll the policy through the world model.

    The goal embedding comes from the cost's goal term (`cost_fn.z_goal`); the returned cost is
    the cost of the policy's own trajectory, so Mode-1 and Mode-2 report the same terms.
    """

    def __init__(self, policy: GoalConditionedPolicy, bounds: ActionBounds, horizon: int,
                 action_scale: float):
        self.actor = PolicyActor(policy, bounds, action_scale, horizon)
        self.horizon = horizon

    @torch.inference_mode()
    def plan(self, model, z_hist, cost_fn, init=None) -> PlanningResult:
        z_goal = getattr(cost_fn, "z_goal", None)
        if z_goal is None:
            raise ValueError("the Mode-1 policy needs a goal: its cost must have a z_goal term")
        z_goal, z = z_goal.reshape(-1), z_hist
        blocks = []
        for _ in range(self.horizon):
            a = self.actor.propose(z[0, -1], z_goal)                      # (fs·A,)
            blocks.append(a)
            z_next = model.predict(z, a[None])                            # (1, D)
            z = torch.cat([z[:, 1:], z_next[:, None]], dim=1)
        return final_result(model, z_hist, cost_fn, torch.stack(blocks))
