"""Property tests of the episode file and the window sampler, over generated episode sets.

Every frame's pixels hold its time step within its episode, and every action is
(episode, time step, 0...), so a window that crossed an episode boundary, or an index one off,
shows up as a wrong value, not only as a wrong shape.
"""

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ami.data import EpisodeDataset, EpisodeWriter, WindowSampler
from ami.errors import AmiError


@st.composite
def episode_sets(draw):
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    c = draw(st.sampled_from([1, 3]))
    action_dim = draw(st.integers(2, 3))
    lengths = draw(st.lists(st.integers(0, 40), min_size=1, max_size=6))  # actions per episode
    with_states = draw(st.booleans())
    return (h, w, c), action_dim, lengths, with_states


def episode(e, t, image_shape, action_dim):
    frames = np.broadcast_to(np.arange(t + 1, dtype=np.uint8)[:, None, None, None],
                             (t + 1, *image_shape)).copy()
    actions = np.zeros((t, action_dim), np.float32)
    actions[:, 0], actions[:, 1] = e, np.arange(t)
    states = np.stack([np.full(t + 1, e), np.arange(t + 1)], 1).astype(np.float32)
    return frames, actions, states


def write(folder, image_shape, action_dim, lengths, with_states):
    path = Path(folder) / "d.h5"
    with EpisodeWriter(path, "two_rooms", image_shape, action_dim) as w:
        for e, t in enumerate(lengths):
            frames, actions, states = episode(e, t, image_shape, action_dim)
            w.append(frames, actions, states if with_states else None)
    return path


@settings(max_examples=60, deadline=None)
@given(episode_sets())
def test_reader_returns_what_was_written(spec):
    image_shape, action_dim, lengths, with_states = spec
    with tempfile.TemporaryDirectory() as tmp:
        d = EpisodeDataset.load(write(tmp, *spec))
    assert d.num_episodes == len(lengths) and d.image_shape == image_shape
    assert d.action_dim == action_dim and list(d.lengths) == [t + 1 for t in lengths]
    assert len(d.frames) == len(d.actions) == sum(lengths) + len(lengths)
    assert (d.states is not None) == with_states
    for e, t in enumerate(lengths):
        frames, actions, states = episode(e, t, image_shape, action_dim)
        got = d.episode(e)
        assert np.array_equal(got["frames"], frames) and np.array_equal(got["actions"], actions)
        if with_states:
            assert np.array_equal(got["states"], states)


@settings(max_examples=100, deadline=None)
@given(episode_sets(), st.integers(1, 3), st.integers(1, 3), st.integers(1, 4),
       st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_windows_have_the_right_shapes_and_stay_inside_one_episode(spec, history, future,
                                                                  frameskip, batch, seed):
    image_shape, action_dim, lengths, _ = spec
    with tempfile.TemporaryDirectory() as tmp:
        d = EpisodeDataset.load(write(tmp, *spec))
    n, span = history + future, (history + future - 1) * frameskip
    if all(t + 1 <= span for t in lengths):
        try:
            WindowSampler(d, history, future, frameskip)
        except AmiError as e:
            assert "no episode has" in str(e)
            return
        raise AssertionError("episodes too short for a window were accepted")
    s = WindowSampler(d, history, future, frameskip)
    assert len(s) == sum(max(0, t + 1 - span) for t in lengths)  # every valid start, once
    assert len(np.unique(s.starts)) == len(s)

    frames, actions = s.sample(batch, np.random.default_rng(seed))
    assert frames.shape == (batch, n, *image_shape) and frames.dtype == np.uint8
    assert actions.shape == (batch, n - 1, frameskip * action_dim)
    assert actions.dtype == np.float32

    # every window, checked through the values it holds
    frames, actions = s.get(s.starts)
    t0 = frames[:, 0, 0, 0, 0].astype(int)                       # (W,) start within episode
    k = np.arange(n)
    assert np.array_equal(frames[:, :, 0, 0, 0], t0[:, None] + k * frameskip)
    blocks = actions.reshape(len(s), n - 1, frameskip, action_dim)
    ep = blocks[:, 0, 0, 0]
    assert np.all(blocks[..., 0] == ep[:, None, None])          # one episode per window
    steps = t0[:, None, None] + np.arange(n - 1)[None, :, None] * frameskip + np.arange(frameskip)
    assert np.array_equal(blocks[..., 1], steps)                # the actions between the frames
    assert np.all(t0 + span <= np.asarray(lengths)[ep.astype(int)])  # last frame in the episode
