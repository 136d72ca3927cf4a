"""A generative world model: the JEPA model's encoder and predictor, plus a decoder back to pixels.

It is trained to reconstruct each frame and to predict the next frame's pixels from the
predicted embedding — the pixel-space objective that JEPA avoids — on the same windows as the
JEPA model:

    loss = MSE(decode(z_t), x_t) + MSE(decode(ẑ_{t+1}), x_{t+1}),   ẑ_{t+1} = predict(z_t, a_t)

It keeps the `WorldModel` interface (encode, predict, rollout), so the same planners run on it:
in its own latent, or by the pixel distance of decoded predictions to the goal image
(`ami eval --cost.goal-space pixels`, see `ami.cost.pixels`). Nothing regularises its latent
(no SIGReg, no smoothness term): the decoder's loss alone keeps it from collapsing.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ami.config import ModelConfig
from ami.world_model.model import WorldModel


class ConvDecoder(nn.Module):
    """(B, embed_dim) → (B, C, S, S) image in [0, 1]; the mirror image of `ConvEncoder`."""

    def __init__(self, channels: int, image_size: int, width: int, embed_dim: int,
                 hidden: int = 256):
        super().__init__()
        widths, s = [], image_size
        for w in [width, 2 * width, 4 * width, 4 * width]:  # the encoder's convolutions
            if s < 8:
                break
            widths.append(w)
            s //= 2
        self.start = (widths[-1], s, s)
        self.stem = nn.Sequential(nn.Linear(embed_dim, hidden), nn.GELU(),
                                  nn.Linear(hidden, widths[-1] * s * s), nn.GELU())
        layers: list[nn.Module] = []
        outs = [*reversed(widths[:-1]), channels]
        for i, (c_in, c_out) in enumerate(zip(reversed(widths), outs, strict=True)):
            # each stride-2 transposed conv doubles the side: 4 → 8 → 16 → 32 → 64
            layers.append(nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1))
            if i < len(outs) - 1:
                layers.append(nn.GELU())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.stem(z).view(-1, *self.start)                       # (B, c, s, s)
        return torch.sigmoid(self.net(x))                            # (B, C, S, S)


class GenerativeWorldModel(WorldModel):
    """`WorldModel` + `decode(z)`: the same encoder and predictor classes, a decoder added."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.decoder = ConvDecoder(cfg.channels, cfg.image_size, cfg.encoder_width,
                                   cfg.embed_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (..., D) → images (..., C, H, W) in [0, 1]."""
        lead = z.shape[:-1]
        x = self.decoder(z.reshape(-1, self.cfg.embed_dim))
        return x.reshape(*lead, *x.shape[1:])


def pixels(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames (..., H, W, C) → float images (..., C, H, W) in [0, 1]."""
    return frames.movedim(-1, -3).float().div(255.0)


def generative_loss(model: GenerativeWorldModel, frames: torch.Tensor, actions: torch.Tensor
                    ) -> dict[str, torch.Tensor]:
    """Loss terms of one batch of windows: frames (B, n, H, W, C) uint8, actions (B, n-1, fs·A);
    the same windows and teacher-forced predictions as the JEPA loss, scored in pixels."""
    z = model.encode(frames)                                   # (B, n, D)
    x = pixels(frames.to(z.device))                            # (B, n, C, H, W)
    recon = F.mse_loss(model.decode(z), x)
    pred = F.mse_loss(model.decode(model.teacher_forced(z, actions)), x[:, model.cfg.history:])
    return {"pred": pred, "recon": recon, "loss": pred + recon}


class GenerativeObjective(nn.Module):
    """`generative_loss` as a module, called as the trainer calls the JEPA objective."""

    def __init__(self, model: GenerativeWorldModel):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor, actions: torch.Tensor,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return generative_loss(self.model, frames, actions)
