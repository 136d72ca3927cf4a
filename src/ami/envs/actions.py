"""The action contract the built-in worlds share: a finite 2-d move, its norm clipped."""

from __future__ import annotations

import numpy as np


def clip_action(action, max_norm: float) -> np.ndarray:
    """(2,) float64 action scaled down to `max_norm` if longer; a NaN or inf is a ValueError."""
    a = np.asarray(action, np.float64).reshape(2)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action must be finite, got {a}")
    n = np.linalg.norm(a)
    return a * (max_norm / n) if n > max_norm else a
