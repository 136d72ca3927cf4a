"""Every bad input at a user-facing entry: one line that names the problem, exit code 2.

Most cases run `ami.cli.main` in this process (fast); the ones about tyro's parser and --debug
run the real command.
"""

import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from ami.cli import main
from ami.config import ModelConfig
from ami.data import EpisodeWriter
from ami.io import save_model
from ami.world_model import WorldModel


def write_episodes(path, image_shape=(64, 64, 3), action_dim=2, episodes=3, steps=30):
    rng = np.random.default_rng(0)
    with EpisodeWriter(path, "two_rooms", image_shape, action_dim) as w:
        for _ in range(episodes):
            w.append(rng.integers(0, 255, (steps + 1, *image_shape), dtype=np.uint8),
                     rng.uniform(-1, 1, (steps, action_dim)).astype(np.float32))
    return path


def nan_actions(tmp):
    path = write_episodes(tmp / "nan.h5")
    with h5py.File(path, "a") as f:
        f["episodes/000001/actions"][4, 1] = np.nan
    return path


def nan_states(tmp):
    path = tmp / "nan_states.h5"
    with EpisodeWriter(path, "two_rooms", (64, 64, 3), 2) as w:
        states = np.zeros((31, 2), np.float32)
        states[7] = np.inf
        w.append(np.zeros((31, 64, 64, 3), np.uint8), np.zeros((30, 2), np.float32), states)
    return path


def empty(tmp):
    EpisodeWriter(tmp / "empty.h5", "two_rooms", (64, 64, 3), 2).close()
    return tmp / "empty.h5"


def truncated(tmp):
    path = write_episodes(tmp / "full.h5")
    data = path.read_bytes()
    (tmp / "cut.h5").write_bytes(data[: len(data) // 3])
    return tmp / "cut.h5"


def wrong_dtype(tmp):
    path = write_episodes(tmp / "dtype.h5")
    with h5py.File(path, "a") as f:
        frames = f["episodes/000000/frames"][()]
        del f["episodes/000000/frames"]
        f["episodes/000000/frames"] = frames.astype(np.float32)
    return path


def wrong_length(tmp):
    path = write_episodes(tmp / "length.h5")
    with h5py.File(path, "a") as f:
        actions = f["episodes/000002/actions"][()]
        del f["episodes/000002/actions"]
        f["episodes/000002/actions"] = actions[:-3]
    return path


TRAIN = ["train", "--steps", "2", "--batch-size", "4", "--no-progress"]


@pytest.mark.parametrize("make, message", [
    (nan_actions, "episode 000001: actions contain NaN or inf (first at step 4)"),
    (nan_states, "episode 000000: states contain NaN or inf"),
    (empty, "holds no complete episode"),
    (truncated, "the file is truncated"),
    (wrong_dtype, "episode 000000: frames are float32, expected uint8"),
    (wrong_length, "episode 000002: frames of shape (31, 64, 64, 3) with 27 actions"),
    (lambda tmp: write_episodes(tmp / "short.h5", steps=8),
     "no episode has the 16 frames a training window needs"),
])
def test_bad_data_for_train(tmp_path, capsys, make, message):
    path = make(tmp_path)
    assert main([*TRAIN, "--data", str(path), "--run", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.fixture()
def run_copy(tiny_run, tmp_path):
    """A copy of the session's tiny run, so that a test cannot change the shared one."""
    return shutil.copytree(tiny_run, tmp_path / "run")


@pytest.mark.parametrize("data, message", [
    (dict(image_shape=(32, 32, 3)), "has 32x32x3 images, but the model of run {run} takes "
                                    "64x64x3 images"),
    (dict(image_shape=(64, 64, 1)), "has 64x64x1 images, but the model"),
    (dict(action_dim=3), "has 3-d actions, but the model of run {run} takes 2-d actions"),
])
def test_resume_with_data_that_does_not_fit_the_model(run_copy, tmp_path, capsys, data,
                                                      message):
    path = write_episodes(tmp_path / "other.h5", **data)
    assert main(["train", "--resume", str(run_copy), "--data", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message.format(run=run_copy) in err and len(err.strip().splitlines()) == 1


def test_eval_with_a_model_that_does_not_fit_the_world(run_copy, capsys):
    save_model(WorldModel(ModelConfig(image_size=32, encoder_width=4)), run_copy)
    assert main(["eval", "--run", str(run_copy), "--episodes", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "world two_rooms" in err and "has 64x64x3 images, but the model of" in err
    assert "takes 32x32x3 images" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--model.history", "0"], "--model.history must be >= 1, got 0"),
    (["--lr", "-1"], "--lr must be a positive number, got -1.0"),
    (["--checkpoint-every", "0"], "--checkpoint-every must be >= 1, got 0"),
    (["--model.predictor-depth", "1"], "--model.predictor-depth must be >= 2, got 1"),
])
def test_bad_train_option_values(tiny_data, tmp_path, capsys, args, message):
    assert main([*TRAIN, "--data", str(tiny_data), "--run", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # refused before anything was written


@pytest.mark.parametrize("rank", [0, 1, 3])
def test_under_torchrun_rank_0_alone_prints_the_error(tiny_data, tmp_path, capsys, monkeypatch,
                                                      rank):
    for name, value in dict(RANK=rank, WORLD_SIZE=4, LOCAL_RANK=rank % 2).items():
        monkeypatch.setenv(name, str(value))  # what torchrun sets in each process it starts
    args = [*TRAIN, "--data", str(tiny_data), "--run", str(tmp_path / "r"), "--lr", "-1"]
    assert main(args) == 2  # every rank exits with the same code
    err = capsys.readouterr().err.strip().splitlines()
    if rank == 0:
        assert err == ["ami: error: --lr must be a positive number, got -1.0"]
    else:  # one line that names the rank, so that a rank that failed alone is still seen
        assert err == [f"ami: rank {rank}: stopped on an error (rank 0 prints it; --debug "
                       f"shows each rank's own)"]


@pytest.mark.parametrize("args, message", [
    (["--lr", "0.5"], "options differ: lr=0.5 (the run has 0.002)"),
    (["--model.embed-dim", "64"], "options differ: model.embed_dim=64 (the run has 16)"),
    (["--run", "elsewhere"], "name different runs"),
])
def test_resume_refuses_options_that_change_the_run(run_copy, capsys, args, message):
    before = (run_copy / "checkpoint.safetensors").read_bytes()
    assert main(["train", "--resume", str(run_copy), "--no-progress", *args]) == 2
    assert message in capsys.readouterr().err
    assert (run_copy / "checkpoint.safetensors").read_bytes() == before


def test_resume_of_a_directory_without_checkpoint(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--no-progress"]) == 2
    assert "no training checkpoint at" in capsys.readouterr().err


def test_a_new_run_does_not_overwrite_a_trained_one(run_copy, tiny_data, capsys):
    before = (run_copy / "model.safetensors").read_bytes()
    assert main([*TRAIN, "--data", str(tiny_data), "--run", str(run_copy)]) == 2
    assert f"continue it with `ami train --resume {run_copy}`" in capsys.readouterr().err
    assert (run_copy / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["--heuristic-ratio", "2"], "heuristic_ratio must be in [0, 1]"),
    (["--seed", "-3"], "seed must be >= 0"),
    (["--world", "two_room"], "unknown world 'two_room'. Known worlds: two_rooms, ballistic"),
])
def test_bad_collect_option_values(tmp_path, capsys, args, message):
    assert main(["collect", "--out", str(tmp_path / "d.h5"), "--episodes", "1", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_appending_episodes_of_another_shape(tmp_path, capsys):
    path = write_episodes(tmp_path / "d.h5", image_shape=(32, 32, 3), episodes=1)
    assert main(["collect", "--out", str(path), "--episodes", "1", "--steps", "5"]) == 2
    assert "holds images of shape (32, 32, 3), cannot append images of shape (64, 64, 3)" in \
        capsys.readouterr().err


def ami(*args):
    return subprocess.run([sys.executable, "-m", "ami.cli", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("args, shown", [
    (["train", "--stepz", "3"], ["Unrecognized options: --stepz", "--steps INT"]),
    (["train", "--model.history", "two"], ["Error parsing --model.history", "'two'"]),
    (["collect", "--episodes", "many"], ["Error parsing --episodes", "'many'"]),
])
def test_parse_errors_exit_2_and_say_what_was_wrong(args, shown):
    proc = ami(*args)
    assert proc.returncode == 2
    out = proc.stdout + proc.stderr
    assert all(s in out for s in shown), out
    assert "Traceback" not in out


def test_debug_shows_the_traceback(tmp_path):
    proc = ami("train", "--data", str(tmp_path / "missing.h5"), "--debug")
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "data file not found" in proc.stderr
