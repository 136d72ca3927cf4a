"""Any gymnasium environment, seen through its pixels: `ami collect --env Pendulum-v1`.

`make_gym_world(name)` accepts a registered gymnasium id or `package.module:ClassName`. Frames
come from `render()` (rgb_array) or from an image observation, resized to a square of
`image_size`; actions must be continuous (a Box). When the environment's own observation is a
vector, it is recorded as the episode's state (for probes, and for scoring distances to a goal).

Such a world has no goal sampler and no success test of its own: `ami eval --goal-rule
trajectory` takes its goals from held-out episodes, replayed from their seeds.
"""

from __future__ import annotations

import difflib
import importlib
import os

import gymnasium as gym
import numpy as np
from PIL import Image

from ami.errors import AmiError


class GymWorld(gym.Wrapper):
    """A gymnasium environment whose observations are its frames, (S, S, 3) uint8."""

    max_action_norm = None

    def __init__(self, env: gym.Env, name: str, image_size: int = 64):
        super().__init__(env)
        self.name, self.size = name, int(image_size)
        space = env.action_space
        if not isinstance(space, gym.spaces.Box):
            raise AmiError(f"{name}: its action space is {space}; ami plans continuous actions "
                           f"(a gymnasium Box), not discrete ones")
        if space.shape is None or len(space.shape) != 1 or \
                not np.all(np.isfinite(space.low)) or not np.all(np.isfinite(space.high)):
            raise AmiError(f"{name}: ami needs a bounded 1-D Box of actions, got {space}")
        obs_space = env.observation_space
        self.image_obs = isinstance(obs_space, gym.spaces.Box) and obs_space.dtype == np.uint8 \
            and len(obs_space.shape) == 3 and obs_space.shape[-1] in (1, 3)
        self.vector_obs = isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1
        if not self.image_obs and getattr(env, "render_mode", None) != "rgb_array":
            raise AmiError(f"{name}: no pixels: its observations are not images and it does not "
                           f"render rgb_array frames (render_mode={env.render_mode!r})")
        self.action_space = gym.spaces.Box(space.low.astype(np.float32),
                                           space.high.astype(np.float32), dtype=np.float32)
        self.observation_space = gym.spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
        self._obs = None

    def _frame(self) -> np.ndarray:
        frame = self._obs if self.image_obs else self.env.render()
        if frame is None or np.ndim(frame) != 3 or np.shape(frame)[-1] not in (1, 3):
            raise AmiError(f"{self.name}: no pixels: render() gave "
                           f"{None if frame is None else np.shape(frame)}, not an (H, W, 3) "
                           f"image")
        frame = np.asarray(frame)
        if frame.dtype != np.uint8:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        if frame.shape[-1] == 1:
            frame = np.repeat(frame, 3, axis=-1)
        img = Image.fromarray(frame)
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), Image.BILINEAR)
        return np.array(img, np.uint8)  # writable, unlike asarray of an image

    def get_state(self) -> np.ndarray:
        """The environment's vector observation (empty when it observes images)."""
        if not self.vector_obs or self._obs is None:
            return np.zeros(0, np.float32)
        return np.asarray(self._obs, np.float32).reshape(-1).copy()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._obs, info = self.env.reset(seed=seed, options=options)
        return self._frame(), {**info, "state": self.get_state()}

    def step(self, action):
        self._obs, reward, terminated, truncated, info = self.env.step(
            np.asarray(action, self.env.action_space.dtype))
        return self._frame(), reward, terminated, truncated, {**info, "state": self.get_state()}

    def render(self) -> np.ndarray:
        return self._frame()


def make_gym_world(name: str, image_size: int = 64, known: tuple[str, ...] = ()) -> GymWorld:
    """A registered gymnasium id or `module:Class`, wrapped; an unknown id suggests close names
    (among `known`, the built-in worlds, and the registered ids)."""
    # environments that draw with pygame start SDL, which by default takes over SIGINT and
    # SIGTERM: Ctrl-C would no longer stop `ami`, and a collection worker would ignore the
    # pool's SIGTERM (the pool then waits on it for ever). SDL reads this when it starts.
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
    if ":" in name:
        env = _from_class(name)
    else:
        if name not in gym.registry:
            names = [*known, *gym.registry]
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise AmiError(f"unknown environment '{name}': not a built-in world "
                           f"({', '.join(known)}), a registered gymnasium id, or "
                           f"package.module:ClassName.{hint}")
        env = _make_registered(name)
    return GymWorld(env, name, image_size)


def _make_registered(name: str) -> gym.Env:
    spec = gym.registry[name]
    modes = (spec.kwargs or {}).get("render_modes") or []
    try:
        return gym.make(name, render_mode="rgb_array")
    except gym.error.DependencyNotInstalled as e:
        raise AmiError(f"{name}: {e}") from None
    except (TypeError, gym.error.Error) as e:  # no rgb_array mode: maybe it observes images
        try:
            return gym.make(name)
        except Exception:
            raise AmiError(f"{name}: cannot make it with render_mode='rgb_array' ({e}) "
                           f"{modes or ''}") from None


def _from_class(name: str) -> gym.Env:
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise AmiError(f"cannot import '{module_name}' for environment {name} ({e})") from None
    cls = getattr(module, attr, None)
    if cls is None:
        close = difflib.get_close_matches(attr, [n for n in dir(module) if not n.startswith("_")],
                                          n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise AmiError(f"module '{module_name}' has no '{attr}'.{hint}")
    try:
        env = cls(render_mode="rgb_array")
    except TypeError:
        env = cls()
    if not isinstance(env, gym.Env):
        raise AmiError(f"{name} made a {type(env).__name__}, not a gymnasium.Env")
    return env
