"""Goal rules of `ami eval` that need more than a world's own goal sampler.

- `trajectory` (the LeWM / DINO-WM protocol): the start is a state of a held-out episode and
  the goal is the frame `goal_offset` (25) steps later in that episode. Held-out episodes are
  collected afresh with the world's collection policy (uniform random actions for a gymnasium
  environment) from collection seed 1,000,000 + the episode's seed, far from the seeds `ami
  collect` uses, so no training file holds them. A world with `set_state` starts from the
  recorded state (PushT: the agent at rest); any other is reset with the episode's seed and
  replays its actions up to the start. Starts whose goal is already met are skipped. Held-out
  episodes are as long as the world's preset collects them (PushT 100 steps), or twice the
  offset in a gymnasium environment.
- `pose` (PushT): goals no trajectory holds: from a random start, the block moved 40–100 units
  and turned by up to ±45°; success scores the block's pose alone.

The planner sees the first observation and the goal frame only; states stay with the scorer.
A gymnasium environment has no success test of its own: success is its state (its vector
observation) within `goal_tolerance` of the goal's, Euclidean.
"""

from __future__ import annotations

import numpy as np

from ami.config import CollectConfig, EvalConfig
from ami.envs import WORLDS, make_env
from ami.errors import AmiError

GOAL_RULES = {
    "trajectory": "start: a state of a held-out episode; goal: the frame goal_offset steps "
                  "later in it (LeWM / DINO-WM)",
    "pose": "start: a random state; goal: the block moved 40-100 units and turned up to 45 "
            "degrees, the agent where it started (free if in the way); the block's pose alone "
            "is scored",
}
HELD_OUT_SEED = 1_000_000


def eval_world(world: str, cfg: EvalConfig, image_size: int):
    """The world `ami eval` plays in, able to draw the start and goal of `cfg.goal_rule`."""
    if cfg.goal_rule not in GOAL_RULES:
        return make_env(world, random_layout=cfg.random_layout)
    options = {"image_size": image_size}
    if cfg.goal_rule == "pose":
        if world != "pusht":
            raise AmiError(f"--goal-rule pose needs a world with block poses (pusht), not "
                           f"{world}")
        env = make_env(world, block_only=True, **options)
        return PoseGoals(env)
    if cfg.goal_offset < 1:
        raise AmiError(f"--goal-offset must be >= 1, got {cfg.goal_offset}")
    return EpisodeGoals(make_env(world, **options), world, cfg.goal_offset, cfg.goal_tolerance)


class _Forward:
    """Everything not defined here is the wrapped world's."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        return getattr(self.env, name)


class PoseGoals(_Forward):
    """PushT with goals drawn by `PushT.sample_pose_goal` from a random start."""

    success_test = ("block within success_radius of the goal's position and within "
                    "angle_tolerance of its angle, at any step; episode ends there")

    def sample_start_and_goal(self, rng: np.random.Generator, **_):
        start = self.env.random_state(rng)
        return start, self.env.sample_pose_goal(start, rng)


class EpisodeGoals(_Forward):
    """A world whose starts and goals come from held-out episodes (the `trajectory` rule)."""

    def __init__(self, env, world: str, offset: int, tolerance: float):
        super().__init__(env)
        from ami.data.collect import make_policy
        from ami.presets import preset
        self.world, self.offset, self.tolerance = world, offset, tolerance
        self.builtin = world in WORLDS
        self.collect_cfg = preset(CollectConfig, world)
        self.collect_cfg.world = world
        # a built-in world's episodes as its preset collects them; elsewhere, twice the offset
        self.collect_cfg.steps = max(self.collect_cfg.steps, offset) if self.builtin else \
            2 * offset
        self.policy = make_policy(self.collect_cfg)
        self.goal = None
        self._goal_frame = self._replay = None
        self.success_test = (
            env.success_test if hasattr(env, "success_test") else
            "PushT: agent and block positions within success_radius of the goal's "
            "(Euclidean over the four) and block angle within angle_tolerance, at any step"
            if world == "pusht" else
            "distance to the goal state <= success_radius at any step" if self.builtin else
            "state (the environment's vector observation) within success_radius "
            "(--goal-tolerance) of the goal's, Euclidean, at any step")

    @property
    def success_radius(self) -> float:
        return self.env.success_radius if self.builtin else self.tolerance

    def sample_start_and_goal(self, rng: np.random.Generator, **_):
        from ami.data.collect import run_episode
        for _ in range(100):
            seed = HELD_OUT_SEED + int(rng.integers(1 << 30))
            frames, actions, states, _ = run_episode(self.env, self.policy, self.collect_cfg,
                                                     seed, 0)
            if len(actions) < self.offset or states.shape[1] == 0:
                if states.shape[1] == 0:
                    raise AmiError(f"{self.world}: its episodes record no state to score a "
                                   f"goal with (image observations); --goal-rule trajectory "
                                   f"needs one")
                continue
            for _ in range(10):
                t = int(rng.integers(0, len(actions) - self.offset + 1))
                start, goal = states[t], states[t + self.offset]
                self.set_goal(goal)
                if not self.is_success(start):
                    self._goal_frame = frames[t + self.offset]
                    self._replay = (seed, actions[:t])
                    return start, goal
        raise AmiError(f"{self.world}: no held-out episode of at least {self.offset} steps "
                       f"whose goal differs from its start, in 100 tries")

    def set_state(self, start) -> None:
        if hasattr(self.env, "set_state"):
            self.env.set_state(start)
            return
        from ami.data.collect import reset_seed
        seed, actions = self._replay          # replay: exact for a deterministic environment
        self.env.reset(seed=reset_seed(seed, 0))
        for a in actions:
            self.env.step(a)

    def set_goal(self, goal) -> None:
        self.goal = None if goal is None else np.asarray(goal, np.float32)
        if hasattr(self.env, "set_goal"):
            self.env.set_goal(goal)

    def render_state(self, state) -> np.ndarray:
        """The goal frame, as the held-out episode showed it."""
        if self.goal is not None and np.array_equal(np.asarray(state, np.float32), self.goal):
            return self._goal_frame
        return self.env.render_state(state)

    def is_success(self, state=None) -> bool:
        if hasattr(self.env, "is_success"):
            return self.env.is_success(state)
        if self.goal is None:
            return False
        s = self.env.get_state() if state is None else np.asarray(state)
        return float(np.linalg.norm(s - self.goal)) <= self.tolerance

    def step(self, action):
        obs, reward, _, truncated, info = self.env.step(action)
        return obs, reward, self.is_success(info["state"]), truncated, info

    def render(self) -> np.ndarray:
        return self.env.render()

    def get_state(self) -> np.ndarray:
        return self.env.get_state()
