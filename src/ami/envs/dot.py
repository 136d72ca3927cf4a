"""What the dot worlds share (Two-Rooms, the maze): the step loop, state access, success.

A subclass provides `move(xy, action) -> xy`, `_background` (the walls, (S, S, 3) uint8),
`_grid` (pixel centres), `agent_sigma`, `state`, `goal` and `success_radius`.
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

    def render_state(self, xy: np.ndarray,
                     colour: tuple[float, float, float] | None = None) -> np.ndarray:
        """The frame the dot at `xy` would produce, (S, S, 3) uint8: an orange Gaussian dot.
        `colour` (weights per channel in [0, 1]) paints it otherwise; only the colour control of
        the violation-of-expectation suite does."""
        s2 = 2 * self.agent_sigma**2
        gx = np.exp(-((self._grid - xy[0]) ** 2) / s2)
        gy = np.exp(-((self._grid - xy[1]) ** 2) / s2)
        dot = (255 * np.outer(gy, gx)).astype(np.uint8)  # (H, W): rows are y
        img = self._background.copy()
        for c, weight in enumerate((1.0, 0.5, 0.0) if colour is None else colour):
            if weight:
                img[..., c] = np.maximum(img[..., c], (dot * weight).astype(np.uint8))
        return img

    def background(self) -> np.ndarray:
        """The world without the dot, (S, S, 3) uint8."""
        return self._background.copy()

    @staticmethod
    def state_names(size: int) -> list[str]:
        """Names of the recorded state's entries."""
        return ["x", "y"][:size]

    # ----------------------------------------------------------------- state access
    def get_state(self) -> np.ndarray:
        return self.state.copy()

    def set_state(self, state: np.ndarray) -> None:
        self.state = np.asarray(state, np.float32).copy()

    def set_goal(self, goal: np.ndarray | None) -> None:
        self.goal = None if goal is None else np.asarray(goal, np.float32).copy()

    def goal_ring(self, goal: np.ndarray) -> tuple[float, float, float]:
        """(x, y, radius) in frame pixels of the success disc around `goal`, for pictures."""
        step = float(self._grid[1] - self._grid[0])                   # world units per pixel
        return ((goal[0] - self._grid[0]) / step, (goal[1] - self._grid[0]) / step,
                self.success_radius / step)

    def is_success(self, state: np.ndarray | None = None) -> bool:
        if self.goal is None:
            return False
        s = self.state if state is None else state
        return float(np.linalg.norm(np.asarray(s) - self.goal)) <= self.success_radius
