"""Ballistic: one to three balls under gravity, bouncing off the floor, the walls and each other.

A 64x64 box walled on all four sides. Balls fall with constant gravity and bounce with a
restitution; an optional occluder, a grey vertical bar drawn in front of the balls, hides them as
they pass behind it. An action is a push: a change of ball 0's velocity, its norm clipped to
`max_action_norm`. The world also gives a ball a new colour now and then (`recolour_prob`):
colour is a nuisance that carries no physics, which the violation-of-expectation suite's colour
control relies on.

The recorded state is (x, y, vx, vy) per ball, in pixels and pixels per step, x to the right and
y down, as in the image. One step: v += g, x += v, then bounces (semi-implicit Euler).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import gymnasium as gym
import numpy as np

from ami.config import BallisticConfig
from ami.envs.actions import clip_action

STATE_VARIABLES = ("x", "y", "vx", "vy")


@dataclass
class Balls:
    """The physical state of the balls, and what only rendering needs (radius, colour)."""

    pos: np.ndarray       # (n, 2) pixels
    vel: np.ndarray       # (n, 2) pixels per step
    radius: np.ndarray    # (n,)
    colour: np.ndarray    # (n,) index into the palette
    present: np.ndarray   # (n,) bool: False for a ball that vanished (impossible clips only)

    def copy(self) -> Balls:
        return Balls(*(np.array(v, copy=True) for v in
                       (self.pos, self.vel, self.radius, self.colour, self.present)))

    def state(self) -> np.ndarray:
        """(x, y, vx, vy) per ball, flattened: (4n,) float32."""
        return np.concatenate([self.pos, self.vel], axis=1).astype(np.float32).ravel()


def physics_step(balls: Balls, gravity: float, restitution: float, lo: float, hi: float,
                 side_walls: np.ndarray | None = None) -> Balls:
    """One step of the dynamics in a box whose inner edges are at `lo` and `hi` (both axes).

    `side_walls` (n,) bool says which balls the left and right walls stop (default: all); the
    solidity violation turns them off for one ball.
    """
    b = balls.copy()
    e, r = restitution, b.radius
    b.vel[:, 1] += gravity
    b.pos += b.vel
    walls = np.ones(len(r), bool) if side_walls is None else side_walls
    for axis in (0, 1):
        low, high = lo + r, hi - r
        stop = b.present & (walls if axis == 0 else True)
        below = stop & (b.pos[:, axis] < low)
        above = stop & (b.pos[:, axis] > high)
        # reflect the overshoot, shortened like the speed, so a bounce loses energy smoothly
        b.pos[below, axis] = low[below] + e * (low[below] - b.pos[below, axis])
        b.pos[above, axis] = high[above] - e * (b.pos[above, axis] - high[above])
        b.vel[below | above, axis] *= -e
    _collide(b, e)
    # a collision can push a ball into a wall: the wall wins (the overlap resolves next step)
    for axis in (0, 1):
        stop = b.present & (walls if axis == 0 else True)
        b.pos[stop, axis] = np.clip(b.pos[stop, axis], lo + r[stop], hi - r[stop])
    return b


def _collide(b: Balls, e: float) -> None:
    """Pairwise collisions with restitution e; masses grow with area."""
    n = len(b.radius)
    mass = b.radius**2
    for i in range(n):
        for j in range(i + 1, n):
            if not (b.present[i] and b.present[j]):
                continue
            d = b.pos[j] - b.pos[i]
            dist = float(np.hypot(*d))
            overlap = b.radius[i] + b.radius[j] - dist
            if overlap <= 0 or dist == 0:
                continue
            normal = d / dist
            closing = float((b.vel[j] - b.vel[i]) @ normal)
            if closing < 0:
                impulse = -(1 + e) * closing / (1 / mass[i] + 1 / mass[j])
                b.vel[i] -= impulse / mass[i] * normal
                b.vel[j] += impulse / mass[j] * normal
            # separate them, the lighter ball moving more
            share = mass[i] / (mass[i] + mass[j])
            b.pos[i] -= (1 - share) * overlap * normal
            b.pos[j] += share * overlap * normal


def hex_rgb(colour: str) -> np.ndarray:
    """'#rrggbb' → (3,) float in [0, 255]."""
    c = colour.lstrip("#")
    if len(c) != 6:
        raise ValueError(f"colour must be '#rrggbb', got {colour!r}")
    return np.array([int(c[k:k + 2], 16) for k in (0, 2, 4)], np.float32)


class Ballistic(gym.Env):
    """Balls under gravity; pixels in, 2-D pushes on ball 0 out."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    size = 64
    border = 2                  # wall thickness (px)
    max_action_norm = 3.0       # largest push, a change of velocity (px/step)
    wall_colour = (90, 90, 200)
    occluder_colour = (128, 128, 128)

    def __init__(self, config: BallisticConfig | None = None, render_mode: str = "rgb_array"):
        self.config = cfg = config or BallisticConfig()
        if not 1 <= cfg.balls <= 3:
            raise ValueError(f"balls must be 1, 2 or 3, got {cfg.balls}")
        if len(cfg.radii) < cfg.balls or min(cfg.radii[: cfg.balls]) <= 0:
            raise ValueError(f"radii needs {cfg.balls} positive values, got {cfg.radii}")
        if len(cfg.palette) < 2:
            raise ValueError("palette needs at least two colours")
        self.render_mode = render_mode
        m = self.max_action_norm
        self.action_space = gym.spaces.Box(-m, m, shape=(2,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
        # pixel i covers [i - 0.5, i + 0.5): the inner edges of the walls
        self.lo, self.hi = self.border - 0.5, self.size - self.border - 0.5
        self.palette = np.stack([hex_rgb(c) for c in cfg.palette])
        grid = np.arange(self.size, dtype=np.float32)
        self._xx, self._yy = np.meshgrid(grid, grid)   # (H, W): pixel centres
        self._background = self._draw_walls()
        self._occluder = self._occluder_mask()
        self.balls = self.sample_balls(np.random.default_rng(0))

    # ----------------------------------------------------------------- geometry
    def _draw_walls(self) -> np.ndarray:
        img = np.zeros((self.size, self.size, 3), np.float32)
        b = self.border
        wall = np.zeros((self.size, self.size), bool)
        wall[:b, :] = wall[-b:, :] = wall[:, :b] = wall[:, -b:] = True
        img[wall] = self.wall_colour
        return img

    def _occluder_mask(self) -> np.ndarray:
        mask = np.zeros((self.size, self.size), bool)
        if self.config.occluder:
            half = self.config.occluder_width / 2
            x = self.config.occluder_x
            cols = (self._xx[0] >= x - half) & (self._xx[0] < x + half)
            mask[self.border:self.size - self.border, cols] = True
        return mask

    def sample_balls(self, rng: np.random.Generator) -> Balls:
        """Balls placed uniformly without overlap, moving sideways at 1.5–3 px/step."""
        cfg, n = self.config, self.config.balls
        radius = np.asarray(cfg.radii[:n], np.float64)
        pos = np.zeros((n, 2))
        for i in range(n):
            for _ in range(1000):
                p = rng.uniform(self.lo + radius[i], self.hi - radius[i], size=2)
                if all(np.hypot(*(p - pos[j])) > radius[i] + radius[j] + 1 for j in range(i)):
                    break
            pos[i] = p
        vx = rng.choice([-1.0, 1.0], size=n) * rng.uniform(1.5, 3.0, size=n)
        vel = np.stack([vx, rng.uniform(-3.0, 1.0, size=n)], axis=1)
        colour = np.arange(n) % len(self.palette)
        return Balls(pos, vel, radius, colour, np.ones(n, bool))

    def step_balls(self, balls: Balls, gravity: float | None = None,
                   side_walls: np.ndarray | None = None) -> Balls:
        """The world's dynamics (without pushes or recolouring), optionally with other laws."""
        g = self.config.gravity if gravity is None else gravity
        return physics_step(balls, g, self.config.restitution, self.lo, self.hi, side_walls)

    def visible_area(self, balls: Balls, i: int) -> float:
        """Pixels of ball i that the camera sees (not behind the occluder, inside the frame)."""
        if not balls.present[i]:
            return 0.0
        return float((self._alpha(balls.pos[i], balls.radius[i]) * ~self._occluder).sum())

    # ----------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        self.balls = self.sample_balls(self.np_random)
        if "state" in options:
            self.set_state(options["state"])
        if "colours" in options:
            self.balls.colour = np.asarray(options["colours"], int) % len(self.palette)
        return self.render(), self._info()

    def step(self, action):
        a = clip_action(action, self.max_action_norm)
        balls = self.balls.copy()
        balls.vel[0] += a
        self.balls = self.step_balls(balls)
        self._recolour(self.np_random)
        return self.render(), 0.0, False, False, self._info()

    def _recolour(self, rng: np.random.Generator) -> None:
        for i in np.flatnonzero(rng.uniform(size=len(self.balls.colour))
                                < self.config.recolour_prob):
            others = [c for c in range(len(self.palette)) if c != self.balls.colour[i]]
            self.balls.colour[i] = rng.choice(others)

    def _info(self) -> dict:
        return {"state": self.balls.state()}

    def render(self) -> np.ndarray:
        return self.render_balls(self.balls)

    def render_balls(self, balls: Balls) -> np.ndarray:
        """The frame of `balls`: walls, then the balls in order, then the occluder in front."""
        img = self._background.copy()
        for i in np.flatnonzero(balls.present):
            alpha = self._alpha(balls.pos[i], balls.radius[i])[..., None]
            img = img * (1 - alpha) + self.palette[balls.colour[i]] * alpha
        img[self._occluder] = self.occluder_colour
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)

    def _alpha(self, xy: np.ndarray, radius: float) -> np.ndarray:
        """(H, W) coverage of a disc, with a one-pixel soft edge so that sub-pixel moves show."""
        d = np.hypot(self._xx - xy[0], self._yy - xy[1])
        return np.clip(radius + 0.5 - d, 0.0, 1.0)

    # ----------------------------------------------------------------- state access
    def get_state(self) -> np.ndarray:
        return self.balls.state()

    def set_state(self, state: np.ndarray) -> None:
        s = np.asarray(state, np.float64).reshape(self.config.balls, 4)
        self.balls = replace(self.balls.copy(), pos=s[:, :2].copy(), vel=s[:, 2:].copy())

    @staticmethod
    def state_names(size: int) -> list[str]:
        """Names of the recorded state's entries, e.g. ball0_x, ball0_y, ball0_vx, ball0_vy."""
        return [f"ball{i}_{v}" for i in range(size // 4) for v in STATE_VARIABLES]
