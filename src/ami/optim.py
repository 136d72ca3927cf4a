"""The small heads' optimisation loop (Mode-1 policy, critic): AdamW with cosine decay."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn


def fit(module: nn.Module, batch_loss: Callable[[], torch.Tensor], steps: int, lr: float,
        progress: Callable[[float], None] | None = None) -> list[float]:
    """Minimise `batch_loss()` (a fresh batch each call) for `steps` steps: AdamW (weight decay
    1e-4), learning rate decayed from `lr` to 0 on a cosine; returns the loss of every step."""
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    module.train()
    for _ in range(steps):
        loss = batch_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress is not None:
            progress(losses[-1])
    return losses
