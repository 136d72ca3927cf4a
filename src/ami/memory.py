"""Short-term memory: the agent's recent observations, latents, actions and cost terms.

It supplies the predictor's latent history, and keeps the agent's own experience (frames and
actions, episode by episode) for `ami finetune`. Everything in it is bounded: the oldest steps
are forgotten first.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch


class ShortTermMemory:
    """A bounded store of the last `capacity` steps, and of whole recent episodes."""

    def __init__(self, history: int, frameskip: int, capacity: int = 10_000,
                 keep_frames: bool = False):
        if capacity < (history - 1) * frameskip + 1:
            raise ValueError(f"capacity {capacity} cannot hold a history of {history} latents "
                             f"{frameskip} steps apart")
        self.history, self.frameskip, self.capacity = history, frameskip, capacity
        self.keep_frames = keep_frames
        self.latents: deque[torch.Tensor] = deque(maxlen=capacity)     # (D,) per step
        self.actions: deque[np.ndarray] = deque(maxlen=capacity)       # (A,) per step
        self.costs: deque[dict[str, float]] = deque(maxlen=capacity)   # per plan
        self.frames: deque[np.ndarray] = deque(maxlen=capacity if keep_frames else 0)
        self.episodes: deque[dict[str, np.ndarray]] = deque()          # finished, for finetune
        self._episode_frames: list[np.ndarray] = []
        self._episode_actions: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.latents)

    def start_episode(self) -> None:
        """Forget the current episode's latents (they are no history for the next one)."""
        self.latents.clear()
        self._episode_frames, self._episode_actions = [], []

    def observe(self, z: torch.Tensor, frame: np.ndarray | None = None) -> None:
        self.latents.append(z)
        if self.keep_frames and frame is not None:
            self.frames.append(frame)
            self._episode_frames.append(frame)

    def record_action(self, action: np.ndarray) -> None:
        self.actions.append(np.asarray(action, np.float32))
        if self.keep_frames:
            self._episode_actions.append(np.asarray(action, np.float32))

    def record_costs(self, terms: dict[str, float]) -> None:
        self.costs.append(dict(terms))

    def end_episode(self) -> None:
        """Keep the finished episode (frames and actions) while the step budget allows."""
        if self.keep_frames and self._episode_actions:
            n = len(self._episode_actions)
            self.episodes.append({"frames": np.stack(self._episode_frames[: n + 1]),
                                  "actions": np.stack(self._episode_actions)})
            while sum(len(e["actions"]) for e in self.episodes) > self.capacity:
                self.episodes.popleft()
        self._episode_frames, self._episode_actions = [], []

    def z_hist(self) -> torch.Tensor:
        """(1, h, D): latents `frameskip` steps apart, ending now; the oldest is repeated when
        the episode is younger than the history."""
        items = self.latents
        n = len(items)
        picked = [items[max(0, n - 1 - k * self.frameskip)] for k in reversed(range(self.history))]
        return torch.stack(picked)[None]
