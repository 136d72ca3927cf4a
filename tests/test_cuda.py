"""The CUDA path: picked by default, bf16 autocast, pinned batches, torch.compile, nccl.

Skipped where there is no GPU; where there is one, these run the real training loop on it.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ami.data import EpisodeDataset, WindowSampler
from ami.data.batches import WindowBatches
from ami.data.stream import EpisodeStream
from ami.device import resolve_device, use_bf16
from ami.distributed import Ranks
from ami.io import load_model
from ami.train import train

from .conftest import tiny_train_config, train_killed_after
from .test_distributed import (
    TOLERANCE,
    WORLD,
    one_step,
    rank_main,
    run_ranks,
    step_config,
    worst_error,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@contextlib.contextmanager
def full_fp32():
    """No TF32 in matmuls and convolutions, so that a GPU step compares with a CPU step."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def metrics(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_cuda_is_chosen_by_default_with_bf16_and_the_model_learns(tiny_data, tmp_path):
    assert resolve_device("auto").type == "cuda"
    assert use_bf16(torch.device("cuda"), None) and not use_bf16(torch.device("cpu"), None)
    run = train(tiny_train_config(tiny_data, tmp_path / "run", steps=120))  # --device auto
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["device"].startswith("cuda") and summary["bf16"] is True
    rows = metrics(run)
    assert rows[-1]["train/loss"] < 0.5 * rows[0]["train/loss"]
    assert rows[-1]["train/effective_rank"] > 4
    # the weights come back to a CPU and encode there as on the GPU (bf16 tolerance)
    frames = EpisodeDataset.load(tiny_data).frames[:64]
    cpu = load_model(run, "cpu").encode(frames).detach()
    gpu = load_model(run, "cuda").encode(frames).detach().cpu()
    assert torch.allclose(cpu, gpu, rtol=1e-3, atol=1e-3)


def test_a_step_on_the_gpu_computes_the_cpu_step(tiny_data, tmp_path):
    cfg = step_config(tiny_data, tmp_path / "x")
    cpu, cpu_terms = one_step(cfg, Ranks(), "cpu")
    with full_fp32():
        gpu, gpu_terms = one_step(cfg, Ranks(), "cuda")
    assert worst_error(gpu, cpu) < 20 * TOLERANCE  # other kernels, other summation orders
    for k in cpu_terms:  # SIGReg included: its directions come from a CPU generator
        assert abs(gpu_terms[k] - cpu_terms[k]) <= 1e-4 * abs(cpu_terms[k]) + 1e-6, k


@pytest.mark.parametrize("stream", [False, True])
def test_batches_are_pinned_and_reach_the_gpu_unchanged(tiny_data, stream):
    data = EpisodeStream.open(tiny_data) if stream else EpisodeDataset.load(tiny_data)
    sampler = WindowSampler(data, 1, 3, 5)
    batches = WindowBatches(sampler, 16, np.random.default_rng(0), Ranks(),
                            torch.device("cuda"), workers=1, stream=stream)
    frames, actions = next(batches)
    want_f, want_a = sampler.sample(16, np.random.default_rng(0))
    assert frames.device.type == actions.device.type == "cuda"
    assert np.array_equal(frames.cpu().numpy(), want_f)
    assert np.array_equal(actions.cpu().numpy(), want_a)
    if stream:  # the loader hands over page-locked host memory, copied asynchronously
        host_frames, host_actions, _ = next(iter(batches.loader))
        assert host_frames.is_pinned() and host_actions.is_pinned()
    batches.close()


def test_compiled_training_on_the_gpu_follows_eager_training(tiny_data, tmp_path):
    cfg = replace(tiny_train_config(tiny_data, tmp_path / "eager", steps=30), log_every=5)
    eager = metrics(train(cfg))
    compiled = metrics(train(replace(cfg, run=tmp_path / "compiled", compile=True)))
    assert [r["step"] for r in compiled] == [r["step"] for r in eager]
    for a, b in zip(compiled, eager, strict=True):  # bf16 on both: close, not equal
        assert abs(a["train/loss"] - b["train/loss"]) < 0.05 * abs(b["train/loss"]) + 1e-3
    assert load_file(tmp_path / "compiled" / "model.safetensors").keys() == \
        load_file(tmp_path / "eager" / "model.safetensors").keys()  # no _orig_mod prefixes


def test_a_gpu_run_resumes_to_the_weights_of_an_uninterrupted_one(tiny_data, tmp_path,
                                                                   monkeypatch):
    cfg = replace(tiny_train_config(tiny_data, tmp_path / "whole", steps=12), device="cuda",
                  bf16=False, checkpoint_every=4)
    with full_fp32():
        whole = train(cfg)
        run = tmp_path / "resumed"
        train_killed_after(replace(cfg, run=run), 8, monkeypatch)
        train(replace(cfg, run=None, resume=run))
    frames = EpisodeDataset.load(tiny_data).frames[:64]
    a = load_model(whole, "cuda").train().encode(frames).detach()
    b = load_model(run, "cuda").train().encode(frames).detach()
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-4)  # cuDNN may pick other kernels


@pytest.mark.skipif(torch.cuda.device_count() < WORLD, reason=f"needs {WORLD} GPUs")
def test_two_gpus_compute_the_gradients_of_one(tiny_data, tmp_path):
    run_ranks(rank_main, (f"file://{tmp_path / 'rendezvous'}", tiny_data, tmp_path, "nccl"))
    with full_fp32():
        one, _ = one_step(step_config(tiny_data, tmp_path / "x"), Ranks(), "cuda")
    for rank in range(WORLD):
        got = load_file(tmp_path / f"step{rank}.safetensors")
        assert worst_error(got, one) < 20 * TOLERANCE, rank
