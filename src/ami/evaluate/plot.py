"""Line plots drawn with PIL alone (no matplotlib): panels of series over time, written as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont


class Series(NamedTuple):
    label: str
    values: np.ndarray          # (T,) float; NaN values are not drawn
    colour: tuple[int, int, int]


WIDTH, PANEL_HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 28, 34   # margins of a panel (px)


def save_line_plots(panels: list[tuple[str, int | None, list[Series]]], path: Path,
                    x_label: str = "", y_label: str = "") -> Path:
    """One panel per (title, marked x or None, series), stacked vertically; each panel has its
    own y range from 0 to its largest value."""
    img = Image.new("RGB", (WIDTH, PANEL_HEIGHT * len(panels)), "white")
    draw, font = ImageDraw.Draw(img), ImageFont.load_default()
    for i, (title, mark, series) in enumerate(panels):
        _panel(draw, font, i * PANEL_HEIGHT, title, mark, series, x_label, y_label)
    img.save(path)
    return Path(path)


def _panel(draw, font, top, title, mark, series, x_label, y_label) -> None:
    x0, x1 = LEFT, WIDTH - RIGHT
    y0, y1 = top + TOP, top + PANEL_HEIGHT - BOTTOM
    n = max(len(s.values) for s in series)
    finite = np.concatenate([np.asarray(s.values, float)[np.isfinite(s.values)] for s in series])
    y_max = float(finite.max()) if finite.size and finite.max() > 0 else 1.0

    def px(t, v):
        return (x0 + (x1 - x0) * t / max(1, n - 1), y1 - (y1 - y0) * v / y_max)

    draw.rectangle([x0, y0, x1, y1], outline=(0, 0, 0))
    draw.text((x0, top + 8), title, fill=(0, 0, 0), font=font)
    for t in range(0, n, 10):   # x ticks every 10 frames
        x = px(t, 0)[0]
        draw.line([x, y1, x, y1 + 4], fill=(0, 0, 0))
        draw.text((x - 6, y1 + 6), str(t), fill=(0, 0, 0), font=font)
    draw.text(((x0 + x1) / 2 - 15, y1 + 18), x_label, fill=(0, 0, 0), font=font)
    draw.text((8, y0), f"{y_max:.3g}", fill=(0, 0, 0), font=font)
    draw.text((8, y1 - 10), "0", fill=(0, 0, 0), font=font)
    draw.text((8, (y0 + y1) / 2), y_label, fill=(0, 0, 0), font=font)
    if mark is not None:        # the frame where the clips start to differ
        x = px(mark, 0)[0]
        draw.line([x, y0, x, y1], fill=(150, 150, 150), width=1)
    for k, s in enumerate(series):
        v = np.asarray(s.values, float)
        points = [px(t, v[t]) for t in range(len(v)) if np.isfinite(v[t])]
        if len(points) > 1:
            draw.line(points, fill=s.colour, width=2)
        lx = x1 - 120
        ly = y0 + 6 + 12 * k
        draw.line([lx, ly + 5, lx + 16, ly + 5], fill=s.colour, width=2)
        draw.text((lx + 20, ly), s.label, fill=(0, 0, 0), font=font)
