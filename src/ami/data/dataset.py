"""One HDF5 file of episodes.

Layout (format "ami-episodes", version 1):

    /                     attrs: format, version, world, image_shape, action_dim, [provenance]
    /episodes/000000/     attrs: length (actions), complete
        frames  (T+1, H, W, C) uint8
        actions (T, A)         float32
        states  (T+1, S)       float32   optional: the true physical state, for scoring/probes

An episode is written whole and marked `complete` last, then the file is flushed and fsynced, so a
crash leaves every finished episode readable; the reader skips one left unfinished, and the
writer removes it when it opens the file again. The writer's metadata cache never evicts, so
HDF5's bookkeeping reaches the disk only at those flushes, between whole episodes.

Opening checks everything a training run relies on (format, shapes, dtypes, lengths, finite
actions and states) and names the file, the episode and the problem when something is off.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ami.errors import AmiError

FORMAT = "ami-episodes"
VERSION = 1


class EpisodeWriter:
    """Appends whole episodes to an HDF5 file (created if missing).

    `provenance` (JSON-ready) records how the episodes are made; a new file stores it, an
    existing one keeps the one it was created with (see `.provenance`).
    """

    def __init__(self, path: str | Path, world: str, image_shape: tuple, action_dim: int,
                 provenance: dict | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.image_shape, self.action_dim = tuple(int(v) for v in image_shape), int(action_dim)
        exists = self.path.exists()
        if exists:
            _check_format(self.path)
        self.file = _open_for_writing(self.path, create=not exists)
        if not exists:
            self.file.attrs.update(
                format=FORMAT, version=VERSION, world=world,
                image_shape=list(self.image_shape), action_dim=self.action_dim,
            )
            if provenance is not None:
                self.file.attrs["provenance"] = json.dumps(provenance)
            self.file.create_group("episodes")
        else:
            try:
                self._check_matches(world)
            except BaseException:
                self.file.close()
                raise
        self.episodes = self.file["episodes"]
        self._remove_unfinished()
        self._sync()

    def _check_matches(self, world: str) -> None:
        attrs = self.file.attrs
        have = (str(attrs.get("world")), tuple(int(v) for v in attrs["image_shape"]),
                int(attrs["action_dim"]))
        if have[1] != self.image_shape:
            raise AmiError(f"{self.path}: holds images of shape {have[1]}, cannot append "
                           f"images of shape {self.image_shape}")
        if have[2] != self.action_dim:
            raise AmiError(f"{self.path}: holds {have[2]}-d actions, cannot append "
                           f"{self.action_dim}-d actions")
        if have[0] != world:
            raise AmiError(f"{self.path}: holds episodes of world {have[0]}, cannot append "
                           f"episodes of world {world}")

    def _remove_unfinished(self) -> None:
        """Delete episodes a crash left unfinished, so that names stay dense and in order."""
        for name in list(self.episodes):
            try:
                complete = bool(self.episodes[name].attrs.get("complete", False))
            except (OSError, KeyError, RuntimeError):
                complete = False
            if not complete:
                del self.episodes[name]

    @property
    def provenance(self) -> dict | None:
        text = self.file.attrs.get("provenance")
        return json.loads(text) if text is not None else None

    def __len__(self) -> int:
        return len(self.episodes)

    def append(self, frames: np.ndarray, actions: np.ndarray, states: np.ndarray | None = None,
               **attrs):
        """Write one finished episode: frames (T+1, H, W, C) uint8, actions (T, A); `attrs` are
        stored on the episode (how it was made: seed, policy)."""
        if frames.dtype != np.uint8 or frames.ndim != 4:
            raise ValueError(f"frames must be (T+1, H, W, C) uint8, got {frames.shape} "
                             f"{frames.dtype}")
        if frames.shape[1:] != self.image_shape:
            raise ValueError(f"frames are {frames.shape[1:]}, this file holds {self.image_shape}")
        if len(frames) != len(actions) + 1:
            raise ValueError(f"{len(frames)} frames need {len(frames) - 1} actions, got "
                             f"{len(actions)}")
        actions = np.asarray(actions, np.float32).reshape(len(actions), self.action_dim)
        if not np.all(np.isfinite(actions)):
            raise ValueError("actions contain NaN or inf")
        name = f"{len(self.episodes):06d}"
        g = self.episodes.create_group(name)
        g.create_dataset("frames", data=frames, compression="gzip", compression_opts=1,
                         chunks=(1, *frames.shape[1:]))
        g.create_dataset("actions", data=actions)
        if states is not None:
            g.create_dataset("states", data=np.asarray(states, np.float32))
        g.attrs.update(attrs)
        g.attrs["length"] = len(actions)
        g.attrs["complete"] = True
        self._sync()

    def _sync(self) -> None:
        self.file.flush()
        fd = os.open(self.path, os.O_RDONLY)  # fsync through any descriptor reaches the file
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _open_for_writing(path: Path, create: bool) -> h5py.File:
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG)  # what h5py.File sets too
    cache = fapl.get_mdc_config()
    # HDF5 accepts "no evictions" only with the cache's automatic resizing off
    cache.incr_mode = cache.flash_incr_mode = cache.decr_mode = 0
    cache.evictions_enabled = False
    fapl.set_mdc_config(cache)
    name = os.fsencode(path)
    try:
        fid = (h5py.h5f.create(name, h5py.h5f.ACC_EXCL, fapl=fapl) if create else
               h5py.h5f.open(name, h5py.h5f.ACC_RDWR, fapl=fapl))
    except OSError as e:
        raise AmiError(f"{path}: cannot open for writing ({_h5_reason(e)})") from None
    return h5py.File(fid)


def _h5_reason(e: Exception) -> str:
    text = str(e)
    cut = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", text)
    if cut:
        return (f"the file is truncated: {cut[1]} bytes, its header says {cut[2]}; was a copy "
                f"or a download cut short?")
    if "lock" in text:
        return f"another process has it open, or the filesystem cannot lock files: {text}"
    return text


def _open_for_reading(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise AmiError(f"{path}: cannot read this HDF5 file ({_h5_reason(e)})") from None


def _check_format(path: Path) -> None:
    if not path.exists():
        raise AmiError(f"data file not found: {path}")
    if not h5py.is_hdf5(path):
        raise AmiError(f"{path} is not an HDF5 file (expected an ami episodes file from "
                       f"`ami collect`)")
    with _open_for_reading(path) as f:
        if f.attrs.get("format") != FORMAT:
            raise AmiError(f"{path} is an HDF5 file but not an ami episodes file "
                           f"(no format={FORMAT})")
        if f.attrs.get("version") != VERSION:
            raise AmiError(f"{path}: ami episodes format version {f.attrs.get('version')}; this "
                           f"ami reads version {VERSION}")
        try:
            shape = tuple(int(v) for v in f.attrs["image_shape"])
            action_dim = int(f.attrs["action_dim"])
        except (KeyError, TypeError, ValueError):
            raise AmiError(f"{path}: damaged header: image_shape or action_dim missing") from None
        if len(shape) != 3 or min(shape) < 1 or action_dim < 1:
            raise AmiError(f"{path}: damaged header: image_shape {shape}, action_dim {action_dim}")
        if not isinstance(f.get("episodes"), h5py.Group):
            raise AmiError(f"{path}: damaged: no /episodes group")


def read_header(path: str | Path) -> dict:
    """The file's world and provenance (None when not recorded), without reading episodes."""
    path = Path(path)
    _check_format(path)
    with _open_for_reading(path) as f:
        text = f.attrs.get("provenance")
        return {"world": str(f.attrs.get("world", "unknown")),
                "provenance": json.loads(text) if text is not None else None}


def count_episodes(path: str | Path) -> int:
    """Complete episodes in a file, without reading their frames."""
    path = Path(path)
    _check_format(path)
    with _open_for_reading(path) as f:
        return sum(1 for g in f["episodes"].values() if g.attrs.get("complete", False))


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
        """Check and read every complete episode. The frames go straight into one array sized
        from the episodes' lengths, so that loading holds them once (PushT's 2,000 episodes:
        2.5 GB), never a list of episodes and their concatenation beside it."""
        path = Path(path)
        _check_format(path)
        names, actions, states, lengths = [], [], [], []
        with _open_for_reading(path) as f:
            world = str(f.attrs.get("world", "unknown"))
            image_shape = tuple(int(v) for v in f.attrs["image_shape"])
            action_dim = int(f.attrs["action_dim"])
            for name, (n_frames, ac, st) in complete_episodes(f, path):
                names.append(name)
                # pad with a zero action so that row t of `actions` follows frame t
                actions.append(np.concatenate([ac, np.zeros((1, action_dim), np.float32)]))
                states.append(st)
                lengths.append(n_frames)
            if not names:
                raise AmiError(f"{path}: holds no complete episode (an empty data set; collect "
                               f"some with `ami collect --out {path}`)")
            frames = np.empty((sum(lengths), *image_shape), np.uint8)  # (N_frames, H, W, C)
            kept = _read_frames_into(f, path, names, lengths, frames)
        frames, actions, states, lengths = (frames[:sum(lengths[:kept])], actions[:kept],
                                            states[:kept], np.asarray(lengths[:kept]))
        if not kept:
            raise AmiError(f"{path}: holds no readable episode (its one complete episode is "
                           f"damaged)")
        has_states = all(s is not None for s in states)
        if has_states and len({s.shape[1] for s in states}) > 1:
            raise AmiError(f"{path}: episodes have states of different sizes "
                           f"{sorted({s.shape[1] for s in states})}")
        return cls(
            path=path,
            world=world,
            frames=frames,
            actions=np.concatenate(actions),
            states=np.concatenate(states) if has_states else None,
            starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]),
            lengths=lengths,
        )

    @property
    def num_episodes(self) -> int:
        return len(self.lengths)

    @property
    def num_frames(self) -> int:
        return len(self.frames)

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

    def take(self, frame_index: np.ndarray, action_index: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
        """Frames and actions at flat indices: frame_index (B, n) → (B, n, H, W, C) uint8,
        action_index (B, k) → (B, k, A) float32."""
        return self.frames[frame_index], self.actions[action_index]


def complete_episodes(f: h5py.File, path: Path):
    """(name, (frame count, actions, states)) of every complete episode of an open file, in
    order, checked without reading the pixels. A damaged last episode (the one a crash can have
    left half-written) is skipped with a warning; any other is an AmiError."""
    image_shape = tuple(int(v) for v in f.attrs["image_shape"])
    action_dim = int(f.attrs["action_dim"])
    names = sorted(f["episodes"])
    for i, name in enumerate(names):
        try:
            episode = _read_episode(f["episodes"], name, image_shape, action_dim)
        except (OSError, RuntimeError, KeyError) as e:
            _skip_if_last(path, name, e, last=i == len(names) - 1)
            continue
        except ValueError as e:
            raise AmiError(f"{path}: episode {name}: {e}") from None
        if episode is not None:
            yield name, episode


def _read_frames_into(f: h5py.File, path: Path, names: list[str], lengths: list[int],
                      out: np.ndarray) -> int:
    """Read the named episodes' frames back to back into `out` (N_frames, H, W, C), without an
    episode-sized copy in between; returns how many episodes were read: all, or all but a
    damaged last one, as `complete_episodes` treats it."""
    last = sorted(f["episodes"])[-1]
    start = 0
    for i, (name, n) in enumerate(zip(names, lengths, strict=True)):
        try:
            f["episodes"][name]["frames"].read_direct(out, dest_sel=np.s_[start:start + n])
        except (OSError, RuntimeError, KeyError) as e:
            _skip_if_last(path, name, e, last=name == last)
            return i
        start += n
    return len(names)


def _skip_if_last(path: Path, name: str, e: Exception, last: bool) -> None:
    """Warn that a damaged last episode (the one a crash can have left half-written) is skipped;
    any other damaged episode is an AmiError."""
    if not last:
        raise AmiError(f"{path}: episode {name} is damaged ({_h5_reason(e)})") from None
    warnings.warn(f"{path}: skipping its last episode {name}, which is damaged "
                  f"({_h5_reason(e)})", stacklevel=4)


def _read_episode(episodes: h5py.Group, name: str, image_shape: tuple, action_dim: int):
    """(frame count, actions, states or None) of a complete episode, None for an unfinished one;
    ValueError says what is wrong with a complete one. The checks read the frames' shape, never
    the pixels."""
    g = episodes[name]
    if not isinstance(g, h5py.Group) or not g.attrs.get("complete", False):
        return None
    for key in ("frames", "actions"):
        if not isinstance(g.get(key), h5py.Dataset):
            raise ValueError(f"marked complete but has no {key}")
    if g["frames"].dtype != np.uint8:
        raise ValueError(f"frames are {g['frames'].dtype}, expected uint8")
    if not np.issubdtype(g["actions"].dtype, np.floating):
        raise ValueError(f"actions are {g['actions'].dtype}, expected float")
    ac = g["actions"][()]
    t = len(ac)
    if g["frames"].shape != (t + 1, *image_shape):
        raise ValueError(f"frames of shape {g['frames'].shape} with {t} actions; expected "
                         f"{(t + 1, *image_shape)} (T+1 frames of the file's image shape)")
    if ac.shape != (t, action_dim):
        raise ValueError(f"actions of shape {ac.shape}; expected ({t}, {action_dim})")
    if "length" in g.attrs and int(g.attrs["length"]) != t:
        raise ValueError(f"length attribute says {int(g.attrs['length'])} actions, it has {t}")
    if not np.all(np.isfinite(ac)):
        bad = int(np.argwhere(~np.isfinite(ac))[0, 0])
        raise ValueError(f"actions contain NaN or inf (first at step {bad})")
    st = None
    if "states" in g:
        st = g["states"][()]
        if st.ndim != 2 or len(st) != t + 1:
            raise ValueError(f"states of shape {st.shape}; expected ({t + 1}, S)")
        if not np.all(np.isfinite(st)):
            raise ValueError("states contain NaN or inf")
        st = st.astype(np.float32)
    return t + 1, ac.astype(np.float32), st
