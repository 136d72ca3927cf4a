"""One HDF5 file of episodes.

Layout (format "ami-episodes", version 1):

    /                     attrs: format, version, world, image_shape, action_dim
    /episodes/000000/     attrs: length (actions), complete
        frames  (T+1, H, W, C) uint8
        actions (T, A)         float32
        states  (T+1, S)       float32   optional: the true physical state, for scoring/probes

An episode is written whole and marked `complete` last, then the file is flushed, so a crash
leaves every finished episode readable; the reader skips one left unfinished.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ami.errors import AmiError

FORMAT = "ami-episodes"
VERSION = 1


class EpisodeWriter:
    """Appends whole episodes to an HDF5 file (created if missing)."""

    def __init__(self, path: str | Path, world: str, image_shape: tuple, action_dim: int):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        exists = self.path.exists()
        if exists:
            _check_format(self.path)
        self.file = h5py.File(self.path, "a")
        if not exists:
            self.file.attrs.update(
                format=FORMAT, version=VERSION, world=world,
                image_shape=list(image_shape), action_dim=action_dim,
            )
            self.file.create_group("episodes")
        elif tuple(self.file.attrs["image_shape"]) != tuple(image_shape):
            raise AmiError(
                f"{self.path}: holds images of shape {tuple(self.file.attrs['image_shape'])}, "
                f"cannot append images of shape {tuple(image_shape)}"
            )
        self.episodes = self.file["episodes"]

    def __len__(self) -> int:
        return sum(1 for g in self.episodes.values() if g.attrs.get("complete", False))

    def append(self, frames: np.ndarray, actions: np.ndarray, states: np.ndarray | None = None):
        """Write one finished episode: frames (T+1, H, W, C) uint8, actions (T, A)."""
        if frames.dtype != np.uint8 or frames.ndim != 4:
            raise ValueError(f"frames must be (T+1, H, W, C) uint8, got {frames.shape} {frames.dtype}")
        if len(frames) != len(actions) + 1:
            raise ValueError(f"{len(frames)} frames need {len(frames) - 1} actions, got {len(actions)}")
        name = f"{len(self.episodes):06d}"
        if name in self.episodes:  # an unfinished episode left by a crash: replace it
            del self.episodes[name]
        g = self.episodes.create_group(name)
        g.create_dataset("frames", data=frames, compression="gzip", compression_opts=1,
                         chunks=(1, *frames.shape[1:]))
        g.create_dataset("actions", data=np.asarray(actions, np.float32))
        if states is not None:
            g.create_dataset("states", data=np.asarray(states, np.float32))
        g.attrs["length"] = len(actions)
        g.attrs["complete"] = True
        self.file.flush()

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check_format(path: Path) -> None:
    if not path.exists():
        raise AmiError(f"data file not found: {path}")
    if not h5py.is_hdf5(path):
        raise AmiError(f"{path} is not an HDF5 file (expected an ami episodes file from `ami collect`)")
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise AmiError(f"{path} is an HDF5 file but not an ami episodes file (no format={FORMAT})")


@dataclass
class EpisodeDataset:
    """All complete episodes of a file, in memory, as flat arrays plus episode offsets."""

    path: Path
    world: str
    frames: np.ndarray            # (N_frames, H, W, C) uint8, episodes back to back
    actions: np.ndarray           # (N_frames, A) float32; row t is the action after frame t
    states: np.ndarray | None     # (N_frames, S) float32
    starts: np.ndarray            # (E,) index of each episode's first frame
    lengths: np.ndarray           # (E,) number of frames of each episode

    @classmethod
    def load(cls, path: str | Path) -> EpisodeDataset:
        path = Path(path)
        _check_format(path)
        frames, actions, states, lengths = [], [], [], []
        with h5py.File(path, "r") as f:
            world = str(f.attrs.get("world", "unknown"))
            action_dim = int(f.attrs["action_dim"])
            for name in sorted(f["episodes"]):
                g = f["episodes"][name]
                if not g.attrs.get("complete", False):
                    continue
                fr, ac = g["frames"][()], g["actions"][()]
                if len(fr) != len(ac) + 1 or ac.shape[1:] != (action_dim,):
                    raise AmiError(f"{path}: episode {name} has {len(fr)} frames and actions "
                                   f"of shape {ac.shape}; expected T+1 frames and (T, {action_dim})")
                frames.append(fr)
                # pad with a zero action so that row t of `actions` follows frame t
                actions.append(np.concatenate([ac, np.zeros((1, action_dim), np.float32)]))
                if "states" in g:
                    states.append(g["states"][()])
                lengths.append(len(fr))
        if not frames:
            raise AmiError(f"{path}: holds no complete episode")
        lengths = np.asarray(lengths)
        all_actions = np.concatenate(actions).astype(np.float32)
        if not np.all(np.isfinite(all_actions)):
            raise AmiError(f"{path}: actions contain NaN or inf")
        return cls(
            path=path,
            world=world,
            frames=np.concatenate(frames),
            actions=all_actions,
            states=np.concatenate(states) if len(states) == len(frames) else None,
            starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]),
            lengths=lengths,
        )

    @property
    def num_episodes(self) -> int:
        return len(self.lengths)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.frames.shape[1:])

    @property
    def action_dim(self) -> int:
        return self.actions.shape[1]

    def episode(self, i: int) -> dict[str, np.ndarray]:
        s, n = self.starts[i], self.lengths[i]
        out = {"frames": self.frames[s:s + n], "actions": self.actions[s:s + n - 1]}
        if self.states is not None:
            out["states"] = self.states[s:s + n]
        return out
