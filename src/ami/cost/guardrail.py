"""Guardrails: a forbidden set, learned as a classifier on embeddings, as a heavy cost term.

The user names the forbidden set in the world's own terms (here a box of positions); the
classifier learns it from labelled states in the data. At planning time only the classifier on
predicted embeddings is used: the planner never sees the true state.

The world model predicts one embedding per action block (frameskip steps), so a block can cross
a corner of the forbidden set between two predictions. A *segment* classifier therefore judges a
whole block: from the embedding where it ends and the actions it took, the probability that any
of its steps was forbidden (labelled from the true states of every step in the data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class Box:
    """An axis-aligned box of (x, y) positions: x0 ≤ x ≤ x1 and y0 ≤ y ≤ y1."""

    x0: float
    y0: float
    x1: float
    y1: float

    def inflated(self, margin: float) -> Box:
        return Box(self.x0 - margin, self.y0 - margin, self.x1 + margin, self.y1 + margin)

    def contains(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy)
        return ((xy[..., 0] >= self.x0) & (xy[..., 0] <= self.x1)
                & (xy[..., 1] >= self.y0) & (xy[..., 1] <= self.y1))


class GuardrailClassifier(nn.Module):
    """z (..., D) → logit of "this state is forbidden" (...); with block_dim > 0, a segment
    classifier: (z_end (..., D), action block (..., fs·A)) → logit of "a step of the block that
    ended at z_end was forbidden"."""

    def __init__(self, embed_dim: int, width: int = 128, block_dim: int = 0):
        super().__init__()
        self.block_dim = block_dim
        self.net = nn.Sequential(nn.Linear(embed_dim + block_dim, width), nn.GELU(),
                                 nn.Linear(width, width), nn.GELU(), nn.Linear(width, 1))

    def forward(self, z: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        if self.block_dim:
            if actions is None:
                raise ValueError("a segment guardrail needs the action blocks as well")
            z = torch.cat([z, actions], dim=-1)
        return self.net(z).squeeze(-1)


class Guardrail:
    """Cost term: the highest predicted probability of being in the forbidden set along the
    trajectory (one forbidden step is enough to count)."""

    name = "guardrail"

    def __init__(self, classifier: GuardrailClassifier, weight: float = 100.0):
        self.classifier, self.weight = classifier.eval(), weight

    def __call__(self, z_pred, actions):
        logits = self.classifier(z_pred.float(), actions.float())             # (S, T)
        return torch.sigmoid(logits).amax(dim=1)                              # (S,)


def train_guardrail(classifier: GuardrailClassifier, z: np.ndarray, forbidden: np.ndarray,
                    steps: int = 2000, batch_size: int = 256, lr: float = 1e-3, seed: int = 0,
                    actions: np.ndarray | None = None) -> list[float]:
    """Fit the classifier on embeddings z (N, D) (and, for segments, action blocks (N, fs·A))
    and labels (N,) bool, classes balanced."""
    if forbidden.all() or not forbidden.any():
        raise ValueError("guardrail labels need both forbidden and allowed states "
                         f"({int(forbidden.sum())} of {len(forbidden)} are forbidden)")
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(forbidden), np.flatnonzero(~forbidden)
    opt = torch.optim.AdamW(classifier.parameters(), lr=lr, weight_decay=1e-4)
    labels = torch.cat([torch.ones(batch_size // 2), torch.zeros(batch_size - batch_size // 2)])
    losses = []
    classifier.train()
    for _ in range(steps):
        idx = np.concatenate([rng.choice(pos, batch_size // 2),
                              rng.choice(neg, batch_size - batch_size // 2)])
        a = None if actions is None else torch.from_numpy(actions[idx])
        loss = F.binary_cross_entropy_with_logits(classifier(torch.from_numpy(z[idx]), a), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
