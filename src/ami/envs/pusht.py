"""PushT: a round agent pushes a T-shaped block to a target pose (Florence et al. 2021; the
public PushT of Diffusion Policy, Chi et al. 2023), simulated with pymunk, rendered headless.

The geometry and the dynamics are the public ones, in its units: a 512x512 arena walled 5 units
from its edges; a T of two boxes, a 120x30 bar and a 30x90 stem below its middle (mass 1);
a kinematic agent of radius 15. A step lasts 0.1 s, ten physics steps at 100 Hz; in each, a PD
controller (k_p 100, k_v 20) accelerates the agent towards a position target. The space's
damping is 0 (pymunk keeps that fraction of a body's velocity per second), so the block moves
only while it is pushed, and no shape has friction, as in the public code.

The one change: an action is the target *relative to the agent* (as DINO-WM and LeWM use the
public data), a 2-D offset in world units whose norm is clipped to `max_action_norm`.

The state is (agent x, agent y, block x, block y, block angle): the block's position is its
body's origin, the middle of the bar's outer edge, and its angle is in [0, 2π). Coordinates
are world units, x to the right and y down, as in the image. `set_state` puts the agent at rest
(the controller's velocity is the one thing the state leaves out).

Success (DINO-WM's test, the one LeWM reports): the agent and block positions together within
`success_radius` = 20 units of the goal's, ‖(agent, block) − goal‖₂ < 20, and the block's angle
within `angle_tolerance` = π/9 (20°) of the goal's. `block_only=True` scores the block pose alone,
for goals that name a pose of the block and leave the agent free.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from PIL import Image, ImageDraw

from ami.envs.actions import clip_action
from ami.errors import AmiError

WORLD = 512.0
STATE_VARIABLES = ("agent_x", "agent_y", "block_x", "block_y", "block_angle")

# the T in its body's frame: the bar, then the stem below its middle (public PushT, scale 30)
BAR = ((-60.0, 0.0), (60.0, 0.0), (60.0, 30.0), (-60.0, 30.0))
STEM = ((-15.0, 30.0), (-15.0, 120.0), (15.0, 120.0), (15.0, 30.0))
# its outline, clockwise on screen (y down); every edge's outward normal is (dy, -dx)/len
OUTLINE = np.array([(-60, 0), (60, 0), (60, 30), (15, 30), (15, 120), (-15, 120), (-15, 30),
                    (-60, 30)], np.float64)

BACKGROUND = (255, 255, 255)
BLOCK_COLOUR = (119, 136, 153)     # LightSlateGray, as the public renderer
AGENT_COLOUR = (65, 105, 225)      # RoyalBlue
WALL_COLOUR = (211, 211, 211)


def _pymunk():
    try:
        import pymunk
    except ImportError:
        raise AmiError("the pusht world needs pymunk: pip install 'ami[pusht]'") from None
    return pymunk


def rotate(points: np.ndarray, angle: float) -> np.ndarray:
    """Rotate (N, 2) points by `angle` as pymunk does (x' = x cos − y sin, y' = x sin + y cos)."""
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def angle_difference(a, b):
    """|a − b| wrapped into [0, π]; element-wise for arrays."""
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)) % (2 * math.pi)
    d = np.minimum(d, 2 * math.pi - d)
    return float(d) if d.ndim == 0 else d


class PushT(gym.Env):
    """Push the T to a pose: pixels in, 2-D target offsets for the agent out."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    agent_radius = 15.0
    wall_margin = 5.0
    max_action_norm = 40.0
    sim_hz = 100
    control_hz = 10
    k_p, k_v = 100.0, 20.0
    success_radius = 20.0
    angle_tolerance = math.pi / 9
    sizes = (64, 96, 224)

    def __init__(self, image_size: int = 64, block_only: bool = False,
                 render_mode: str = "rgb_array"):
        if image_size not in self.sizes:
            raise ValueError(f"image_size must be one of {self.sizes}, got {image_size}")
        self.pymunk = _pymunk()
        self.size, self.block_only, self.render_mode = image_size, block_only, render_mode
        m = self.max_action_norm
        self.action_space = gym.spaces.Box(-m, m, shape=(2,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
        # supersampled drawing, box-filtered down: sub-pixel motion changes the pixels
        self._ss = max(1, min(4, round(512 / image_size)))
        self.goal: np.ndarray | None = None
        self._setup()

    # ----------------------------------------------------------------- physics
    def _setup(self) -> None:
        pm = self.pymunk
        self.space = pm.Space()
        self.space.gravity = (0, 0)
        self.space.damping = 0
        lo, hi = self.wall_margin, WORLD - self.wall_margin - 1
        for a, b in [((lo, hi), (lo, lo)), ((lo, lo), (hi, lo)), ((hi, lo), (hi, hi)),
                     ((lo, hi), (hi, hi))]:
            self.space.add(pm.Segment(self.space.static_body, a, b, 2))
        self.agent = pm.Body(body_type=pm.Body.KINEMATIC)
        self.agent.position = (256, 400)
        self.space.add(self.agent, pm.Circle(self.agent, self.agent_radius))
        mass = 1.0
        inertia = pm.moment_for_poly(mass, BAR) + pm.moment_for_poly(mass, STEM)
        self.block = pm.Body(mass, inertia)
        bar, stem = pm.Poly(self.block, BAR), pm.Poly(self.block, STEM)
        self.block.center_of_gravity = (np.add(bar.center_of_gravity,
                                                stem.center_of_gravity) / 2).tolist()
        self.block.position = (256, 300)
        self.space.add(self.block, bar, stem)

    def _simulate(self, target: np.ndarray) -> None:
        dt = 1.0 / self.sim_hz
        for _ in range(self.sim_hz // self.control_hz):
            pos, vel = np.asarray(self.agent.position), np.asarray(self.agent.velocity)
            acc = self.k_p * (target - pos) + self.k_v * (0.0 - vel)
            self.agent.velocity = tuple((vel + acc * dt).tolist())
            self.space.step(dt)

    # ----------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "state" in options:
            self.set_state(options["state"])
        else:
            self.set_state(self.random_state(self.np_random))
        self.set_goal(options.get("goal"))
        return self.render(), self._info()

    def step(self, action):
        a = clip_action(action, self.max_action_norm)
        lo, hi = self.wall_margin + self.agent_radius, WORLD - self.wall_margin - self.agent_radius
        target = np.clip(np.asarray(self.agent.position) + a, lo, hi)
        self._simulate(target)
        info = self._info()
        return self.render(), -info.get("distance", 0.0), bool(info.get("success", False)), \
            False, info

    def _info(self) -> dict:
        info = {"state": self.get_state()}
        if self.goal is not None:
            info["distance"] = self.distance(info["state"])
            info["success"] = self.is_success(info["state"])
        return info

    # ----------------------------------------------------------------- state access
    def get_state(self) -> np.ndarray:
        """(agent x, agent y, block x, block y, block angle in [0, 2π)), float32."""
        a, b = self.agent.position, self.block.position
        return np.array([a.x, a.y, b.x, b.y, self.block.angle % (2 * math.pi)], np.float32)

    def set_state(self, state) -> None:
        s = np.asarray(state, np.float64).reshape(-1)
        if s.shape != (5,) or not np.all(np.isfinite(s)):
            raise ValueError(f"a PushT state is 5 finite numbers {STATE_VARIABLES}, got {s}")
        # a new space: pymunk's cached contacts would push a teleported block (warm starting),
        # and a fresh one makes what follows a function of the state alone
        self._setup()
        self.agent.position = (float(s[0]), float(s[1]))
        # the angle first: pymunk turns a body about its centre of gravity, moving its origin
        self.block.angle = float(s[4])
        self.block.position = (float(s[2]), float(s[3]))
        self.space.reindex_shapes_for_body(self.block)
        self.space.reindex_shapes_for_body(self.agent)

    def random_state(self, rng: np.random.Generator) -> np.ndarray:
        """The public PushT's reset: agent in [50, 450]², block in [100, 400]², any angle."""
        return np.array([*rng.uniform(50, 450, 2), *rng.uniform(100, 400, 2),
                         rng.uniform(-math.pi, math.pi) % (2 * math.pi)], np.float32)

    @staticmethod
    def state_names(size: int) -> list[str]:
        return list(STATE_VARIABLES)[:size]

    # ----------------------------------------------------------------- goals
    def set_goal(self, goal) -> None:
        """A goal state (5,) as `get_state` returns it, or None."""
        self.goal = None if goal is None else np.asarray(goal, np.float32).reshape(5).copy()

    def distance(self, state=None) -> float:
        """Position distance to the goal: agent and block (block only with `block_only`)."""
        s = np.asarray(self.get_state() if state is None else state, np.float64)
        lo = 2 if self.block_only else 0
        return float(np.linalg.norm(s[lo:4] - self.goal[lo:4]))

    def goal_ring(self, goal) -> tuple[float, float, float]:
        """(x, y, radius) in frame pixels: the goal's block position and the success radius,
        for pictures (the goal frame beside them shows the pose)."""
        k = self.size / WORLD                                          # pixels per unit
        return float(goal[2]) * k, float(goal[3]) * k, self.success_radius * k

    def is_success(self, state=None) -> bool:
        if self.goal is None:
            return False
        s = self.get_state() if state is None else np.asarray(state)
        return self.distance(s) < self.success_radius and \
            angle_difference(float(s[4]), float(self.goal[4])) < self.angle_tolerance

    def sample_pose_goal(self, start: np.ndarray, rng: np.random.Generator,
                         shift: tuple[float, float] = (40.0, 100.0),
                         turn: float = math.pi / 4) -> np.ndarray:
        """A goal no trajectory holds: the start's block moved 40–100 units in a random
        direction and turned by up to ±45°, inside the arena; the agent where it started, or,
        if that overlaps the moved block, at a free random place."""
        for _ in range(1000):
            d, phi = rng.uniform(*shift), rng.uniform(0, 2 * math.pi)
            xy = start[2:4] + d * np.array([math.cos(phi), math.sin(phi)])
            angle = (float(start[4]) + rng.uniform(-turn, turn)) % (2 * math.pi)
            outline = rotate(OUTLINE, angle) + xy
            if outline.min() < 20 or outline.max() > WORLD - 20:
                continue
            agent = np.asarray(start[:2], np.float64)
            while self._overlaps(agent, xy, angle):
                agent = rng.uniform(50, 450, 2)
            return np.array([*agent, *xy, angle], np.float32)
        raise AmiError("no goal pose inside the arena after 1000 draws")

    def _overlaps(self, agent_xy: np.ndarray, block_xy: np.ndarray, angle: float) -> bool:
        """Whether an agent at `agent_xy` would touch the block at that pose (with a margin)."""
        p = rotate((np.asarray(agent_xy) - block_xy)[None], -angle)[0]   # into the block frame
        r = self.agent_radius + 5
        for (x0, y0), (x1, y1) in ((BAR[0], BAR[2]), (STEM[0], STEM[2])):  # box corners
            if x0 - r <= p[0] <= x1 + r and y0 - r <= p[1] <= y1 + r:
                return True
        return False

    # ----------------------------------------------------------------- pixels
    def render(self) -> np.ndarray:
        return self.render_state(self.get_state())

    def render_state(self, state) -> np.ndarray:
        """The frame of a state, (size, size, 3) uint8; a function of the state alone."""
        s = np.asarray(state, np.float64).reshape(5)
        side = self.size * self._ss
        k = side / WORLD
        img = Image.new("RGB", (side, side), BACKGROUND)
        draw = ImageDraw.Draw(img)
        m = self.wall_margin * k
        draw.rectangle([0, 0, side - 1, side - 1], outline=WALL_COLOUR, width=max(1, round(m)))
        for part in (BAR, STEM):
            pts = (rotate(np.asarray(part), s[4]) + s[2:4]) * k
            draw.polygon([tuple(p) for p in pts.tolist()], fill=BLOCK_COLOUR)
        r = self.agent_radius * k
        cx, cy = s[0] * k, s[1] * k
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=AGENT_COLOUR)
        if self._ss > 1:
            img = img.resize((self.size, self.size), Image.BOX)
        return np.array(img, np.uint8)  # writable, unlike asarray of an image
