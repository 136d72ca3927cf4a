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

    def _planning_weights(self):
        """((W_z, W_a, b), [(W, b) hidden], (W, b) last), each W transposed to (in, out) and
        contiguous: the layout the small GEMMs of a plan read fastest (~15 % of a rollout over
        multiplying by a transposed view). Cached until a parameter is replaced or changed in
        place (an optimiser step, load_state_dict)."""
        key = tuple((p.data_ptr(), p._version) for p in self.parameters())
        if getattr(self, "_planning_cache_key", None) != key:
            with torch.no_grad():
                linears = [m for m in self.net if isinstance(m, nn.Linear)]
                t = [(m.weight.t().contiguous(), m.bias.detach()) for m in linears]
                hd = self.history * self.embed_dim
                w_first, b_first = t[0]
                first = (w_first[:hd].contiguous(), w_first[hd:].contiguous(), b_first)
            self._planning_cache = (first, t[1:-1], t[-1])
            self._planning_cache_key = key
        return self._planning_cache

    def rollout(self, z_hist: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Autoregressive predictions (B, T, D) from z_hist (B, h, D) and actions (B, T, A').

        The same function as calling forward T times. With no gradient and no autocast (a plan)
        it takes `_planning_rollout`, arranged for speed; training, gradient planning and bf16
        take the functional form below.
        """
        if not (torch.is_grad_enabled() or torch.is_autocast_enabled(z_hist.device.type)):
            return self._planning_rollout(z_hist, actions)
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        hd = self.history * self.embed_dim
        first = linears[0]
        w_z, w_a = first.weight[:, :hd].t(), first.weight[:, hd:].t()       # (hD, W), (A', W)
        a_proj = torch.addmm(first.bias, actions.flatten(0, 1), w_a)        # (B·T, W)
        a_proj = a_proj.view(*actions.shape[:2], -1)
        preds = []
        for k in range(actions.shape[1]):
            h = self.net[1](torch.addmm(a_proj[:, k], z_hist.flatten(1), w_z))
            z_next = z_hist[:, -1] + self.net[2:](h)                        # (B, D)
            preds.append(z_next)
            z_hist = torch.cat([z_hist[:, 1:], z_next[:, None]], dim=1)
        return torch.stack(preds, dim=1)

    def _planning_rollout(self, z_hist: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """`rollout` for a plan (the planner calls it 30 times on 300 candidates): every
        multiply reads weights laid out (in, out); the first layer's action half is applied to
        all T blocks in one matmul; when every candidate starts from the same history (an
        expanded tensor) the first step's history half is one row, not B; activations run in
        place and predictions are written into one time-major buffer."""
        act = _ACT_INPLACE[self.activation]
        (w_z, w_a, b_first), hidden, (w_last, b_last) = self._planning_weights()
        b, t = actions.shape[:2]
        # (T·B, W) time-major, so each step's slice is contiguous
        a_steps = torch.addmm(b_first, actions.transpose(0, 1).reshape(t * b, -1), w_a)
        a_steps = a_steps.view(t, b, -1).unbind(0)                          # T × (B, W)
        preds = z_hist.new_empty(t, b, self.embed_dim)                      # (T, B, D)
        p_steps = preds.unbind(0)                                           # T × (B, D)
        shared = b > 1 and z_hist.shape[0] == b and z_hist.stride(0) == 0
        z_last = z_hist[:, -1]                                              # (B, D)
        for k in range(t):
            if k == 0 and shared:
                h = act(a_steps[0].add_(z_hist[:1].flatten(1) @ w_z))
            else:
                h = act(a_steps[k].addmm_(z_hist.flatten(1) if self.history > 1 else z_last,
                                          w_z))                              # (B, W)
            for w, bias in hidden:
                h = act(torch.addmm(bias, h, w))
            z_last = torch.addmm(z_last, h, w_last, out=p_steps[k]).add_(b_last)
            if self.history > 1:
                z_hist = torch.cat([z_hist[:, 1:], z_last[:, None]], dim=1)
        return preds.transpose(0, 1)
