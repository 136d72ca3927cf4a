"""Nothing lost, nothing run: crash-safe training and data, pickle-free checkpoints.

The crash tests kill real processes with SIGKILL (no cleanup, no finally blocks) and check that
what they leave behind opens, and that resuming ends exactly where an uninterrupted run ends.
"""

import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import ami
from ami.cli import main
from ami.config import CollectConfig, ModelConfig
from ami.data import EpisodeDataset, EpisodeWriter
from ami.data.collect import collect
from ami.data.dataset import read_header
from ami.errors import AmiError
from ami.io import (
    CHECKPOINT_FILE,
    atomic_write,
    load_model,
    read_checkpoint,
    restore,
    save_checkpoint,
    save_model,
)
from ami.train import train
from ami.world_model import WorldModel

from .conftest import tiny_train_config

# same thread count in every process: a CPU reduction split over other threads can round
# differently, and the test is about bit-identical weights
ENV = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}


def spawn(*args):
    return subprocess.Popen([sys.executable, "-m", "ami.cli", *args], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(condition, proc, timeout=120.0):
    t0 = time.monotonic()
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.stderr.read().decode()}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("timed out")
        time.sleep(0.005)


def checkpoint_step(path: Path) -> int:
    try:
        with safe_open(path, "pt") as f:
            return json.loads(f.metadata()["ami_checkpoint"])["step"]
    except Exception:  # not there yet
        return -1


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_training_killed_and_resumed_ends_bit_identical(tiny_data, tmp_path):
    cfg = replace(tiny_train_config(tiny_data, tmp_path / "whole", steps=30), device="cpu",
                  checkpoint_every=5)
    whole = train(cfg)

    run = tmp_path / "killed"
    proc = spawn("train", "--data", str(tiny_data), "--run", str(run), "--steps", "30",
                 "--batch-size", "16", "--warmup", "5", "--log-every", "10",
                 "--checkpoint-every", "5", "--model.embed-dim", "16",
                 "--model.encoder-width", "8", "--model.predictor-width", "64",
                 "--device", "cpu", "--no-progress")
    wait_for(lambda: checkpoint_step(run / CHECKPOINT_FILE) >= 5, proc)
    kill(proc)
    killed_at = checkpoint_step(run / CHECKPOINT_FILE)
    assert 5 <= killed_at < 30 and not (run / "model.safetensors").exists()

    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert json.loads((run / "train_summary.json").read_text())["resumed_at"] == [killed_at]
    # model, optimiser moments and RNG states: every tensor of the final checkpoint
    a, b = load_file(whole / CHECKPOINT_FILE), load_file(run / CHECKPOINT_FILE)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    a, b = load_file(whole / "model.safetensors"), load_file(run / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # metrics.jsonl kept the killed process's rows and appended the rest, each step once
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(x) for x in (whole / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [r["step"] for r in ref]
    assert [r["train/loss"] for r in rows] == [r["train/loss"] for r in ref]
    # accounting.json describes the whole run: the killed session (to its last checkpoint)
    # and the resumed one, their CPU seconds summed, the FLOPs of all 30 steps
    acct = json.loads((run / "accounting.json").read_text())
    first, second = acct["sessions"]
    assert first["steps"] == [0, killed_at] and second["steps"] == [killed_at, 30]
    assert first["cpu_seconds"] > 0 and second["cpu_seconds"] > 0
    assert acct["cpu_seconds"] == pytest.approx(first["cpu_seconds"] + second["cpu_seconds"])
    assert acct["energy_kwh"] == pytest.approx(first["energy_kwh"] + second["energy_kwh"])
    ref_acct = json.loads((whole / "accounting.json").read_text())
    assert acct["flops"] == ref_acct["flops"] and acct["flops"]["steps"] == 30


def test_a_run_finds_its_data_from_any_directory(tiny_data, tmp_path, monkeypatch):
    """The data path given relative to where `ami train` ran is recorded absolute, so resume,
    probes and heads find the file from another directory."""
    from ami.io import run_data, run_world
    (tmp_path / "work").mkdir()
    shutil.copy(tiny_data, tmp_path / "work" / "d.h5")
    monkeypatch.chdir(tmp_path / "work")
    run = train(tiny_train_config(Path("d.h5"), tmp_path / "run", steps=2))
    monkeypatch.chdir(tmp_path)
    assert run_data(run) == tmp_path / "work" / "d.h5" and run_data(run).is_absolute()
    assert run_world(run) == read_header(tiny_data)["world"]
    (run / "config.json").write_text("{}")
    with pytest.raises(AmiError, match="does not name the run's data; pass --data"):
        run_data(run)
    (run / "config.json").unlink()
    with pytest.raises(AmiError, match=r"no readable config\.json"):
        run_world(run)


def test_resuming_a_finished_run_changes_nothing(tiny_run):
    before = (tiny_run / "model.safetensors").read_bytes()
    assert main(["train", "--resume", str(tiny_run), "--no-progress"]) == 0
    assert (tiny_run / "model.safetensors").read_bytes() == before


def test_collection_killed_and_resumed_holds_the_same_episodes(tmp_path):
    path = tmp_path / "d.h5"
    proc = spawn("collect", "--out", str(path), "--episodes", "100000", "--steps", "20")

    def complete_episodes():
        try:  # the writer holds the file; read around its lock, tolerating a torn view
            with h5py.File(path, "r", locking=False) as f:
                return sum(1 for g in f["episodes"].values() if g.attrs.get("complete", False))
        except Exception:
            return 0
    wait_for(lambda: complete_episodes() >= 3, proc)
    kill(proc)
    survived = EpisodeDataset.load(path).num_episodes  # the file opens after a SIGKILL
    assert survived >= 3

    target = survived + 2
    collect(CollectConfig(out=path, episodes=target, steps=20, resume=True), progress=False)
    collect(CollectConfig(out=path, episodes=target, steps=20, resume=True), progress=False)
    whole = collect(CollectConfig(out=tmp_path / "whole.h5", episodes=target, steps=20),
                    progress=False)
    got, ref = EpisodeDataset.load(path), EpisodeDataset.load(whole)
    assert got.num_episodes == target  # the second --resume had nothing left to do
    for name in ("frames", "actions", "states", "lengths"):
        assert np.array_equal(getattr(got, name), getattr(ref, name)), name


def test_collect_resume_refuses_other_settings(tmp_path):
    path = collect(CollectConfig(out=tmp_path / "d.h5", episodes=2, steps=10), progress=False)
    with pytest.raises(AmiError, match=r"steps=12 \(the file has 10\)"):
        collect(CollectConfig(out=path, episodes=4, steps=12, resume=True), progress=False)


def test_writer_removes_an_episode_a_crash_left_unfinished(tmp_path):
    path = tmp_path / "d.h5"
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    with EpisodeWriter(path, "two_rooms", (8, 8, 3), 2) as w:
        w.append(frames, np.zeros((3, 2), np.float32))
    with h5py.File(path, "a") as f:
        f["episodes"].create_group("000001").create_dataset("frames", data=frames[:2])
    with EpisodeWriter(path, "two_rooms", (8, 8, 3), 2) as w:
        assert len(w) == 1
        w.append(frames + 1, np.ones((3, 2), np.float32))
    d = EpisodeDataset.load(path)
    assert d.num_episodes == 2 and d.episode(1)["frames"].max() == 1


def test_writer_refuses_to_mix_worlds_and_action_sizes(tmp_path):
    path = tmp_path / "d.h5"
    EpisodeWriter(path, "two_rooms", (8, 8, 3), 2).close()
    with pytest.raises(AmiError, match="3-d actions"):
        EpisodeWriter(path, "two_rooms", (8, 8, 3), 3)
    with pytest.raises(AmiError, match="world pusht"):
        EpisodeWriter(path, "pusht", (8, 8, 3), 2)


def test_truncated_hdf5_names_the_file_and_the_problem(tiny_data, tmp_path):
    cut = tmp_path / "cut.h5"
    cut.write_bytes(tiny_data.read_bytes()[: tiny_data.stat().st_size // 2])
    with pytest.raises(AmiError, match=rf"{re.escape(str(cut))}.*truncated"):
        EpisodeDataset.load(cut)


def _small_checkpoint(path: Path) -> tuple[WorldModel, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = WorldModel(ModelConfig(image_size=16, embed_dim=8, encoder_width=4,
                                   predictor_width=16))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = np.random.default_rng(0).integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    for _ in range(2):
        opt.zero_grad()
        model.encode(x).pow(2).mean().backward()
        opt.step()
    save_checkpoint(path, model, opt, 2, {"note": "hello", "big": 2**100},
                    {"rng/torch": torch.get_rng_state()})
    return model, opt


def test_checkpoint_round_trip_restores_model_and_optimiser(tmp_path):
    model, opt = _small_checkpoint(tmp_path / CHECKPOINT_FILE)
    ckpt = read_checkpoint(tmp_path)
    assert ckpt.step == 2 and ckpt.state == {"note": "hello", "big": 2**100}
    assert torch.equal(ckpt.tensors["rng/torch"], torch.get_rng_state())
    model2 = WorldModel(ckpt.model_config)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=0.5)
    restore(ckpt, model2, opt2)
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]  # lr and betas (a tuple again) included
    for i, per_param in s1["state"].items():
        for name, value in per_param.items():
            assert torch.equal(value, s2["state"][i][name]), (i, name)


def test_checkpoint_that_does_not_fit_names_the_key(tmp_path):
    _small_checkpoint(tmp_path / CHECKPOINT_FILE)
    ckpt = read_checkpoint(tmp_path)
    other = WorldModel(replace(ckpt.model_config, embed_dim=12))
    with pytest.raises(AmiError, match=r"projector\.3\.weight: \(8, 256\) != \(12, 256\)"):
        restore(ckpt, other, torch.optim.AdamW(other.parameters()))
    # the model fits but the optimiser's moments were tampered with
    ckpt.optimizer["state"][0]["exp_avg"] = torch.zeros(3)
    model = WorldModel(ckpt.model_config)
    with pytest.raises(AmiError, match=r"encoder\.backbone\.0\.weight\.exp_avg: \(3,\)"):
        restore(ckpt, model, torch.optim.AdamW(model.parameters()))


def test_truncated_checkpoint_and_model_name_the_file_and_the_problem(tmp_path):
    path = tmp_path / CHECKPOINT_FILE
    _small_checkpoint(path)
    data = path.read_bytes()
    for keep in (len(data) - 100, 200, 5):
        path.write_bytes(data[:keep])
        with pytest.raises(AmiError, match=rf"{re.escape(str(path))}: truncated"):
            read_checkpoint(tmp_path)
    save_model(WorldModel(ModelConfig(image_size=16, encoder_width=4)), tmp_path)
    model_file = tmp_path / "model.safetensors"
    model_file.write_bytes(model_file.read_bytes()[:-1])
    with pytest.raises(AmiError, match="truncated"):
        load_model(model_file)


class Bomb:
    """Unpickling this creates a marker file: proof that a loader ran the file's code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_pickle_files_are_refused_without_being_run(tiny_run, tmp_path):
    decoy = tmp_path / "decoy"
    pickle.loads(pickle.dumps(Bomb(decoy)))
    assert decoy.exists()  # the bomb works: a loader that unpickled would leave the marker

    marker = tmp_path / "marker"
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text((tiny_run / "config.json").read_text())
    with open(run / CHECKPOINT_FILE, "wb") as f:
        pickle.dump({"model": Bomb(marker)}, f)
    torch.save({"model": Bomb(marker)}, run / "model.safetensors")

    with pytest.raises(AmiError, match="pickle"):
        read_checkpoint(run)
    with pytest.raises(AmiError, match="pickle"):
        load_model(run)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    assert main(["eval", "--run", str(run), "--episodes", "1", "--no-progress"]) == 2
    assert not marker.exists()


def test_no_loader_in_ami_can_unpickle():
    src = Path(ami.__file__).parent
    pattern = re.compile(r"torch\.load\(|pickle\.loads?\(|import pickle|allow_pickle\s*=\s*True"
                         r"|weights_only\s*=\s*False")
    offenders = [f"{p.relative_to(src)}: {m.group()}" for p in sorted(src.rglob("*.py"))
                 for m in pattern.finditer(p.read_text())]
    assert offenders == []


def test_atomic_write_keeps_the_old_file_when_a_write_fails(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("old")

    def crash(tmp):
        tmp.write_text("half")
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, crash)
    assert path.read_text() == "old" and sorted(tmp_path.iterdir()) == [path]


def test_divergence_stops_naming_the_step_and_keeps_a_good_checkpoint(tiny_data, tmp_path):
    cfg = replace(tiny_train_config(tiny_data, tmp_path / "run", steps=20), lr=1e30,
                  grad_clip=0.0, checkpoint_every=2, device="cpu")
    with pytest.raises(AmiError, match=r"loss is nan at step (\d+); the last good checkpoint "
                                       r"is .*checkpoint\.safetensors \(after step (\d+)\)") as e:
        train(cfg)
    bad, good = map(int, re.search(r"step (\d+);.*after step (\d+)", str(e.value)).groups())
    ckpt = read_checkpoint(cfg.run)
    assert ckpt.step == good <= bad
    assert all(torch.isfinite(v).all() for v in ckpt.model.values())
