"""Training windows: `history + future` frames `frameskip` steps apart, and the action blocks
between them."""

from __future__ import annotations

import numpy as np

from ami.data.dataset import EpisodeDataset
from ami.errors import AmiError


class WindowSampler:
    """Samples windows uniformly over every valid start in every episode.

    A window of n = history + future frames starting at frame t holds frames
    t, t+fs, ..., t+(n-1)·fs and, between frame k and k+1, the block of fs actions taken there.
    """

    def __init__(self, data: EpisodeDataset, history: int, future: int, frameskip: int,
                 episodes: np.ndarray | None = None):
        if min(history, future, frameskip) < 1:
            raise AmiError(f"history, future and frameskip must be >= 1, got {history}, "
                           f"{future} and {frameskip}")
        self.data, self.fs = data, frameskip
        self.n = history + future
        span = (self.n - 1) * frameskip  # frames covered after the first
        eps = np.arange(data.num_episodes) if episodes is None else np.asarray(episodes, int)
        if len(eps) and (eps.min() < 0 or eps.max() >= data.num_episodes):
            raise AmiError(f"{data.path}: episode indices must be in [0, {data.num_episodes}), "
                           f"got {eps.min()}..{eps.max()}")
        starts = [data.starts[e] + np.arange(data.lengths[e] - span) for e in eps
                  if data.lengths[e] > span]
        if not starts:
            raise AmiError(
                f"{data.path}: no episode has the {span + 1} frames a training window needs "
                f"(history {history} + future {future} frames, {frameskip} steps apart); "
                f"longest episode has {int(data.lengths.max())} frames"
            )
        self.starts = np.concatenate(starts)  # (W,) flat index of each valid window's first frame
        self._frame_offsets = np.arange(self.n) * frameskip                  # (n,)
        self._action_offsets = np.arange((self.n - 1) * frameskip)           # (n-1)·fs

    def __len__(self) -> int:
        return len(self.starts)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """frames (B, n, H, W, C) uint8 and action blocks (B, n-1, fs·A) float32."""
        t0 = self.starts[rng.integers(len(self.starts), size=batch_size)]
        return self.get(t0)

    def get(self, t0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frames = self.data.frames[t0[:, None] + self._frame_offsets]            # (B, n, H, W, C)
        actions = self.data.actions[t0[:, None] + self._action_offsets]          # (B, (n-1)fs, A)
        b = len(t0)
        return frames, actions.reshape(b, self.n - 1, self.fs * self.data.action_dim)
