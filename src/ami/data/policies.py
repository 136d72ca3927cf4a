"""Data-collection policies. They may read the true state: they make data, they do not plan.

`COLLECTION_POLICIES` names, per world, the function that picks the policy of one episode.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ami.data.pusht_policy import pusht_policy


class RandomWalk:
    """Random displacements that keep their direction for a while, so episodes cover space."""

    def __init__(self, max_norm: float, rng: np.random.Generator, switch_prob: float = 0.15):
        self.max_norm, self.rng, self.switch_prob = max_norm, rng, switch_prob
        self.action = self._draw()

    def _draw(self) -> np.ndarray:
        angle = self.rng.uniform(0, 2 * np.pi)
        norm = self.max_norm * np.sqrt(self.rng.uniform(0, 1))
        return norm * np.array([np.cos(angle), np.sin(angle)], np.float32)

    def __call__(self, state: np.ndarray) -> np.ndarray:
        if self.rng.uniform() < self.switch_prob:
            self.action = self._draw()
        return self.action


class DoorSeeker:
    """Heads for the door, goes through it, then for a random point in the other room; noisy."""

    def __init__(self, env, rng: np.random.Generator, noise: float = 0.6):
        self.env, self.rng, self.noise = env, rng, noise
        self.target_room: int | None = None
        self.waypoint: np.ndarray | None = None

    def __call__(self, state: np.ndarray) -> np.ndarray:
        env = self.env
        if self.target_room is None:
            self.target_room = 1 - env.room_of(state)
            self.waypoint = env.free_position(self.target_room, self.rng)
        if env.room_of(state) != self.target_room:
            # aim a little beyond the doorway so that the dot passes through it
            side = 1.0 if self.target_room == 1 else -1.0
            x = env.layout.wall_x + side * 6.0 if abs(state[0] - env.layout.wall_x) < 4 else \
                env.layout.wall_x
            target = np.array([x, env.layout.door_center], np.float32)
        else:
            target = self.waypoint
            if np.linalg.norm(target - state) < 2.0:  # reached: pick a new point, maybe go back
                self.target_room = int(self.rng.integers(2))
                self.waypoint = env.free_position(self.target_room, self.rng)
        d = target - state
        step = d / max(np.linalg.norm(d), 1e-6) * env.max_action_norm
        return (step + self.noise * env.max_action_norm * self.rng.standard_normal(2)).astype(
            np.float32
        )


class RandomPushes:
    """No action most of the time; with probability `push_prob` per step, a push of random
    direction and size, so that episodes mix free flight with its changes."""

    def __init__(self, max_norm: float, rng: np.random.Generator, push_prob: float):
        self.max_norm, self.rng, self.push_prob = max_norm, rng, push_prob

    def __call__(self, state: np.ndarray) -> np.ndarray:
        if self.rng.uniform() >= self.push_prob:
            return np.zeros(2, np.float32)
        angle = self.rng.uniform(0, 2 * np.pi)
        norm = self.max_norm * np.sqrt(self.rng.uniform(0, 1))
        # float32, as stored: the world applies exactly the action the file records
        return (norm * np.array([np.cos(angle), np.sin(angle)])).astype(np.float32)


class RoomWalker:
    """Walks the maze room by room: to the door of a neighbouring room (seldom the one it came
    from), through it, to a random point inside, and on; noisy, so it also brushes walls."""

    def __init__(self, env, rng: np.random.Generator, noise: float = 0.6):
        self.env, self.rng, self.noise = env, rng, noise
        self.waypoints: list[np.ndarray] = []
        self.came_from: int | None = None

    def _plan_next_room(self, state: np.ndarray) -> None:
        env, here = self.env, self.env.room_of(state)
        options = [m for m in env.graph[here] if m != self.came_from] or env.graph[here]
        there = options[int(self.rng.integers(len(options)))]
        door = env.door_between(here, there)
        # 5 px either side of the door, along the line through it that crosses the wall
        row, col = divmod(here, env.rooms)
        row2, col2 = divmod(there, env.rooms)
        step = 5.0 * np.array([col2 - col, row2 - row], np.float32)
        self.waypoints = [door - step, door + step, env.free_position(there, self.rng)]
        self.came_from = here

    def __call__(self, state: np.ndarray) -> np.ndarray:
        env = self.env
        if not self.waypoints:
            self._plan_next_room(state)
        if np.linalg.norm(self.waypoints[0] - state) < 2.0:
            self.waypoints.pop(0)
            if not self.waypoints:
                self._plan_next_room(state)
        d = self.waypoints[0] - state
        step = d / max(np.linalg.norm(d), 1e-6) * env.max_action_norm
        return (step + self.noise * env.max_action_norm * self.rng.standard_normal(2)).astype(
            np.float32
        )


def maze_policy(env, rng: np.random.Generator, cfg) -> tuple[Callable, str]:
    """The room walker for a `heuristic_ratio` share of episodes, else a random walk."""
    if rng.uniform() < cfg.heuristic_ratio:
        return RoomWalker(env, rng), "room_walker"
    return RandomWalk(env.max_action_norm, rng), "random_walk"


def two_rooms_policy(env, rng: np.random.Generator, cfg) -> tuple[Callable, str]:
    """The door seeker for a `heuristic_ratio` share of episodes, else a random walk."""
    if rng.uniform() < cfg.heuristic_ratio:
        return DoorSeeker(env, rng), "door_seeker"
    return RandomWalk(env.max_action_norm, rng), "random_walk"


def ballistic_policy(env, rng: np.random.Generator, cfg) -> tuple[Callable, str]:
    """Random pushes on ball 0, `push_prob` per step."""
    return RandomPushes(env.max_action_norm, rng, cfg.push_prob), "random_pushes"


# world name → (env, rng, CollectConfig) → (policy: state → action, its name in the file)
COLLECTION_POLICIES = {"two_rooms": two_rooms_policy, "ballistic": ballistic_policy,
                       "maze": maze_policy}
COLLECTION_POLICIES["pusht"] = pusht_policy
