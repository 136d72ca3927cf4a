"""Data larger than memory: windows read from HDF5 on demand, by loader worker processes.

The streaming path must give the very windows the in-memory path gives, so that a run trains to
the same weights either way, resumes the same way, and keeps memory that does not grow with the
frames.
"""

from __future__ import annotations

import importlib
import json
import tempfile
from dataclasses import replace

import h5py
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from ami.data import EpisodeDataset, EpisodeWriter, WindowSampler
from ami.data.batches import WindowBatches
from ami.data.stream import EpisodeStream, frame_bytes
from ami.distributed import Ranks
from ami.errors import AmiError
from ami.io import CHECKPOINT_FILE
from ami.train import train

from .conftest import tiny_train_config, train_killed_after
from .test_properties import episode_sets, write


@settings(max_examples=40, deadline=None)
@given(episode_sets(), st.integers(1, 3), st.integers(1, 3), st.integers(1, 4))
def test_streamed_windows_equal_the_in_memory_ones(spec, history, future, frameskip):
    _, _, lengths, with_states = spec
    with tempfile.TemporaryDirectory() as tmp:
        path = write(tmp, *spec)
        memory, stream = EpisodeDataset.load(path), EpisodeStream.open(path)
        assert stream.num_episodes == memory.num_episodes and stream.world == memory.world
        assert stream.image_shape == memory.image_shape
        assert stream.action_dim == memory.action_dim and stream.num_frames == memory.num_frames
        assert np.array_equal(stream.starts, memory.starts)
        assert np.array_equal(stream.lengths, memory.lengths)
        for e in range(len(lengths)):
            a, b = memory.episode(e), stream.episode(e)
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        span = (history + future - 1) * frameskip
        if all(t + 1 <= span for t in lengths):
            return
        s_mem = WindowSampler(memory, history, future, frameskip)
        s_str = WindowSampler(stream, history, future, frameskip)
        assert np.array_equal(s_mem.starts, s_str.starts)
        for got, want in zip(s_str.get(s_str.starts), s_mem.get(s_mem.starts), strict=True):
            assert got.dtype == want.dtype and np.array_equal(got, want)
        stream.close()


def test_sampler_and_stream_memory_do_not_grow_with_the_frames(tmp_path):
    """Two files with the same 4 episodes, one with 10 times longer episodes: the streaming
    reader and its window sampler hold the same number of bytes for both."""
    def held(episode_steps):
        path = tmp_path / f"d{episode_steps}.h5"
        rng = np.random.default_rng(0)
        with EpisodeWriter(path, "two_rooms", (8, 8, 3), 2) as w:
            for _ in range(4):
                w.append(rng.integers(0, 255, (episode_steps + 1, 8, 8, 3), dtype=np.uint8),
                         rng.standard_normal((episode_steps, 2)).astype(np.float32))
        stream = EpisodeStream.open(path)
        sampler = WindowSampler(stream, 1, 3, 5)
        arrays = [v for obj in (stream, sampler) for v in vars(obj).values()
                  if isinstance(v, np.ndarray)]
        return sum(a.nbytes for a in arrays), len(sampler)

    short, long = held(40), held(400)
    assert long[1] > 10 * short[1]  # ten times the windows...
    assert long[0] == short[0] < 1000  # ...and the same few bytes per episode


def test_streaming_trains_to_the_in_memory_weights_and_resumes_the_same(tiny_data, tmp_path,
                                                                        monkeypatch):
    cfg = replace(tiny_train_config(tiny_data, tmp_path / "memory", steps=8), device="cpu",
                  checkpoint_every=4, stream=False)
    memory = train(cfg)

    # streaming with two worker processes, stopped after its checkpoint at step 4, then resumed
    run = tmp_path / "stream"
    train_killed_after(replace(cfg, run=run, stream=True, workers=2), 4, monkeypatch)
    train(replace(cfg, run=None, resume=run, stream=True, workers=2))

    a, b = load_file(memory / CHECKPOINT_FILE), load_file(run / CHECKPOINT_FILE)
    assert a.keys() == b.keys()
    for k in a:  # model, optimiser and RNG states, bit for bit
        assert torch.equal(a[k], b[k]), k


def test_stream_batches_are_this_ranks_share_of_the_global_batch(tiny_data):
    data = EpisodeStream.open(tiny_data)
    sampler = WindowSampler(data, 1, 3, 5)
    whole = WindowBatches(sampler, 8, np.random.default_rng(5), Ranks(), torch.device("cpu"))
    f_whole, a_whole = next(whole)
    for rank in range(2):
        part = WindowBatches(sampler, 8, np.random.default_rng(5), Ranks(rank, 2),
                             torch.device("cpu"), workers=1, stream=True)
        f, a = next(part)
        part.close()
        assert torch.equal(f, f_whole[4 * rank:4 * rank + 4])
        assert torch.equal(a, a_whole[4 * rank:4 * rank + 4])


def test_stream_checks_episodes_as_loading_does(tmp_path):
    path = tmp_path / "d.h5"
    with EpisodeWriter(path, "two_rooms", (8, 8, 3), 2) as w:
        w.append(np.zeros((4, 8, 8, 3), np.uint8), np.zeros((3, 2), np.float32))
    with h5py.File(path, "a") as f:
        f["episodes/000000/actions"][1, 0] = np.nan
    for reader in (EpisodeDataset.load, EpisodeStream.open):
        with pytest.raises(AmiError, match="episode 000000: actions contain NaN"):
            reader(path)
    with pytest.raises(AmiError, match="not found"):
        EpisodeStream.open(tmp_path / "missing.h5")


def test_frame_bytes_counts_complete_episodes_from_metadata(tiny_data):
    d = EpisodeDataset.load(tiny_data)
    assert frame_bytes(tiny_data) == d.frames.nbytes


def test_data_too_large_for_memory_streams_unless_told_otherwise(tiny_data, tmp_path,
                                                                  monkeypatch):
    module = importlib.import_module("ami.train")
    size = frame_bytes(tiny_data)
    cfg = replace(tiny_train_config(tiny_data, None, steps=2), device="cpu", workers=0)

    def streamed(available, **options):
        monkeypatch.setattr(module, "_available_memory", lambda: available)
        run = train(replace(cfg, run=tmp_path / f"run{len(list(tmp_path.iterdir()))}",
                            **options))
        return json.loads((run / "train_summary.json").read_text())["stream"]

    assert streamed(int(1.5 * size)) is True   # the frames would fill 2/3 of it: too much
    assert streamed(3 * size) is False
    assert streamed(int(1.5 * size), stream=False) is False
    assert streamed(100 * size, stream=True) is True
