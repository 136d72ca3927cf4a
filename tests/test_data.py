"""The HDF5 episode format and the window sampler."""

import tracemalloc

import h5py
import numpy as np
import pytest

from ami.data import EpisodeDataset, EpisodeWriter, WindowSampler
from ami.errors import AmiError


def _episode(t, seed):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 255, (t + 1, 8, 8, 3), dtype=np.uint8),
            rng.standard_normal((t, 2)).astype(np.float32),
            rng.standard_normal((t + 1, 2)).astype(np.float32))


def test_round_trip(tmp_path):
    path = tmp_path / "d.h5"
    eps = [_episode(5, 0), _episode(9, 1)]
    with EpisodeWriter(path, "two_rooms", (8, 8, 3), 2) as w:
        for e in eps:
            w.append(*e)
    with EpisodeWriter(path, "two_rooms", (8, 8, 3), 2) as w:  # append-safe reopen
        w.append(*_episode(3, 2))
        assert len(w) == 3
    d = EpisodeDataset.load(path)
    assert d.num_episodes == 3 and d.image_shape == (8, 8, 3) and d.action_dim == 2
    for i, (f, a, s) in enumerate(eps):
        got = d.episode(i)
        assert np.array_equal(got["frames"], f)
        assert np.array_equal(got["actions"], a)
        assert np.array_equal(got["states"], s)


def test_unfinished_episode_is_skipped(tmp_path):
    path = tmp_path / "d.h5"
    with EpisodeWriter(path, "two_rooms", (8, 8, 3), 2) as w:
        w.append(*_episode(5, 0))
    with h5py.File(path, "a") as f:  # what a crash mid-episode leaves behind
        g = f["episodes"].create_group("000001")
        g.create_dataset("frames", data=np.zeros((2, 8, 8, 3), np.uint8))
    assert EpisodeDataset.load(path).num_episodes == 1


def test_missing_and_foreign_files_give_clear_errors(tmp_path):
    with pytest.raises(AmiError, match="not found"):
        EpisodeDataset.load(tmp_path / "nope.h5")
    txt = tmp_path / "x.h5"
    txt.write_text("hello")
    with pytest.raises(AmiError, match="not an HDF5 file"):
        EpisodeDataset.load(txt)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(AmiError, match="not an ami episodes file"):
        EpisodeDataset.load(other)


def test_windows_hold_the_right_frames_and_actions(tmp_path):
    path = tmp_path / "d.h5"
    t = 20
    frames = np.arange(t + 1, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8)
    actions = np.stack([np.arange(t), -np.arange(t)], 1).astype(np.float32)
    with EpisodeWriter(path, "two_rooms", (4, 4, 1), 2) as w:
        w.append(frames, actions)
    d = EpisodeDataset.load(path)
    s = WindowSampler(d, history=1, future=2, frameskip=3)
    assert len(s) == t + 1 - 6
    f, a = s.get(np.array([4]))
    assert f.shape == (1, 3, 4, 4, 1) and a.shape == (1, 2, 6)
    assert list(f[0, :, 0, 0, 0]) == [4, 7, 10]
    assert list(a[0, 0, ::2]) == [4, 5, 6] and list(a[0, 1, ::2]) == [7, 8, 9]


def test_episodes_too_short_for_a_window(tmp_path):
    path = tmp_path / "d.h5"
    with EpisodeWriter(path, "two_rooms", (8, 8, 3), 2) as w:
        w.append(*_episode(3, 0))
    with pytest.raises(AmiError, match="no episode has"):
        WindowSampler(EpisodeDataset.load(path), history=1, future=3, frameskip=5)


def test_loading_holds_the_frames_once(tmp_path):
    """Loading fills one array rather than concatenating a list of episodes, so its peak is
    about one copy of the frames (PushT's 2.5 GB, not twice that)."""
    path = tmp_path / "d.h5"
    eps = [(np.full((21, 64, 64, 3), i, np.uint8), np.zeros((20, 2), np.float32))
           for i in range(12)]
    with EpisodeWriter(path, "two_rooms", (64, 64, 3), 2) as w:
        for e in eps:
            w.append(*e)
    tracemalloc.start()  # numpy reports its buffers to tracemalloc
    try:
        d = EpisodeDataset.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.3 * d.frames.nbytes, f"peak {peak / d.frames.nbytes:.2f}x the frames"
    assert np.array_equal(d.frames, np.concatenate([f for f, _ in eps]))


@pytest.mark.parametrize("episode", ["000000", "000002"])
def test_damaged_frames_are_skipped_in_the_last_episode_only(tmp_path, episode):
    path = tmp_path / "d.h5"
    with EpisodeWriter(path, "two_rooms", (8, 8, 3), 2) as w:
        for i in range(3):
            w.append(*_episode(4, i))
    with h5py.File(path, "r") as f:  # the checks read no pixels: only loading meets the damage
        chunk = f[f"episodes/{episode}/frames"].id.get_chunk_info(1)
    with open(path, "r+b") as f:
        f.seek(chunk.byte_offset)
        f.write(b"\xff" * chunk.size)
    if episode == "000002":
        with pytest.warns(UserWarning, match="skipping its last episode 000002"):
            d = EpisodeDataset.load(path)
        assert d.num_episodes == 2 and len(d.frames) == len(d.actions) == 10
        assert np.array_equal(d.episode(1)["frames"], _episode(4, 1)[0])
    else:
        with pytest.raises(AmiError, match="episode 000000 is damaged"):
            EpisodeDataset.load(path)
