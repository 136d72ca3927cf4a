"""Pictures of episodes: frames with the goal marked, written as a GIF."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np


def mark_goal(frame: np.ndarray, goal_xy: np.ndarray, radius: float = 4.5) -> np.ndarray:
    """A copy of the frame with a green ring of the success radius around the goal."""
    h, w = frame.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    d = np.hypot(xx - goal_xy[0], yy - goal_xy[1])
    out = frame.copy()
    out[np.abs(d - radius) < 0.6] = (40, 220, 40)
    return out


def save_gif(frames: list[np.ndarray], path: Path, goal_xy: np.ndarray | None = None,
             radius: float = 4.5, upscale: int = 4, fps: int = 15) -> Path:
    """Write frames (H, W, 3) uint8 to a GIF, upscaled for viewing, goal ring drawn if given."""
    shown = [mark_goal(f, goal_xy, radius) if goal_xy is not None else f for f in frames]
    shown = [f.repeat(upscale, 0).repeat(upscale, 1) for f in shown]
    imageio.mimsave(path, shown, duration=1000 / fps, loop=0)
    return Path(path)
