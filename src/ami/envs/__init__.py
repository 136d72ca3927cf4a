"""Worlds that render pixels. `make_env(name)` builds a built-in world by name."""

from __future__ import annotations

import difflib

from ami.envs.ballistic import Ballistic
from ami.envs.two_rooms import TwoRooms
from ami.errors import AmiError

WORLDS = {"two_rooms": TwoRooms, "ballistic": Ballistic}


def make_env(name: str, **kwargs):
    """A built-in world by name, or a clear error that suggests the closest names."""
    if name not in WORLDS:
        close = difflib.get_close_matches(name, list(WORLDS), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise AmiError(f"unknown world '{name}'. Known worlds: {', '.join(WORLDS)}.{hint}")
    return WORLDS[name](**kwargs)


__all__ = ["WORLDS", "Ballistic", "TwoRooms", "make_env"]
