"""Worlds that render pixels. `make_env(name)` builds a built-in world by name."""

from __future__ import annotations

import difflib

from ami.envs.ballistic import Ballistic
from ami.envs.maze import Maze
from ami.envs.pusht import PushT
from ami.envs.two_rooms import TwoRooms
from ami.errors import AmiError

WORLDS = {"two_rooms": TwoRooms, "ballistic": Ballistic, "maze": Maze, "pusht": PushT}


def make_env(name: str, **kwargs):
    """A built-in world by name, a registered gymnasium id or `package.module:ClassName`
    (seen through its pixels, `image_size` a side), or a clear error that suggests the closest
    names."""
    if name in WORLDS:
        return WORLDS[name](**kwargs)
    import gymnasium as gym
    if ":" in name or name in gym.registry:
        from ami.envs.gym_world import make_gym_world
        return make_gym_world(name, kwargs.get("image_size", 64), tuple(WORLDS))
    close = difflib.get_close_matches(name, list(WORLDS), n=3) or \
        difflib.get_close_matches(name, list(gym.registry), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise AmiError(f"unknown world '{name}'. Known worlds: {', '.join(WORLDS)}; or any "
                   f"registered gymnasium id, or package.module:ClassName.{hint}")


__all__ = ["WORLDS", "Ballistic", "Maze", "PushT", "TwoRooms", "make_env"]
