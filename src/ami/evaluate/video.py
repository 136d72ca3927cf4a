"""Pictures of episodes: each frame beside the goal's frame, the goal ringed where the world
can place it in pixels, written as a GIF."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np

RING = (40, 220, 40)
GAP = (255, 255, 255)


def mark_goal(frame: np.ndarray, ring: tuple[float, float, float]) -> np.ndarray:
    """A copy of the frame with a green ring (x, y, radius), in pixels."""
    x, y, radius = ring
    h, w = frame.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    d = np.hypot(xx - x, yy - y)
    out = frame.copy()
    out[np.abs(d - radius) < 0.6] = RING
    return out


def save_gif(frames: list[np.ndarray], path: Path, goal_frame: np.ndarray | None = None,
             ring: tuple[float, float, float] | None = None, upscale: int = 4,
             fps: int = 15) -> Path:
    """Write frames (H, W, 3) uint8 to a GIF, upscaled for viewing: the goal ring drawn on each
    frame if given, the goal's frame to the right of each if given."""
    shown = [mark_goal(f, ring) if ring is not None else f for f in frames]
    if goal_frame is not None:
        gap = np.full((goal_frame.shape[0], 2, 3), GAP, np.uint8)
        shown = [np.concatenate([f, gap, goal_frame], axis=1) for f in shown]   # (H, 2W+2, 3)
    shown = [f.repeat(upscale, 0).repeat(upscale, 1) for f in shown]
    imageio.mimsave(path, shown, duration=1000 / fps, loop=0)
    return Path(path)
