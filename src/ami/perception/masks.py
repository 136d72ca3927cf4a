"""Which tokens a JEPA context encoder sees, and which it must predict.

- I-JEPA multi-block (`multiblock_mask`): a few target blocks (each 15–20 % of the image,
  aspect ratio 0.75–1.5) and one large context block (85–100 %) from which the targets are
  removed, so the context never shows what it must predict.
- V-JEPA tubes (`tube_mask`): the union of several spatial blocks, masked through every
  frame of the clip; the context is everything else. Masking whole tubes keeps the model from
  copying a target from the same place one frame earlier.

Token indices are row-major over the token grid (t, h, w). A block's scale is its share of the
grid's spatial positions; its height and width are whole tokens, drawn among the sizes whose
scale and aspect ratio lie inside the asked ranges (the nearest size when a grid is too coarse
for any).
"""

from __future__ import annotations

from functools import cache

import numpy as np


@cache
def block_sizes(grid_h: int, grid_w: int, scale: tuple[float, float],
                aspect: tuple[float, float]) -> tuple[tuple[int, int], ...]:
    """Every (h, w) in tokens with h·w/(H·W) in `scale` and h/w in `aspect`; when none, the
    sizes nearest to both ranges."""
    area = grid_h * grid_w
    sizes = [(h, w) for h in range(1, grid_h + 1) for w in range(1, grid_w + 1)]

    def miss(hw):
        s, a = hw[0] * hw[1] / area, hw[0] / hw[1]
        return (max(scale[0] - s, s - scale[1], 0.0)
                + max(np.log(aspect[0] / a), np.log(a / aspect[1]), 0.0))
    best = min(miss(hw) for hw in sizes)
    return tuple(hw for hw in sizes if miss(hw) <= best + 1e-12)


def sample_block(rng: np.random.Generator, grid_h: int, grid_w: int,
                 scale: tuple[float, float], aspect: tuple[float, float]) -> np.ndarray:
    """A (grid_h, grid_w) boolean mask of one block of random size and place."""
    sizes = block_sizes(grid_h, grid_w, tuple(scale), tuple(aspect))
    h, w = sizes[rng.integers(len(sizes))]
    top, left = rng.integers(grid_h - h + 1), rng.integers(grid_w - w + 1)
    mask = np.zeros((grid_h, grid_w), bool)
    mask[top:top + h, left:left + w] = True
    return mask


def multiblock_mask(rng: np.random.Generator, grid_h: int, grid_w: int, targets: int = 4,
                    target_scale=(0.15, 0.2), target_aspect=(0.75, 1.5),
                    context_scale=(0.85, 1.0), allow_overlap: bool = False,
                    min_context: int = 4, tries: int = 20) -> tuple[np.ndarray, list[np.ndarray]]:
    """I-JEPA masks of one image: (context indices, [indices of each target block])."""
    for _ in range(tries):
        blocks = [sample_block(rng, grid_h, grid_w, target_scale, target_aspect)
                  for _ in range(targets)]
        context = sample_block(rng, grid_h, grid_w, context_scale, (1.0, 1.0))
        if not allow_overlap:
            for b in blocks:
                context &= ~b
        if context.sum() >= min_context:
            break
    else:
        raise ValueError(f"no context of {min_context} tokens is left on a {grid_h}x{grid_w} "
                         f"grid after {targets} target blocks of scale {target_scale}")
    return np.flatnonzero(context), [np.flatnonzero(b) for b in blocks]


def tube_mask(rng: np.random.Generator, grid_t: int, grid_h: int, grid_w: int, blocks: int = 8,
              scale=(0.15, 0.15), aspect=(0.75, 1.5), min_context: int = 4,
              tries: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """V-JEPA masks of one clip: (context indices, target indices); the targets are the union of
    `blocks` spatial blocks through all `grid_t` time steps."""
    for _ in range(tries):
        spatial = np.zeros((grid_h, grid_w), bool)
        for _ in range(blocks):
            spatial |= sample_block(rng, grid_h, grid_w, scale, aspect)
        if (~spatial).sum() * grid_t >= min_context:
            break
    else:
        raise ValueError(f"{blocks} blocks of scale {scale} leave no context of {min_context} "
                         f"tokens on a {grid_h}x{grid_w} grid")
    tube = np.broadcast_to(spatial, (grid_t, grid_h, grid_w))
    return np.flatnonzero(~tube), np.flatnonzero(tube)


def batch_indices(rows: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Stack index sets of different sizes into (B, K), K the smallest size: each row keeps a
    random K of its indices, in order (a batch needs one token count; a subset of a mask keeps
    the mask's guarantees)."""
    k = min(len(r) for r in rows)
    return np.stack([np.sort(rng.choice(r, k, replace=False)) if len(r) > k else r
                     for r in rows])
