"""A small Vision Transformer: images or short clips to patch tokens, and to one embedding.

`ViT` cuts a clip (B, C, T, H, W) into tubelets of `tubelet` frames × `patch`² pixels, one token
each, adds fixed sine-cosine positions over (time, row, column) and runs pre-norm transformer
blocks. It can run on a subset of the tokens (`keep`), which is how a JEPA context encoder sees
only its context. An image is a clip of one frame, repeated to fill a tubelet (as V-JEPA 2 does).

`ViTEncoder` is the world model's perception with the same interface as `ConvEncoder`:
(B, C, S, S) → (B, embed_dim), the mean of the tokens through a projector.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ami.perception.encoder import projector


@functools.lru_cache(maxsize=16)   # the predictor asks for it every step; callers only index it
def sincos_positions(grid: tuple[int, int, int], dim: int) -> torch.Tensor:
    """Fixed positions (T·H·W, dim) for a (T, H, W) token grid, row-major (t, h, w).

    A third of the channels code each axis (sin and cos at geometric frequencies); fixed, so a
    model trained on clips of one length encodes clips of any other length."""
    t, h, w = grid
    coords = torch.stack(torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w),
                                        indexing="ij"), -1).reshape(-1, 3).float()  # (N, 3)
    per_axis = 2 * (dim // 6)
    freqs = torch.exp(-math.log(10000.0) * torch.arange(per_axis // 2) / max(1, per_axis // 2))
    angles = coords[:, :, None] * freqs                                           # (N, 3, F)
    pos = torch.cat([angles.sin(), angles.cos()], -1).reshape(len(coords), -1)     # (N, 3·2F)
    return F.pad(pos, (0, dim - pos.shape[1]))


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)                  # (B, heads, N, d/heads)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def init_weights(module: nn.Module) -> None:
    """Truncated-normal linear weights, zero biases, unit LayerNorms (as ViT and I-JEPA)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ViT(nn.Module):
    """(B, C, T, S, S) float clip in [0, 1] → tokens (B, N, width), N = T/tubelet · (S/patch)².

    `keep` (B, K) token indices, row-major over (t, h, w): only those tokens are encoded (they
    attend to each other alone) and returned, in that order."""

    def __init__(self, channels: int, image_size: int, patch: int = 8, width: int = 64,
                 depth: int = 4, heads: int = 4, tubelet: int = 1):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image size {image_size} is not a multiple of the patch {patch}")
        self.image_size, self.patch, self.width, self.tubelet = image_size, patch, width, tubelet
        self.patch_embed = nn.Conv3d(channels, width, kernel_size=(tubelet, patch, patch),
                                     stride=(tubelet, patch, patch))
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        init_weights(self)
        self._pos: dict[tuple, torch.Tensor] = {}

    def grid(self, frames: int) -> tuple[int, int, int]:
        """Token grid (T', H', W') of a clip of `frames` frames (a multiple of the tubelet)."""
        side = self.image_size // self.patch
        return (frames // self.tubelet, side, side)

    def positions(self, grid: tuple[int, int, int], device) -> torch.Tensor:
        key = (grid, str(device))
        if key not in self._pos:  # not a buffer: fixed, so it stays out of the checkpoint
            self._pos[key] = sincos_positions(grid, self.width).to(device)
        return self._pos[key]

    def fill_tubelet(self, x: torch.Tensor) -> torch.Tensor:
        """Repeat a clip's last frame until its length is a multiple of the tubelet."""
        short = -x.shape[2] % self.tubelet
        return torch.cat([x, x[:, :, -1:].expand(-1, -1, short, -1, -1)], 2) if short else x

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        return self.block_outputs(x, keep, last=1)[-1]

    def block_outputs(self, x: torch.Tensor, keep: torch.Tensor | None = None,
                      last: int = 1) -> list[torch.Tensor]:
        """The tokens (B, N, width) after each of the `last` final blocks, each through the
        final LayerNorm (as I-JEPA reads features from several blocks)."""
        x = self.fill_tubelet(x)
        grid = self.grid(x.shape[2])
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)          # (B, N, width)
        tokens = tokens + self.positions(grid, x.device)
        if keep is not None:
            tokens = torch.gather(tokens, 1, keep[..., None].expand(-1, -1, self.width))
        outs = []
        for i, block in enumerate(self.blocks):
            tokens = block(tokens)
            if i >= len(self.blocks) - last:
                outs.append(self.norm(tokens))
        return outs or [self.norm(tokens)]


class ViTEncoder(nn.Module):
    """(B, C, S, S) float image in [0, 1] → (B, embed_dim): the ViT's mean token, projected.

    `backbone` is a `ViT`, so `ami train --encoder-from` can load one pretrained by
    `ami pretrain`."""

    def __init__(self, channels: int, image_size: int, embed_dim: int, patch: int = 8,
                 width: int = 64, depth: int = 4, heads: int = 4, tubelet: int = 1,
                 hidden: int = 256):
        super().__init__()
        self.backbone = ViT(channels, image_size, patch, width, depth, heads, tubelet)
        self.projector = projector(width, hidden, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(x.unsqueeze(2)).mean(1))
