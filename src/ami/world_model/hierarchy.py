"""H-JEPA's second level: a slower world model over temporally abstract steps.

One high-level step is a macro-step of `blocks` action blocks (blocks · frameskip environment
steps). Its "macro-action" m is a learned encoding of the action chunk taken during it; the
high-level predictor maps (z_t, m) to z_{t+K}, K = blocks · frameskip, in the frozen low level's
embedding space:

    m_t       = MacroEncoder(a_t .. a_{t+K-1})            (B, M)
    ẑ_{t+K}   = z_t + MLP([z_t, m_t])                      (B, D)

It is trained with the JEPA objective — MSE between predicted and encoded embeddings, teacher-
forced and along its own rollout over a window of macro-steps — plus SIGReg on the macro-actions:
the anti-collapse regulariser keeps the code of action chunks an isotropic Gaussian, so that a
planner can sample plausible macro-actions from N(0, I) without a decoder back to actions.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ami.world_model.sigreg import sigreg


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class HighLevelModel(nn.Module):
    """encode_macro(chunk) → m;  predict(z, m) → ẑ after one macro-step;  rollout(z, m_seq)."""

    def __init__(self, embed_dim: int, action_dim: int, frameskip: int, blocks: int = 4,
                 macro_dim: int = 8, width: int = 256, depth: int = 3,
                 action_scale: float = 1.0):
        super().__init__()
        if blocks < 1 or macro_dim < 1 or depth < 2:
            raise ValueError(f"blocks, macro_dim must be >= 1 and depth >= 2, got {blocks}, "
                             f"{macro_dim}, {depth}")
        self.embed_dim, self.action_dim, self.frameskip = embed_dim, action_dim, frameskip
        self.blocks, self.macro_dim, self.action_scale = blocks, macro_dim, action_scale
        self.macro_encoder = _mlp([self.steps * action_dim] + [width] * (depth - 1) +
                                  [macro_dim])
        self.predictor = _mlp([embed_dim + macro_dim] + [width] * (depth - 1) + [embed_dim])

    @property
    def steps(self) -> int:
        """Environment steps per macro-step, K."""
        return self.blocks * self.frameskip

    def encode_macro(self, chunk: torch.Tensor) -> torch.Tensor:
        """Action chunks (..., K, A) or (..., K·A) in world units → macro-actions (..., M)."""
        lead = chunk.shape[:-2] if chunk.shape[-1] == self.action_dim and \
            chunk.shape[-2] == self.steps else chunk.shape[:-1]
        x = chunk.reshape(*lead, self.steps * self.action_dim) / self.action_scale
        return self.macro_encoder(x)

    def predict(self, z: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """z (B, D), m (B, M) → ẑ one macro-step later (B, D)."""
        return z + self.predictor(torch.cat([z, m], dim=-1))

    def rollout(self, z: torch.Tensor, macros: torch.Tensor) -> torch.Tensor:
        """z (B, D), macro-actions (B, T, M) → predicted embeddings (B, T, D)."""
        preds = []
        for k in range(macros.shape[1]):
            z = self.predict(z, macros[:, k])
            preds.append(z)
        return torch.stack(preds, dim=1)


def high_level_loss(model: HighLevelModel, z: torch.Tensor, chunks: torch.Tensor,
                    sigreg_weight: float = 0.1, projections: int = 64,
                    generator: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """JEPA loss of the high level on windows of L macro-steps.

    z (B, L+1, D): frozen embeddings K steps apart; chunks (B, L, K·A): the actions between.
    pred: teacher-forced one-step prediction; rollout: the model's own L-step rollout from z_0;
    sigreg: SIGReg of the macro-actions (a code of a few dimensions needs few directions).
    """
    b, length = chunks.shape[:2]
    m = model.encode_macro(chunks)                                        # (B, L, M)
    one_step = model.predict(z[:, :-1].reshape(b * length, -1), m.reshape(b * length, -1))
    pred = F.mse_loss(one_step, z[:, 1:].reshape(b * length, -1))
    roll = F.mse_loss(model.rollout(z[:, 0], m), z[:, 1:])
    reg = sigreg(m.reshape(b * length, -1), projections, generator)
    total = pred + roll + sigreg_weight * reg
    return total, {"pred": pred.detach(), "rollout": roll.detach(), "sigreg": reg.detach()}


def macro_windows(starts: np.ndarray, lengths: np.ndarray, steps: int, length: int, n: int,
                  rng: np.random.Generator) -> np.ndarray:
    """n window starts (flat frame indices) with room for `length` macro-steps of `steps`
    environment steps inside their episode; uniform over the valid starts."""
    span = length * steps
    valid = np.maximum(lengths - span, 0)                # starts per episode: 0..len-1-span
    if valid.sum() == 0:
        raise ValueError(f"no episode is longer than a window of {length} macro-steps of "
                         f"{steps} steps ({span + 1} frames)")
    episode = rng.choice(len(starts), size=n, p=valid / valid.sum())
    return starts[episode] + (rng.random(n) * valid[episode]).astype(int)


def window_batch(z: np.ndarray, actions: np.ndarray, first: np.ndarray, steps: int,
                 length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings (B, L+1, D) and action chunks (B, L, K·A) of windows starting at `first`.

    z and actions are flat over episodes as in EpisodeDataset (action i leads frame i to i+1).
    """
    frames = first[:, None] + steps * np.arange(length + 1)               # (B, L+1)
    acts = first[:, None] + np.arange(length * steps)                     # (B, L·K)
    chunks = actions[acts].reshape(len(first), length, -1)
    return torch.from_numpy(z[frames]), torch.from_numpy(chunks)


def train_high_level(model: HighLevelModel, z: np.ndarray, actions: np.ndarray,
                     starts: np.ndarray, lengths: np.ndarray, window: int = 3,
                     steps: int = 3000, batch_size: int = 256, lr: float = 1e-3,
                     sigreg_weight: float = 0.1, seed: int = 0, progress=None
                     ) -> list[dict[str, float]]:
    """Train on windows of `window` macro-steps of the frozen embeddings z (N, D); returns the
    loss terms per step. `progress(terms)` is called after each step."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=0.05 * lr)
    history = []
    model.train()
    for _ in range(steps):
        first = macro_windows(starts, lengths, model.steps, window, batch_size, rng)
        zw, chunks = window_batch(z, actions, first, model.steps, window)
        loss, terms = high_level_loss(model, zw, chunks, sigreg_weight, generator=generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        history.append({"loss": loss.item(), **{k: v.item() for k, v in terms.items()}})
        if progress is not None:
            progress(history[-1])
    model.eval()
    return history


class PositionProbe(nn.Module):
    """z (…, D) → position (…, 2): an MLP on standardised embeddings, trained on the run's data.

    Only for pictures and checks: a JEPA has no pixel decoder, so subgoal embeddings are shown
    where this probe places them.
    """

    def __init__(self, embed_dim: int, out_dim: int = 2, width: int = 256):
        super().__init__()
        self.register_buffer("z_mean", torch.zeros(embed_dim))
        self.register_buffer("z_std", torch.ones(embed_dim))
        self.register_buffer("y_mean", torch.zeros(out_dim))
        self.register_buffer("y_std", torch.ones(out_dim))
        self.net = _mlp([embed_dim, width, width, out_dim])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net((z - self.z_mean) / self.z_std) * self.y_std + self.y_mean

    def fit(self, z: np.ndarray, y: np.ndarray, steps: int = 2000, batch_size: int = 256,
            lr: float = 1e-3, seed: int = 0) -> float:
        """Fit to (z, y); returns the mean absolute error on the fitted data (y's units)."""
        zt, yt = torch.as_tensor(z, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
        self.z_mean.copy_(zt.mean(0))
        self.z_std.copy_(zt.std(0).clamp_min(1e-6))
        self.y_mean.copy_(yt.mean(0))
        self.y_std.copy_(yt.std(0).clamp_min(1e-6))
        target = (yt - self.y_mean) / self.y_std
        g = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        self.train()
        for _ in range(steps):
            i = torch.randint(len(zt), (min(batch_size, len(zt)),), generator=g)
            loss = F.mse_loss(self.net((zt[i] - self.z_mean) / self.z_std), target[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        self.eval()
        with torch.no_grad():
            return float((self(zt) - yt).abs().mean())


class LandmarkGraph(nn.Module):
    """The high level's map: landmark embeddings (k-means centres of the run's embeddings) and
    which landmark the high-level predictor takes which other to in one macro-step.

    An edge i → j means: from a frame near landmark i, the predictor, given the macro-action of
    the action chunk actually taken there, predicts an embedding nearest to landmark j, and the
    frame the data shows one macro-step later is nearest to j too (at least `min_count` times).
    The predictor is only asked about macro-actions the data took from that place, and kept
    only where it agrees with what followed: a planner that searched macro-actions freely would
    find the ones it gets wrong — through walls. A path of edges is a sequence of subgoals each
    reachable from the last. The edges hold for the layout of the data: a world whose walls
    move between episodes (`--random-layout`) needs another map.
    """

    def __init__(self, count: int, embed_dim: int):
        super().__init__()
        self.register_buffer("landmarks", torch.zeros(count, embed_dim))
        self.register_buffer("edges", torch.zeros(count, count))      # 1: reachable in one step

    @torch.no_grad()
    def build(self, high: HighLevelModel, z: np.ndarray, actions: np.ndarray,
              starts: np.ndarray, lengths: np.ndarray, samples: int = 20000,
              min_count: int = 2, iterations: int = 20, seed: int = 0) -> LandmarkGraph:
        """k-means landmarks of z, then edges from the predictor on `samples` macro-steps."""
        rng = np.random.default_rng(seed)
        zt = torch.as_tensor(z, dtype=torch.float32)
        count = len(self.landmarks)
        centres = zt[torch.as_tensor(rng.choice(len(zt), count, replace=False))].clone()
        for _ in range(iterations):
            nearest = torch.cdist(zt, centres).argmin(1)
            for k in range(count):
                members = zt[nearest == k]
                if len(members):
                    centres[k] = members.mean(0)
        self.landmarks.copy_(centres)
        first = macro_windows(starts, lengths, high.steps, 1, samples, rng)
        zw, chunks = window_batch(z, actions, first, high.steps, 1)
        predicted = high.predict(zw[:, 0], high.encode_macro(chunks[:, 0]))
        src, dst, seen = self.nearest(zw[:, 0]), self.nearest(predicted), self.nearest(zw[:, 1])
        agree = dst == seen     # the predictor and the data end at the same landmark
        self.agreement = float(agree.float().mean())
        counts = torch.zeros(count, count)
        counts.index_put_((src[agree], dst[agree]), torch.ones(int(agree.sum())),
                          accumulate=True)
        self.edges.copy_((counts >= min_count).float())
        self.edges.fill_diagonal_(0.0)
        return self

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest landmark of each embedding (B, D) → (B,)."""
        return torch.cdist(z.float().reshape(-1, self.landmarks.shape[1]), self.landmarks
                           ).argmin(1)

    def path(self, source: int, targets) -> list[int]:
        """The fewest macro-steps from landmark `source` to the nearest of `targets` (one index
        or several), both ends included (breadth-first); [source] alone when none of them can
        be reached."""
        targets = {int(targets)} if np.ndim(targets) == 0 else {int(t) for t in targets}
        edges = self.edges.cpu().numpy() > 0
        previous = {source: source}
        frontier, reached = [source], source if source in targets else None
        while frontier and reached is None:
            nxt = []
            for i in frontier:
                for j in np.flatnonzero(edges[i]):
                    j = int(j)
                    if j not in previous:
                        previous[j] = i
                        nxt.append(j)
                        if j in targets and reached is None:
                            reached = j
            frontier = nxt
        if reached is None:
            return [source]
        path = [reached]
        while path[-1] != source:
            path.append(previous[path[-1]])
        return path[::-1]
