"""Any gymnasium environment from its pixels: collect, bad input, and collect → train → eval on
Pendulum-v1, which ami does not ship."""

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from ami.cli import main
from ami.config import CollectConfig
from ami.data.collect import collect
from ami.envs import make_env
from ami.errors import AmiError

pytest.importorskip("pygame")  # gymnasium's classic-control renderer


def test_pendulum_is_collected_from_its_pixels_with_its_observation_as_state(tmp_path):
    out = collect(CollectConfig(out=tmp_path / "p.h5", world="Pendulum-v1", episodes=3,
                                steps=12, image_size=32, workers=2), progress=False)
    with h5py.File(out) as f:
        assert f.attrs["world"] == "Pendulum-v1"
        ep = f["episodes"]["000000"]
        assert ep["frames"].shape == (13, 32, 32, 3) and ep["states"].shape == (13, 3)
        cos, sin = ep["states"][:, 0], ep["states"][:, 1]
        assert np.allclose(cos**2 + sin**2, 1, atol=1e-5)        # (cos θ, sin θ, θ')
        assert np.all(np.abs(ep["actions"][()]) <= 2.0)
        assert ep["frames"][()].std() > 0


def test_a_class_with_image_observations_and_a_user_policy(tmp_path):
    out = collect(CollectConfig(out=tmp_path / "d.h5", world="tests.gym_fixtures:ImageDot",
                                episodes=2, steps=5, image_size=32,
                                policy="tests.gym_fixtures:push_right"), progress=False)
    with h5py.File(out) as f:
        ep = f["episodes"]["000000"]
        assert "states" not in ep                       # image observations: no state vector
        assert np.array_equal(ep["actions"][()], np.tile([2.0, 0.0], (5, 1)))
        assert ep.attrs["policy"] == "tests.gym_fixtures:push_right"


@pytest.mark.parametrize("env, message", [
    ("Pendulm-v1", "unknown world 'Pendulm-v1'.*Did you mean Pendulum-v1"),
    ("CartPole-v1", "action space is Discrete.*continuous"),
    ("tests.gym_fixtures:NoPixels", "no pixels"),
    ("tests.gym_fixtures:NoSuchEnv", "has no 'NoSuchEnv'"),
])
def test_bad_environments_are_one_line_errors(env, message, capsys):
    with pytest.raises(AmiError, match=message):
        make_env(env)
    assert main(["collect", "--env", env, "--out", "/nonexistent/x.h5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ami: error:") and "\n" not in err


def test_collect_train_eval_on_pendulum_from_pixels(tmp_path, capsys):
    """The whole loop through the real entry point, on an environment ami does not ship."""
    data, run = tmp_path / "pendulum.h5", tmp_path / "run"
    assert main(["collect", "--env", "Pendulum-v1", "--out", str(data), "--episodes", "4",
                 "--steps", "30", "--image-size", "32"]) == 0
    assert main(["train", "--data", str(data), "--run", str(run), "--steps", "15",
                 "--batch-size", "8", "--warmup", "2", "--model.embed-dim", "8",
                 "--model.encoder-width", "4", "--model.predictor-width", "32",
                 "--no-progress"]) == 0
    assert main(["eval", "--run", str(run), "--goal-rule", "trajectory", "--goal-offset", "10",
                 "--episodes", "2", "--budget", "10", "--plan.samples", "16",
                 "--plan.iterations", "2", "--plan.elites", "4", "--plan.horizon", "2",
                 "--no-progress", "--no-gif"]) == 0
    result = json.loads((run / "eval.json").read_text())
    assert result["protocol"]["world"] == "Pendulum-v1" and result["episodes"] == 2
    assert "vector observation" in result["protocol"]["success_test"]
    for e in result["per_episode"]:
        assert len(e["start"]) == len(e["goal"]) == 3 and e["plans"] >= 1
    capsys.readouterr()
    # the default goal rule (rooms) does not exist in Pendulum: one line naming the way out
    assert main(["eval", "--run", str(run), "--episodes", "1", "--no-progress"]) == 2
    assert "--goal-rule trajectory" in capsys.readouterr().err


def test_trajectory_goals_replay_a_held_out_episode_exactly():
    from ami.config import EvalConfig
    from ami.evaluate.goals import eval_world
    env = eval_world("Pendulum-v1", EvalConfig(goal_rule="trajectory", goal_offset=25), 32)
    rng = np.random.default_rng(0)
    for _ in range(3):
        start, goal = env.sample_start_and_goal(rng)
        env.set_state(start)
        assert np.array_equal(env.get_state(), start)   # replayed from the episode's seed
        assert not env.is_success(start)
        assert env.render_state(goal).shape == (32, 32, 3)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_pygame_world_leaves_sigterm_to_the_process(tmp_path):
    """SDL (pygame) takes over SIGTERM when it starts unless told not to; a collection worker
    that ignored the pool's SIGTERM hung `ami collect --workers 2` on Pendulum now and then."""
    script = ("from ami.envs.gym_world import make_gym_world\n"
              "w = make_gym_world('Pendulum-v1'); w.reset(seed=0); w.render()\n"
              "mask = next(l for l in open('/proc/self/status') if l.startswith('SigCgt'))\n"
              "print(int(mask.split()[1], 16) >> 14 & 1)\n")           # bit of SIGTERM (15)
    env = {k: v for k, v in os.environ.items() if k != "SDL_NO_SIGNAL_HANDLERS"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, cwd=tmp_path, check=True).stdout
    assert out.strip() == "0"
