"""The trainable critic: goal-conditioned cost-to-go in latent space, V(z, z_goal) ≥ 0.

Trained offline by temporal-distance regression with hindsight relabelling: a frame k action
blocks later in the same episode is a goal k blocks away along that path. Paths in the data are
rarely the shortest, so the regression is an expectile below the median (τ < 0.5), which leans
towards the shortest observed path. Used as the terminal cost of a plan, it lets a short horizon
head for goals it cannot reach within the horizon, around walls the goal distance does not see.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ami.optim import fit


class Critic(nn.Module):
    """(…, D), (…, D) → predicted action blocks still to go (…)."""

    def __init__(self, embed_dim: int, width: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * embed_dim, width), nn.GELU(),
                                 nn.Linear(width, width), nn.GELU(), nn.Linear(width, 1))

    def forward(self, z: torch.Tensor, z_goal: torch.Tensor) -> torch.Tensor:
        z_goal = z_goal.expand_as(z)
        return F.softplus(self.net(torch.cat([z, z_goal - z], dim=-1))).squeeze(-1)


class CriticTerminal:
    """Cost term: the critic's cost-to-go from the last predicted embedding to the goal."""

    name = "critic"

    def __init__(self, critic: Critic, z_goal: torch.Tensor, weight: float = 1.0):
        self.critic, self.weight = critic.eval(), weight
        self.z_goal = z_goal.reshape(1, -1)

    def __call__(self, z_pred, actions):
        return self.critic(z_pred[:, -1].float(), self.z_goal)


def temporal_pairs(starts: np.ndarray, lengths: np.ndarray, frameskip: int, max_blocks: int,
                   n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n (frame, goal frame, blocks apart) triples inside episodes, 0..max_blocks blocks apart."""
    ep = rng.integers(len(starts), size=n)
    span = lengths[ep] - 1
    k = np.minimum(rng.integers(0, max_blocks + 1, size=n), span // frameskip)
    t = starts[ep] + (rng.random(n) * (span - k * frameskip + 1)).astype(int)
    return t, t + k * frameskip, k.astype(np.float32)


def train_critic(critic: Critic, z: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                 frameskip: int, max_blocks: int = 20, expectile: float = 0.1,
                 steps: int = 3000, batch_size: int = 256, lr: float = 1e-3, seed: int = 0
                 ) -> list[float]:
    """Expectile regression of the blocks between a frame and a later frame of its episode."""
    rng = np.random.default_rng(seed)

    def batch_loss():
        t, g, k = temporal_pairs(starts, lengths, frameskip, max_blocks, batch_size, rng)
        err = torch.from_numpy(k) - critic(torch.from_numpy(z[t]), torch.from_numpy(z[g]))
        # asymmetric squared error: over-estimates cost (1 − τ), under-estimates τ
        weight = torch.where(err < 0, 1 - expectile, expectile)
        return (weight * err.pow(2)).mean()
    return fit(critic, batch_loss, steps, lr)
