"""The picture of a hierarchical episode: the maze, the agent's path and the subgoals it chose.

A JEPA has no pixel decoder, so subgoal embeddings are drawn where the run's position probe
(`ami train-high`) places them. Drawn with PIL alone, magnified `scale` times.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PATH, START, GOAL, FIRST_PLAN = (255, 150, 0), (40, 200, 40), (230, 40, 40), (0, 200, 220)


def save_subgoal_figure(background: np.ndarray, path_xy: np.ndarray, subgoals_xy: np.ndarray,
                        goal: np.ndarray, out: Path, first_plan_xy: np.ndarray | None = None,
                        success_radius: float = 4.5, scale: int = 8, title: str = "") -> Path:
    """background (S, S, 3) uint8; path_xy (T, 2) the agent's positions; subgoals_xy (P, 2)
    the first subgoal of each plan, in order; first_plan_xy (H, 2) the whole high-level plan
    made at the start. Positions in pixels of the world."""
    size = background.shape[0]
    img = Image.fromarray(background).resize((size * scale, size * scale), Image.NEAREST)
    draw, font = ImageDraw.Draw(img), ImageFont.load_default()

    def px(p):
        return (float(p[0]) * scale + scale / 2, float(p[1]) * scale + scale / 2)

    def disc(p, r, fill=None, outline=None, width=1):
        x, y = px(p)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill, outline=outline, width=width)

    if len(path_xy) > 1:
        draw.line([px(p) for p in path_xy], fill=PATH, width=3)
    count = len(subgoals_xy)
    for i, p in enumerate(subgoals_xy):      # light to dark blue as the episode goes on
        shade = int(220 - 180 * i / max(1, count - 1))
        disc(p, 4, fill=(shade // 3, shade // 2, 255))
    if first_plan_xy is not None and len(first_plan_xy):
        draw.line([px(path_xy[0])] + [px(p) for p in first_plan_xy], fill=FIRST_PLAN, width=1)
        for i, p in enumerate(first_plan_xy):
            disc(p, 6, outline=FIRST_PLAN, width=2)
            draw.text((px(p)[0] + 7, px(p)[1] - 6), str(i + 1), fill=FIRST_PLAN, font=font)
    disc(path_xy[0], 6, fill=START)
    disc(goal, success_radius * scale, outline=GOAL, width=3)
    legend = [("path", PATH), ("subgoal of each plan (light: early)", (40, 60, 255)),
              ("first high-level plan", FIRST_PLAN), ("start", START), ("goal", GOAL)]
    y = 4
    if title:
        draw.text((6, y), title, fill=(255, 255, 255), font=font)
        y += 12
    for text, colour in legend:
        draw.rectangle([6, y + 2, 14, y + 10], fill=colour)
        draw.text((18, y), text, fill=(255, 255, 255), font=font)
        y += 12
    img.save(out)
    return Path(out)
