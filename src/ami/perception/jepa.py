"""Masked latent prediction (I-JEPA on images, V-JEPA on clips): learn perception without labels
and without predicting pixels.

The context encoder sees the context tokens only; a narrow predictor takes its output plus a
learned mask token at each target position and predicts what the target encoder says of those
tokens, which it computes from the whole input. The loss is L1 or smooth-L1 in embedding space.

Two ways to keep the target from collapsing to a constant (`collapse`):
- `ema`: the target encoder is an exponential moving average of the context encoder, with a
  momentum that rises to 1 over training, and its output is layer-normed and not back-propagated
  (I-JEPA, V-JEPA).
- `sigreg`: the target encoder is the context encoder itself, gradients flow through both
  branches, and SIGReg pushes the mean target token of each frame (each tubelet step) towards
  an isotropic Gaussian over the batch (LeJEPA): no EMA, no stop-gradient.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from ami.perception.vit import Block, ViT, init_weights, sincos_positions
from ami.world_model.sigreg import sigreg


class MaskedPredictor(nn.Module):
    """(context tokens (B, Nc, width), their indices, target indices (B, Nt)) → (B, Nt, width)."""

    def __init__(self, width: int, pred_width: int = 32, depth: int = 2, heads: int = 2):
        super().__init__()
        self.pred_width = pred_width
        self.embed = nn.Linear(width, pred_width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, pred_width))
        self.blocks = nn.ModuleList(Block(pred_width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(pred_width)
        self.out = nn.Linear(pred_width, width)
        init_weights(self)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, context: torch.Tensor, context_idx: torch.Tensor,
                target_idx: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        pos = sincos_positions(grid, self.pred_width).to(context.device)        # (N, P)
        b, nt = target_idx.shape
        x = self.embed(context) + pos[context_idx]                                # (B, Nc, P)
        m = self.mask_token.expand(b, nt, -1) + pos[target_idx]                  # (B, Nt, P)
        x = torch.cat([x, m], 1)
        for block in self.blocks:
            x = block(x)
        return self.out(self.norm(x[:, -nt:]))


def gather_tokens(tokens: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """tokens (B, N, D), idx (B, K) → (B, K, D)."""
    return torch.gather(tokens, 1, idx[..., None].expand(-1, -1, tokens.shape[-1]))


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target ← momentum · target + (1 − momentum) · online, parameter by parameter."""
    t = [p for p in target.parameters()]
    o = [p.detach() for p in online.parameters()]
    torch._foreach_mul_(t, momentum)
    torch._foreach_add_(t, o, alpha=1.0 - momentum)


def momentum_at(step: int, steps: int, start: float, end: float) -> float:
    """EMA momentum, linear from `start` at step 0 to `end` at the last step."""
    return start + (end - start) * min(1.0, step / max(1, steps - 1))


class JEPA(nn.Module):
    """Context encoder, target encoder and predictor of masked latent prediction."""

    def __init__(self, encoder: ViT, predictor: MaskedPredictor, collapse: str = "ema",
                 loss: str = "l1", sigreg_weight: float = 0.1, sigreg_projections: int = 256):
        super().__init__()
        if collapse not in ("ema", "sigreg"):
            raise ValueError(f"collapse must be ema or sigreg, got {collapse!r}")
        if loss not in ("l1", "smooth_l1"):
            raise ValueError(f"loss must be l1 or smooth_l1, got {loss!r}")
        self.encoder, self.predictor = encoder, predictor
        self.collapse, self.loss_kind = collapse, loss
        self.sigreg_weight, self.sigreg_projections = sigreg_weight, sigreg_projections
        self.target_encoder = None
        if collapse == "ema":
            self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)

    @property
    def feature_encoder(self) -> ViT:
        """The encoder whose features are kept: the EMA target's (as I-JEPA evaluates), or the
        one encoder of the SIGReg variant."""
        return self.target_encoder if self.target_encoder is not None else self.encoder

    def forward(self, x: torch.Tensor, context_sets: list[torch.Tensor],
                target_sets: list[torch.Tensor], generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
        """x (B, C, T, S, S) clips in [0, 1]; each (context (B, Nc), target (B, Nt)) pair of index
        sets is one masking of the batch; the loss averages over them."""
        grid = self.encoder.grid(self.encoder.fill_tubelet(x).shape[2])
        if self.target_encoder is not None:
            with torch.no_grad():
                h = self.target_encoder(x)                                   # (B, N, W)
                h = F.layer_norm(h, h.shape[-1:])
        else:
            h = self.encoder(x)
        terms = {"pred": x.new_zeros(())}
        for ctx_idx, tgt_idx in zip(context_sets, target_sets, strict=True):
            z = self.encoder(x, keep=ctx_idx)                                # (B, Nc, W)
            pred = self.predictor(z, ctx_idx, tgt_idx, grid)                 # (B, Nt, W)
            target = gather_tokens(h, tgt_idx)
            if self.loss_kind == "l1":
                err = F.l1_loss(pred, target)
            else:
                err = F.smooth_l1_loss(pred, target)
            terms["pred"] = terms["pred"] + err / len(context_sets)
        loss = terms["pred"]
        if self.target_encoder is None:
            # on the mean token of each time step, as LeJEPA on global embeddings: a token
            # could vary with its position alone, a frame's mean only with what the frame shows
            t = grid[0]
            frame_means = h.reshape(h.shape[0], t, -1, h.shape[-1]).mean(2)     # (B, T', W)
            terms["sigreg"] = sigreg(frame_means.reshape(-1, h.shape[-1]),
                                     self.sigreg_projections, generator)
            loss = loss + self.sigreg_weight * terms["sigreg"]
        terms["loss"] = loss
        return terms

    def update_target(self, momentum: float) -> None:
        if self.target_encoder is not None:
            ema_update(self.target_encoder, self.encoder, momentum)
