"""The `ami` command end to end with tiny sizes, and its one-line errors."""

import json
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest

from ami.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "ami.cli", *args], capture_output=True, text=True,
                          timeout=600)


def test_collect_train_eval_smoke(tmp_path):
    data, run = tmp_path / "d.h5", tmp_path / "run"
    assert main(["collect", "--out", str(data), "--episodes", "4", "--steps", "30"]) == 0
    assert main(["train", "--data", str(data), "--run", str(run), "--steps", "5",
                 "--batch-size", "8", "--model.encoder-width", "8", "--no-progress"]) == 0
    assert main(["eval", "--run", str(run), "--episodes", "2", "--budget", "10",
                 "--plan.samples", "16", "--plan.iterations", "2", "--plan.elites", "4",
                 "--no-progress"]) == 0
    result = json.loads((run / "eval.json").read_text())
    assert result["episodes"] == 2 and 0.0 <= result["success_rate"] <= 1.0
    assert result["ms_per_plan_median"] > 0 and result["mean_steps"] <= 10
    protocol = result["protocol"]
    assert protocol["budget"] == 10 and protocol["seeds"] == [1000, 1001]
    assert protocol["planner"]["samples"] == 16 and protocol["goal_rule"]
    assert "--actor cem" in protocol["command"] and "--plan.samples 16" in protocol["command"]
    # the first episode beside its goal frame (H, 2W+2), each frame upscaled 4x
    gif = imageio.mimread(run / "episode.gif")
    size = 4 * json.loads((run / "config.json").read_text())["train"]["model"]["image_size"]
    assert np.asarray(gif[0]).shape[:2] == (size, 2 * size + 8)

    # Mode-1: train the policy on the run's data, act with it alone, and seed CEM with it
    assert main(["train-policy", "--run", str(run), "--steps", "5", "--batch-size", "16"]) == 0
    assert (run / "policy.safetensors").exists()
    for extra in (["--actor", "policy", "--plan.horizon", "1"], ["--plan.policy-init"]):
        assert main(["eval", "--run", str(run), "--episodes", "1", "--budget", "10",
                     "--plan.samples", "16", "--plan.iterations", "2", "--plan.elites", "4",
                     "--no-progress", "--no-gif", *extra]) == 0
        assert json.loads((run / "eval.json").read_text())["episodes"] == 1


def test_demo_smoke(tmp_path):
    assert main(["demo", "--runs", str(tmp_path), "--collect.episodes", "3", "--collect.steps",
                 "30", "--train.steps", "3", "--train.batch-size", "8", "--train.no-progress",
                 "--eval.episodes", "1", "--eval.budget", "5", "--eval.plan.samples", "8",
                 "--eval.plan.iterations", "1", "--eval.plan.elites", "2",
                 "--eval.no-progress"]) == 0
    summary = json.loads(next(tmp_path.glob("two_rooms-*/demo.json")).read_text())
    assert summary["eval_episodes"] == 1 and summary["parameters"] > 0
    assert (tmp_path / "latest").is_symlink()


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "{tmp}/missing.h5"], "data file not found"),
    (["train", "--data", "{tmp}/bad.h5"], "not an HDF5 file"),
    (["collect", "--world", "tworooms", "--out", "{tmp}/x.h5"], "unknown world 'tworooms'"),
    (["eval", "--run", "{tmp}"], "no model"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "bad.h5").write_text("not hdf5")
    proc = run_cli(*[a.format(tmp=tmp_path) for a in args])
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_unknown_command():
    proc = run_cli("fly")
    assert proc.returncode == 2 and "unknown command" in proc.stderr


def test_heads_guardrail_critic_and_finetune_smoke(tiny_run, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert main(["train-critic", "--run", str(run), "--steps", "5", "--batch-size", "16"]) == 0
    assert main(["train-guardrail", "--run", str(run), "--steps", "5", "--batch-size", "16",
                 "--box", "4", "4", "20", "30"]) == 0
    summary = json.loads((run / "guardrail_summary.json").read_text())
    assert 0 < summary["forbidden_fraction"] < 1
    assert main(["eval", "--run", str(run), "--episodes", "2", "--budget", "10",
                 "--plan.samples", "16", "--plan.iterations", "2", "--plan.elites", "4",
                 "--cost.guardrail", "--cost.critic-weight", "0.5", "--cost.effort-weight", "0.1",
                 "--no-progress", "--no-gif"]) == 0
    result = json.loads((run / "eval.json").read_text())
    assert result["protocol"]["forbidden_box"] == [4, 4, 20, 30]
    assert result["violation_rate"] is not None
    first = result["per_episode"][0]["cost_terms_first_plan"]
    assert set(first) == {"goal", "effort", "critic", "guardrail"}
    out = tmp_path / "ft"   # the agent plans with the heads it is told to: a Mode-1 first guess
    assert main(["train-policy", "--run", str(run), "--steps", "5", "--batch-size", "16"]) == 0
    assert main(["finetune", "--run", str(run), "--out", str(out), "--episodes", "2",
                 "--budget", "20", "--steps", "3", "--batch-size", "8", "--plan.samples", "16",
                 "--plan.iterations", "2", "--plan.elites", "4", "--plan.policy-init"]) == 0
    report = json.loads((out / "finetune.json").read_text())
    assert report["agent_episodes"] == 2
    assert report["prediction_error_after"]["agent_episodes"] > 0
    for name in ("model", "critic", "guardrail", "policy"):
        assert (out / f"{name}.safetensors").exists(), name


def test_eval_refuses_a_world_without_goals(tiny_run, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "world": "ballistic"}))
    proc = run_cli("eval", "--run", str(run))
    assert proc.returncode == 2 and "has no goals to plan towards" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
