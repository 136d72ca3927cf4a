"""The action-conditioned predictor: (z history, action block) → next embedding."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}
# the same functions, in place where PyTorch offers it (the planning rollout reuses its buffers)
_ACT_INPLACE = {"gelu": lambda h: F.gelu(h), "relu": torch.relu_, "silu": lambda h: F.silu(h, True)}


class MLPPredictor(nn.Module):
    """ẑ_{t+1} = z_t + MLP([z_{t-h+1..t}, a_t]); the residual form makes "stay" easy to learn."""

    def __init__(self, embed_dim: int, history: int, action_dim: int, width: int, depth: int,
                 activation: str = "gelu"):
        super().__init__()
        if depth < 2:
            raise ValueError(f"predictor depth must be >= 2, got {depth}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"predictor activation must be one of {sorted(ACTIVATIONS)}, "
                             f"got {activation!r}")
        self.embed_dim, self.history, self.activation = embed_dim, history, activation
        dims = [history * embed_dim + action_dim] + [width] * (depth - 1)
        layers: list[nn.Module] = []
        for i, o in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(i, o), ACTIVATIONS[activation]()]
        self.net = nn.Sequential(*layers, nn.Linear(width, embed_dim))

    def forward(self, z_hist: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        # z_hist (B, h, D), action (B, A') → (B, D)
        x = torch.cat([z_hist.flatten(1), action], dim=-1)
        return z_hist[:, -1] + self.net(x)

    def rollout(self, z_hist: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Autoregressive predictions (B, T, D) from z_hist (B, h, D) and actions (B, T, A').

        The same function as calling forward T times, arranged for planning speed (the planner
        calls it 30 times per plan on 300 candidates): the first layer's action half is applied
        to all T blocks in one matmul; when every candidate starts from the same history (a
        plan), the first step's history half is one row, not B; predictions are written in place
        into one time-major buffer; no concatenation in the loop.
        """
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        first, hidden, last = linears[0], linears[1:-1], linears[-1]
        # in place only when no gradient flows (planning) and no autocast changes dtypes under
        # the buffers; training, gradient planning and bf16 take the functional form
        inplace = not (torch.is_grad_enabled() or torch.is_autocast_enabled(z_hist.device.type))
        act = _ACT_INPLACE[self.activation] if inplace else self.net[1]
        hd = self.history * self.embed_dim
        w_z, w_a = first.weight[:, :hd].t(), first.weight[:, hd:].t()    # (hD, W), (A', W)
        b, t = actions.shape[:2]
        # (T·B, W) time-major, so each step's slice is contiguous
        a_proj = torch.addmm(first.bias, actions.transpose(0, 1).reshape(t * b, -1), w_a)
        a_proj = a_proj.view(t, b, -1)
        # every candidate starts from one history (an expanded tensor): one row, broadcast
        shared = b > 1 and z_hist.shape[0] == b and z_hist.stride(0) == 0
        preds = z_hist.new_empty(t, b, self.embed_dim) if inplace else []   # (T, B, D)
        for k in range(t):
            z_flat = z_hist.flatten(1)
            if k == 0 and shared:
                zw = z_flat[:1] @ w_z                                      # (1, W)
                h = a_proj[0].add_(zw) if inplace else a_proj[0] + zw
            else:
                h = a_proj[k].addmm_(z_flat, w_z) if inplace else \
                    torch.addmm(a_proj[k], z_flat, w_z)                    # (B, W)
            h = act(h)
            for layer in hidden:
                h = act(torch.addmm(layer.bias, h, layer.weight.t()))
            if inplace:
                z_next = torch.addmm(z_hist[:, -1], h, last.weight.t(), out=preds[k])
                z_next.add_(last.bias)                                     # (B, D)
            else:
                z_next = z_hist[:, -1] + torch.addmm(last.bias, h, last.weight.t())
                preds.append(z_next)
            z_hist = z_next[:, None] if self.history == 1 else \
                torch.cat([z_hist[:, 1:], z_next[:, None]], dim=1)
        return preds.transpose(0, 1) if inplace else torch.stack(preds, dim=1)
