"""The PushT collection policy: a scripted, noisy pusher mixed with random segments.

No expert data set can be downloaded, so the data come from a script that reads the true state
(it makes data, it does not plan): it picks a target for the block, walks around the block to a
point on its far side (a random point of the outline whose outward normal faces away from the
target, so off-centre contacts turn the block), pushes through it for a while, and picks again.
Now and then it takes a random segment instead, so the data also hold free motion, glancing
contacts and pushes no script would make.
"""

from __future__ import annotations

import numpy as np

from ami.envs.pusht import OUTLINE, WORLD, rotate

_EDGES = np.roll(OUTLINE, -1, axis=0) - OUTLINE                         # (8, 2)
_LENGTHS = np.linalg.norm(_EDGES, axis=1)
_NORMALS = np.stack([_EDGES[:, 1], -_EDGES[:, 0]], axis=1) / _LENGTHS[:, None]  # outward
_CENTRE = np.array([0.0, 45.0])          # the T's centre of gravity in its body frame


class BlockPusher:
    """Approach a contact point behind the block, push the block towards a target, repeat."""

    def __init__(self, env, rng: np.random.Generator, noise: float = 0.25,
                 random_prob: float = 0.2):
        self.env, self.rng, self.noise, self.random_prob = env, rng, noise, random_prob
        self.m = env.max_action_norm
        self.mode, self.steps_left = "new", 0
        self.target = self.contact = self.normal = self.direction = None

    def _block_centre(self, state: np.ndarray) -> np.ndarray:
        return state[2:4] + rotate(_CENTRE[None], float(state[4]))[0]

    def _choose(self, state: np.ndarray) -> None:
        rng = self.rng
        if rng.uniform() < self.random_prob:
            self.mode, self.steps_left = "random", int(rng.integers(5, 16))
            angle, norm = rng.uniform(0, 2 * np.pi), self.m * np.sqrt(rng.uniform(0.2, 1))
            self.direction = norm * np.array([np.cos(angle), np.sin(angle)])
            return
        self.target = rng.uniform(120, WORLD - 120, 2)
        centre = self._block_centre(state)
        want = self.target - centre
        want /= max(np.linalg.norm(want), 1e-6)
        # candidate contacts on the outline, in the world frame, with their outward normals
        edges = rng.choice(len(OUTLINE), 24, p=_LENGTHS / _LENGTHS.sum())
        points = OUTLINE[edges] + rng.uniform(0, 1, (24, 1)) * _EDGES[edges]
        points = rotate(points, float(state[4])) + state[2:4]
        normals = rotate(_NORMALS[edges], float(state[4]))
        behind = normals @ want < -0.5
        pick = int(rng.choice(np.flatnonzero(behind))) if behind.any() else \
            int(np.argmin(normals @ want))
        self.contact, self.normal = points[pick], normals[pick]
        self.mode, self.steps_left = "approach", 30

    def _towards(self, agent: np.ndarray, point: np.ndarray) -> np.ndarray:
        d = point - agent
        n = np.linalg.norm(d)
        return d if n <= self.m else d * (self.m / n)

    def __call__(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state, np.float64)
        if self.steps_left <= 0 or self.mode == "new":
            self._choose(state)
        self.steps_left -= 1
        agent = state[:2]
        if self.mode == "random":
            a = self.direction
        elif self.mode == "approach":
            r = self.env.agent_radius
            stand = self.contact + self.normal * (r + 6)
            centre = self._block_centre(state)
            side = agent - centre
            if side @ self.normal < 30 and np.linalg.norm(agent - stand) > 25:
                # on the wrong side: go around, half-way between here and the far side
                out = side / max(np.linalg.norm(side), 1e-6) + self.normal
                out /= max(np.linalg.norm(out), 1e-6)
                a = self._towards(agent, centre + 115 * out)
            else:
                a = self._towards(agent, stand)
            if np.linalg.norm(agent - stand) < 10:
                self.mode, self.steps_left = "push", int(self.rng.integers(8, 25))
        else:  # push: through the contact point, along the inward normal
            a = -self.normal * self.m * self.rng.uniform(0.5, 1.0)
        a = a + self.noise * self.m * self.rng.standard_normal(2)
        return a.astype(np.float32)


class RandomTargets:
    """Random offsets that keep their direction for a while: free motion, chance contacts."""

    def __init__(self, max_norm: float, rng: np.random.Generator, switch_prob: float = 0.1):
        self.m, self.rng, self.switch_prob = max_norm, rng, switch_prob
        self.action = self._draw()

    def _draw(self) -> np.ndarray:
        angle = self.rng.uniform(0, 2 * np.pi)
        return (self.m * np.sqrt(self.rng.uniform(0, 1)) *
                np.array([np.cos(angle), np.sin(angle)])).astype(np.float32)

    def __call__(self, state: np.ndarray) -> np.ndarray:
        if self.rng.uniform() < self.switch_prob:
            self.action = self._draw()
        return self.action


def pusht_policy(env, rng: np.random.Generator, cfg):
    """The block pusher for a `heuristic_ratio` share of episodes, else random targets."""
    if rng.uniform() < cfg.heuristic_ratio:
        return BlockPusher(env, rng), "block_pusher"
    return RandomTargets(env.max_action_norm, rng), "random_targets"
