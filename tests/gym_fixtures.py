"""Small gymnasium environments that ami does not ship, for tests/test_gym_world.py."""

import gymnasium as gym
import numpy as np


class NoPixels(gym.Env):
    """Vector observations and no renderer."""

    def __init__(self):
        self.action_space = gym.spaces.Box(-1, 1, (1,), np.float32)
        self.observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, False, False, {}


class ImageDot(gym.Env):
    """A dot that the action moves, observed as a 32x32 image (no render_mode)."""

    def __init__(self):
        self.action_space = gym.spaces.Box(-2, 2, (2,), np.float32)
        self.observation_space = gym.spaces.Box(0, 255, (32, 32, 3), np.uint8)
        self.xy = np.zeros(2)

    def _obs(self):
        img = np.zeros((32, 32, 3), np.uint8)
        x, y = np.clip(self.xy, 0, 31).astype(int)
        img[y, x] = 255
        return img

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.xy = self.np_random.uniform(4, 28, 2)
        return self._obs(), {}

    def step(self, action):
        self.xy = np.clip(self.xy + action, 0, 31)
        return self._obs(), 0.0, False, False, {}


def push_right(env, rng):
    """A user-supplied collection policy: always the first action coordinate at its maximum."""
    high = env.action_space.high
    return lambda obs: np.r_[high[0], np.zeros(len(high) - 1)].astype(np.float32)
