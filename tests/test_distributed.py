"""Scale-out: N processes compute what one process computes on the same global batch.

Two CPU processes (gloo, a file:// rendezvous: no network) against one: the gradients of a step
with every loss term, SIGReg and the projector's BatchNorm included; the whole training loop; and
`ami train --resume` under the real torchrun launcher.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from ami.data import EpisodeDataset, WindowSampler
from ami.distributed import Ranks, wrap_for_ranks
from ami.io import load_model
from ami.train import JEPAObjective, train
from ami.world_model import WorldModel

from .conftest import tiny_train_config, train_killed_after

WORLD = 2
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def step_config(data, run, sigreg_weight=1.0):
    """Every term of the objective on, SIGReg weighted so that it shapes the gradient."""
    cfg = replace(tiny_train_config(data, run, steps=6), device="cpu", rollout_loss=True,
                  sigreg_weight=sigreg_weight, log_every=1, checkpoint_every=3)
    return replace(cfg, model=replace(cfg.model, history=2))


def one_step(cfg, ranks: Ranks, device: str = "cpu"
             ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Gradients (and BatchNorm statistics) after one step on this rank's share of the global
    batch, with the same initial weights, batch and SIGReg directions on every rank."""
    data = EpisodeDataset.load(cfg.data)
    sampler = WindowSampler(data, cfg.model.history, cfg.future, cfg.model.frameskip)
    frames, actions = sampler.sample(cfg.batch_size, np.random.default_rng(7))
    torch.manual_seed(0)
    model = WorldModel(cfg.model).to(device)
    objective = wrap_for_ranks(JEPAObjective(model, cfg), ranks, torch.device(device))
    share = ranks.share(cfg.batch_size)
    terms = objective(torch.from_numpy(frames[share]).to(device),
                      torch.from_numpy(actions[share]).to(device),
                      torch.Generator().manual_seed(3))
    terms["loss"].backward()
    out = {f"grad/{k}": p.grad.cpu() for k, p in model.named_parameters()}
    out.update({f"buffer/{k}": b.cpu() for k, b in model.named_buffers()})
    return out, {k: float(v.detach()) for k, v in terms.items()}


def rank_main(rank: int, init: str, data: Path, out: Path, backend: str = "gloo") -> None:
    torch.set_num_threads(1)
    device = f"cuda:{rank}" if backend == "nccl" else "cpu"
    if backend == "nccl":  # fp32 on the GPU too, to compare with one GPU at float tolerance
        torch.cuda.set_device(rank)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    dist.init_process_group(backend, init_method=init, rank=rank, world_size=WORLD)
    try:
        tensors, terms = one_step(step_config(data, out / "unused"), Ranks(rank, WORLD), device)
        save_file(tensors, out / f"step{rank}.safetensors")
        (out / f"terms{rank}.json").write_text(json.dumps(terms))
        if backend == "gloo":  # the real loop, in the caller's process group
            train(step_config(data, out / "two"))
    finally:
        dist.destroy_process_group()


def run_ranks(fn, args, timeout=180.0) -> None:
    ctx = mp.start_processes(fn, args=args, nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=1.0):  # raises, with the rank's traceback, if one fails
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            raise AssertionError(f"{WORLD} ranks did not finish in {timeout:.0f} s")


def worst_error(got: dict, want: dict) -> float:
    """Largest absolute difference over every gradient, in units of the largest gradient entry
    (float32 rounding of one process against float64 is up to ~1e-5 of it here)."""
    grads = [k for k in want if k.startswith("grad/")]
    scale = max(float(want[k].abs().max()) for k in grads)
    return max(float((got[k] - want[k]).abs().max()) for k in grads) / scale


TOLERANCE = 5e-5


def assert_close(got: torch.Tensor, want: torch.Tensor, name: str, rel=1e-5):
    err = (got - want).norm() / want.norm().clamp_min(1e-12)
    assert err < rel, f"{name}: relative error {err:.2e}"


def test_two_ranks_compute_the_gradients_and_the_training_of_one_process(tiny_data, tmp_path):
    run_ranks(rank_main, (f"file://{tmp_path / 'rendezvous'}", tiny_data, tmp_path))

    one, one_terms = one_step(step_config(tiny_data, tmp_path / "x"), Ranks())
    for rank in range(WORLD):
        got = load_file(tmp_path / f"step{rank}.safetensors")
        assert got.keys() == one.keys()
        assert worst_error(got, one) < TOLERANCE, rank
        for k in one:  # BatchNorm's running statistics: those of the global batch
            if k.startswith("buffer/"):
                assert torch.allclose(got[k], one[k], rtol=1e-5, atol=1e-7), k
    # ranks hold different halves: the local prediction terms differ, SIGReg (global) does not
    terms = [json.loads((tmp_path / f"terms{r}.json").read_text()) for r in range(WORLD)]
    assert terms[0]["pred"] != terms[1]["pred"]
    assert terms[0]["sigreg"] == terms[1]["sigreg"]
    assert abs(terms[0]["sigreg"] - one_terms["sigreg"]) < 1e-5 * one_terms["sigreg"]
    assert abs((terms[0]["pred"] + terms[1]["pred"]) / 2 - one_terms["pred"]) \
        < 1e-5 * one_terms["pred"]
    # SIGReg moves the gradient well beyond the tolerance: a wrong global SIGReg would show
    no_sigreg, _ = one_step(step_config(tiny_data, tmp_path / "x", sigreg_weight=0.0), Ranks())
    assert worst_error(no_sigreg, one) > 100 * TOLERANCE

    # six steps of the real loop, two ranks against one: same weights, same logged losses
    two = tmp_path / "two"
    single = train(step_config(tiny_data, tmp_path / "one"))
    assert_same_model(two, single)
    rows = [json.loads(x) for x in (two / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(x) for x in (single / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [r["step"] for r in ref] == list(range(6))  # rank 0 only
    for r, s in zip(rows, ref, strict=True):
        for key in ("train/loss", "train/pred", "train/sigreg", "train/smooth", "train/rollout"):
            assert abs(r[key] - s[key]) <= 1e-4 * abs(s[key]), (r["step"], key)
        # eval-mode embeddings use BatchNorm's running mean, which follows the bias below
        assert abs(r["train/effective_rank"] - s["train/effective_rank"]) < 1e-2
    assert json.loads((two / "train_summary.json").read_text())["processes"] == WORLD
    # one meter sees one process: across ranks the energy is the CPU-seconds estimate of all
    acct = json.loads((two / "accounting.json").read_text())
    assert acct["energy_method"].startswith("estimate") and not acct["energy_measured_kwh"]
    assert acct["energy_kwh"] == acct["energy_kwh_estimate"]


# The projector's first Linear feeds BatchNorm, which subtracts its bias again: that bias's
# gradient is zero up to rounding, which AdamW's normalised step turns into ±lr moves, and
# BatchNorm's running mean follows it. Neither changes what the model computes in training, so
# they are compared through the embeddings of a batch; every other tensor directly.
NO_OP = ("encoder.projector.0.bias", "encoder.projector.1.running_mean")


def assert_same_model(run: Path, ref: Path) -> None:
    a, b = load_file(ref / "model.safetensors"), load_file(run / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        if k not in NO_OP:
            assert_close(b[k].float(), a[k].float(), k, rel=1e-4)
    frames = np.random.default_rng(0).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    z = [load_model(r).train().encode(frames).detach() for r in (ref, run)]
    assert_close(z[1], z[0], "embeddings", rel=1e-4)


def test_torchrun_resumes_a_run_to_the_weights_one_process_ends_with(tiny_data, tmp_path,
                                                                      monkeypatch):
    cfg = step_config(tiny_data, tmp_path / "whole")
    whole = train(cfg)

    half = tmp_path / "half"   # as if killed once checkpoint.safetensors held step 3
    train_killed_after(replace(cfg, run=half), 3, monkeypatch)
    assert not (half / "model.safetensors").exists()

    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         f"--nproc-per-node={WORLD}", "-m", "ami.cli", "--", "train", "--resume", str(half),
         "--no-progress"],
        env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("run directory") == 1  # printed by rank 0 only

    summary = json.loads((half / "train_summary.json").read_text())
    assert summary["resumed_at"] == [3] and summary["processes"] == WORLD
    assert_same_model(half, whole)
    rows = [json.loads(x) for x in (half / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(6))  # kept 0..2, appended 3..5 once
