"""The loop the dot worlds share (Two-Rooms, the maze): move, report, render.

A subclass provides `move(xy, action) -> xy`, `render_state(xy) -> frame`, `state`, `goal` and
`success_radius`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class DotWorld(gym.Env):
    """A dot that moves by 2-D actions; reward is minus the distance to the goal."""

    def step(self, action):
        self.state = self.move(self.state, action)
        info = self._info()
        reward, success = -info.get("distance", 0.0), bool(info.get("success", False))
        return self.render(), reward, success, False, info

    def _info(self) -> dict:
        info = {"state": self.state.copy()}
        if self.goal is not None:
            d = float(np.linalg.norm(self.state - self.goal))
            info["distance"] = d
            info["success"] = d <= self.success_radius
        return info

    def render(self) -> np.ndarray:
        return self.render_state(self.state)
