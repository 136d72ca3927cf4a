"""The training loop's batches: this rank's share of each step's global batch, on the device.

Every rank draws the same global batch of windows from the same numpy stream and keeps its own
equal slice, so N ranks together see what one process sees, step for step. The trainer's stream
advances exactly one global batch per step, and it is the one a checkpoint saves; a resumed run
therefore draws the same batches as one never interrupted, in memory or streaming, on any number
of ranks.

In memory, windows are cut from the loaded arrays in the training process. Streaming, DataLoader
worker processes read them from HDF5 ahead of the step: they draw from a copy of the stream that
runs ahead, and each batch they return is checked against the trainer's own draw.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ami.data.windows import WindowSampler
from ami.distributed import Ranks


class WindowBatches:
    """`next(batches)` → (frames (b, n, H, W, C) uint8, actions (b, n-1, fs·A) float32) on
    `device`, with b = batch_size / ranks.world; `rng` is advanced by one global batch."""

    def __init__(self, sampler: WindowSampler, batch_size: int, rng: np.random.Generator,
                 ranks: Ranks, device: torch.device, workers: int = 0, stream: bool = False):
        self.sampler, self.batch_size, self.rng = sampler, batch_size, rng
        self.share, self.device = ranks.share(batch_size), device
        self.pin = device.type == "cuda"  # page-locked host memory: the copy runs asynchronously
        self.loader: DataLoader | None = None
        self._ahead: Iterator | None = None
        if stream:
            ahead = _Draws(sampler, batch_size, copy.deepcopy(rng), self.share)
            # its own generator: seeding workers must not draw from torch's global stream,
            # which a checkpoint saves and a resumed run must find as an uninterrupted one would
            self.loader = DataLoader(_Windows(sampler), sampler=ahead, batch_size=None,
                                     num_workers=workers, pin_memory=self.pin,
                                     prefetch_factor=2 if workers > 0 else None,
                                     generator=torch.Generator().manual_seed(0))
            self._ahead = iter(self.loader)

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        t0 = self.sampler.draw(self.batch_size, self.rng)[self.share]
        if self._ahead is None:
            frames, actions = self.sampler.get(t0)
            frames, actions = torch.from_numpy(frames), torch.from_numpy(actions)
            if self.pin:
                frames, actions = frames.pin_memory(), actions.pin_memory()
        else:
            frames, actions, read = next(self._ahead)
            if not np.array_equal(read.numpy(), t0):
                raise RuntimeError("the streaming loader's windows are out of step with the "
                                   "trainer's random stream")
        return (frames.to(self.device, non_blocking=True),
                actions.to(self.device, non_blocking=True))

    def close(self) -> None:
        """Stop the loader's worker processes."""
        self._ahead = None  # its workers exit when the iterator is collected
        self.loader = None


class _Draws(torch.utils.data.Sampler):
    """Endless: this rank's share of each global batch, from its own copy of the stream."""

    def __init__(self, sampler: WindowSampler, batch_size: int, rng: np.random.Generator,
                 share: slice):
        self.sampler, self.batch_size, self.rng, self.share = sampler, batch_size, rng, share

    def __iter__(self):
        while True:
            yield self.sampler.draw(self.batch_size, self.rng)[self.share]


class _Windows(Dataset):
    """Index: an array of first frames; item: (frames, actions, first frames) of that batch."""

    def __init__(self, sampler: WindowSampler):
        self.sampler = sampler

    def __getitem__(self, t0: np.ndarray):
        frames, actions = self.sampler.get(t0)
        return torch.from_numpy(frames), torch.from_numpy(actions), torch.from_numpy(t0)
