"""A goal cost in pixel space, for world models that can decode (the generative baseline)."""

from __future__ import annotations

import numpy as np
import torch

from ami.baselines.generative import pixels
from ami.errors import AmiError


class PixelGoalDistance:
    """Mean squared pixel distance of the decoded predicted frames to the goal image, averaged
    over the horizon or on the final step only (then only the final step is decoded)."""

    name = "goal"

    def __init__(self, model, goal_obs: np.ndarray, mode: str = "sum", weight: float = 1.0):
        if not hasattr(model, "decode"):
            raise AmiError("--cost.goal-space pixels needs a world model with a decoder; this "
                           "run's model predicts embeddings only (train one with "
                           "`ami train --model generative`)")
        if mode not in ("final", "sum"):
            raise ValueError(f"goal cost mode must be 'final' or 'sum', got {mode!r}")
        self.model, self.mode, self.weight = model, mode, weight
        self.x_goal = pixels(torch.as_tensor(np.asarray(goal_obs), device=model.device))  # (C,H,W)

    def __call__(self, z_pred, actions):
        z = z_pred[:, -1:] if self.mode == "final" else z_pred             # (S, T', D)
        d = (self.model.decode(z) - self.x_goal).pow(2).mean(dim=(-3, -2, -1))   # (S, T')
        return d.mean(1)
