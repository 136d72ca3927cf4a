"""Two-Rooms: the PLDM / eb_jepa navigation world.

A Gaussian dot moves in a 64x64 arena split by a vertical wall at x=32 with one door. Actions
are 2-D displacements whose norm is clipped to 2.45 px; walls block motion, and the dot slides
along a wall it pushes into. Start and goal are sampled in different rooms; success is ending
within 4.5 px of the goal (the DINO-WM / eb_jepa threshold).

Coordinates are pixels, (x, y) with x to the right and y down, as in the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from ami.envs.actions import clip_action
from ami.envs.dot import DotWorld


@dataclass(frozen=True)
class Layout:
    """Where the inner wall and its door are (pixels)."""

    wall_x: float = 32.0
    door_center: float = 32.0
    door_width: float = 12.0


class TwoRooms(DotWorld):
    """Two rooms joined by a door; pixels in, 2-D displacement actions out."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    size = 64
    border = 2.0          # thickness of the outer wall (px)
    wall_thickness = 2.0  # thickness of the inner wall (px)
    agent_radius = 1.5    # collision radius of the dot (px)
    agent_sigma = 1.5     # width of the rendered Gaussian dot (px)
    max_action_norm = 2.45
    success_radius = 4.5
    goal_margin = 3.0     # sampled starts and goals keep this far from any wall

    def __init__(self, random_layout: bool = False, render_mode: str = "rgb_array"):
        self.random_layout = random_layout
        self.render_mode = render_mode
        m = self.max_action_norm
        self.action_space = gym.spaces.Box(-m, m, shape=(2,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
        self.layout = Layout()
        self._grid = np.arange(self.size, dtype=np.float32)
        self._np_random = np.random.default_rng()
        self.state = np.zeros(2, np.float32)
        self.goal: np.ndarray | None = None
        self._set_layout(self.layout)

    # ----------------------------------------------------------------- geometry
    def _set_layout(self, layout: Layout) -> None:
        self.layout = layout
        r = self.agent_radius
        self.lo = self.border + r
        self.hi = self.size - 1 - self.border - r
        half = self.wall_thickness / 2
        self.wall_left = layout.wall_x - half - r    # the dot's x may not pass this from the left
        self.wall_right = layout.wall_x + half + r   # ... nor this from the right
        self.door_lo = layout.door_center - layout.door_width / 2 + r
        self.door_hi = layout.door_center + layout.door_width / 2 - r
        self._background = self._draw_walls(layout)

    def _draw_walls(self, layout: Layout) -> np.ndarray:
        img = np.zeros((self.size, self.size, 3), np.uint8)
        wall = np.zeros((self.size, self.size), bool)
        b = int(round(self.border))
        wall[:b, :] = wall[-b:, :] = wall[:, :b] = wall[:, -b:] = True
        half = self.wall_thickness / 2
        xs = (self._grid >= layout.wall_x - half) & (self._grid < layout.wall_x + half)
        door = (self._grid >= layout.door_center - layout.door_width / 2) & (
            self._grid < layout.door_center + layout.door_width / 2
        )
        wall[np.ix_(~door, xs)] = True
        img[wall] = (90, 90, 200)
        return img

    def room_of(self, xy: np.ndarray) -> int:
        """0 for the left room, 1 for the right one."""
        return int(xy[0] >= self.layout.wall_x)

    def move(self, xy: np.ndarray, action: np.ndarray) -> np.ndarray:
        """One step of the dynamics: clip the action's norm, then move x then y against walls."""
        a = clip_action(action, self.max_action_norm)
        x, y = float(xy[0]), float(xy[1])
        in_door = self.door_lo <= y <= self.door_hi
        nx = min(max(x + a[0], self.lo), self.hi)
        if not in_door:
            if x <= self.wall_left < nx:
                nx = self.wall_left
            elif x >= self.wall_right > nx:
                nx = self.wall_right
        ny = min(max(y + a[1], self.lo), self.hi)
        if self.wall_left < nx < self.wall_right:  # inside the doorway: the door frame stops y
            ny = min(max(ny, self.door_lo), self.door_hi)
        return np.array([nx, ny], np.float32)

    def free_position(self, room: int, rng: np.random.Generator) -> np.ndarray:
        """A position uniform inside a room, `goal_margin` away from its walls."""
        g = self.goal_margin
        lo, hi = self.lo + g, self.hi - g
        if room == 0:
            x = rng.uniform(lo, self.wall_left - g)
        else:
            x = rng.uniform(self.wall_right + g, hi)
        return np.array([x, rng.uniform(lo, hi)], np.float32)

    def sample_start_and_goal(self, rng: np.random.Generator, min_door_distance: float = 0.0
                              ) -> tuple[np.ndarray, np.ndarray]:
        """Start and goal in different rooms, each uniform inside its room (and at least
        `min_door_distance` from the door's centre)."""
        room = int(rng.integers(2))
        door = np.array([self.layout.wall_x, self.layout.door_center])
        points = []
        for r in (room, 1 - room):
            p = self.free_position(r, rng)
            while np.linalg.norm(p - door) < min_door_distance:
                p = self.free_position(r, rng)
            points.append(p)
        return points[0], points[1]

    # ----------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        if self.random_layout:
            self._set_layout(
                Layout(
                    wall_x=float(rng.uniform(24, 40)),
                    door_center=float(rng.uniform(16, 48)),
                    door_width=12.0,
                )
            )
        options = options or {}
        if "state" in options:
            self.state = np.asarray(options["state"], np.float32).copy()
        else:
            self.state = self.free_position(int(rng.integers(2)), rng)
        self.goal = None if options.get("goal") is None else np.asarray(options["goal"], np.float32)
        return self.render(), self._info()
