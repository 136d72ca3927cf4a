"""A small convolutional encoder: one image to one embedding z, through a projector.

The projector (MLP with BatchNorm, as in LeWM) gives the anti-collapse regulariser a free space
to shape, so the convolutional features need not be Gaussian themselves.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class ConvEncoder(nn.Module):
    """(B, C, S, S) float image in [0, 1] → (B, embed_dim)."""

    def __init__(self, channels: int, image_size: int, width: int, embed_dim: int,
                 hidden: int = 256, projector_bias: bool = False):
        super().__init__()
        layers, c, s = [], channels, image_size
        widths = [width, 2 * width, 4 * width, 4 * width]
        for w in widths:  # each stride-2 conv halves the side: 64 → 32 → 16 → 8 → 4
            if s < 8:
                break
            layers += [nn.Conv2d(c, w, kernel_size=4, stride=2, padding=1), nn.GELU()]
            c, s = w, s // 2
        self.backbone = nn.Sequential(*layers, nn.Flatten())
        self.projector = projector(c * s * s, hidden, embed_dim, projector_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(x))


def projector(in_dim: int, hidden: int, embed_dim: int, bias: bool = True) -> nn.Sequential:
    """Features → embedding z: Linear, BatchNorm, GELU, Linear (shared by every encoder).

    BatchNorm subtracts the first Linear's bias again, so `bias=False` loses nothing; a bias
    there only has a zero gradient, whose rounding AdamW's normalised step turns into ±lr moves
    that make runs on different process counts drift apart.
    """
    return nn.Sequential(
        nn.Linear(in_dim, hidden, bias=bias),
        nn.BatchNorm1d(hidden),
        nn.GELU(),
        nn.Linear(hidden, embed_dim),
    )
