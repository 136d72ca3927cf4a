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

    `data` is an `EpisodeDataset` (in memory) or an `EpisodeStream` (read on demand): the sampler
    keeps two numbers per episode, not one per window, so its memory does not grow with the
    frames either.
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
        eps = eps[np.asarray(data.lengths)[eps] > span] if len(eps) else eps
        if not len(eps):
            raise AmiError(
                f"{data.path}: no episode has the {span + 1} frames a training window needs "
                f"(history {history} + future {future} frames, {frameskip} steps apart); "
                f"longest episode has {int(np.max(data.lengths))} frames"
            )
        counts = np.asarray(data.lengths)[eps] - span                        # (E',) windows
        self._first = np.asarray(data.starts)[eps].astype(np.int64)          # (E',) flat index
        self._before = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)  # (E'+1,)
        self._frame_offsets = np.arange(self.n) * frameskip                  # (n,)
        self._action_offsets = np.arange((self.n - 1) * frameskip)           # (n-1)·fs

    def __len__(self) -> int:
        return int(self._before[-1])

    @property
    def starts(self) -> np.ndarray:
        """(W,) flat index of every valid window's first frame, in episode order (built on
        demand: W grows with the data)."""
        return self.start_of(np.arange(len(self)))

    def start_of(self, k: np.ndarray) -> np.ndarray:
        """Flat first-frame index of windows number k (0 ≤ k < len(self), episode order)."""
        e = np.searchsorted(self._before, k, side="right") - 1
        return self._first[e] + (k - self._before[e])

    def draw(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """(B,) first-frame indices of windows drawn uniformly with replacement."""
        return self.start_of(rng.integers(len(self), size=batch_size))

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """frames (B, n, H, W, C) uint8 and action blocks (B, n-1, fs·A) float32."""
        return self.get(self.draw(batch_size, rng))

    def get(self, t0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t0 = np.asarray(t0)
        frames, actions = self.data.take(t0[:, None] + self._frame_offsets,    # (B, n, H, W, C)
                                         t0[:, None] + self._action_offsets)   # (B, (n-1)fs, A)
        b = len(t0)
        return frames, actions.reshape(b, self.n - 1, self.fs * self.data.action_dim)
