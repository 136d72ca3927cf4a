"""Episodes read from HDF5 on demand, for data sets larger than memory.

`EpisodeStream` has the same flat indexing as `EpisodeDataset` (episodes back to back, row t of
the actions follows frame t), but holds only each episode's name, first flat index and length:
its memory grows by a few dozen bytes per episode, never with the frames. Opening it checks
every episode as `EpisodeDataset.load` does, reading actions and states but never pixels.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ami.data.dataset import _check_format, _open_for_reading, complete_episodes
from ami.errors import AmiError


class EpisodeStream:
    """The complete episodes of an HDF5 file, read from disk when a window asks for them."""

    def __init__(self, path: Path, world: str, image_shape: tuple[int, int, int],
                 action_dim: int, names: list[str], lengths: np.ndarray):
        self.path, self.world = Path(path), world
        self.image_shape, self.action_dim = image_shape, action_dim
        self.names = names                                    # (E,) HDF5 group names
        self.lengths = np.asarray(lengths, np.int64)          # (E,) frames per episode
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self._file: h5py.File | None = None
        self._pid = -1

    @classmethod
    def open(cls, path: str | Path) -> EpisodeStream:
        path = Path(path)
        _check_format(path)
        names, lengths = [], []
        with _open_for_reading(path) as f:
            world = str(f.attrs.get("world", "unknown"))
            image_shape = tuple(int(v) for v in f.attrs["image_shape"])
            action_dim = int(f.attrs["action_dim"])
            for name, (n_frames, _, _) in complete_episodes(f, path):
                names.append(name)
                lengths.append(n_frames)
        if not names:
            raise AmiError(f"{path}: holds no complete episode (an empty data set; collect some "
                           f"with `ami collect --out {path}`)")
        return cls(path, world, image_shape, action_dim, names, np.asarray(lengths))

    @property
    def num_episodes(self) -> int:
        return len(self.lengths)

    @property
    def num_frames(self) -> int:
        return int(self.lengths.sum())

    def take(self, frame_index: np.ndarray, action_index: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
        """As `EpisodeDataset.take`; each row's indices must lie in one episode (a window)."""
        frame_index, action_index = np.asarray(frame_index), np.asarray(action_index)
        b = len(frame_index)
        frames = np.empty((b, frame_index.shape[1], *self.image_shape), np.uint8)
        actions = np.zeros((b, action_index.shape[1], self.action_dim), np.float32)
        for i in range(b):
            e = int(np.searchsorted(self.starts, frame_index[i].min(), side="right")) - 1
            g = self._episodes()[self.names[e]]
            first, n = int(self.starts[e]), int(self.lengths[e])
            local_f, local_a = frame_index[i] - first, action_index[i] - first
            if min(local_f.min(), local_a.min(initial=0)) < 0 or local_f.max() >= n \
                    or local_a.max(initial=0) >= n:
                raise IndexError(f"window at flat frame {int(frame_index[i].min())} crosses "
                                 f"the end of episode {self.names[e]}")
            # frame by frame: h5py's fast path for one index is ~100x its fancy indexing
            ds = g["frames"]
            for k, t in enumerate(local_f):
                frames[i, k] = ds[int(t)]
            if local_a.size:
                # the last frame of an episode has no action after it: that row stays zero, as
                # in EpisodeDataset's padded array
                lo, hi = int(local_a.min()), min(int(local_a.max()) + 1, n - 1)
                if hi > lo:
                    block = g["actions"][lo:hi]
                    inside = local_a < hi
                    actions[i, inside] = block[local_a[inside] - lo]
        return frames, actions

    def episode(self, i: int) -> dict[str, np.ndarray]:
        g = self._episodes()[self.names[i]]
        out = {"frames": g["frames"][()], "actions": g["actions"][()].astype(np.float32)}
        if "states" in g:
            out["states"] = g["states"][()].astype(np.float32)
        return out

    def _episodes(self) -> h5py.Group:
        # one handle per process: a handle opened before a DataLoader forks its workers must
        # not be used by them
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = _open_for_reading(self.path), os.getpid()
        return self._file["episodes"]

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __getstate__(self):  # sent to spawned workers without the open handle
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, -1
        return state


def frame_bytes(path: str | Path) -> int:
    """Bytes the frames of a file's complete episodes take in memory, from metadata alone."""
    path = Path(path)
    _check_format(path)
    with _open_for_reading(path) as f:
        size = int(np.prod([int(v) for v in f.attrs["image_shape"]]))
        frames = sum(g["frames"].shape[0] for g in f["episodes"].values()
                     if g.attrs.get("complete", False) and "frames" in g)
    return frames * size
