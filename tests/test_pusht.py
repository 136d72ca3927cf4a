"""PushT: the public geometry and dynamics, pixels, state access, the success test, and
collection with worker processes."""

import json
import math

import h5py
import numpy as np
import pytest

pytest.importorskip("pymunk")

from ami.config import CollectConfig  # noqa: E402
from ami.data.collect import collect  # noqa: E402
from ami.envs import PushT, make_env  # noqa: E402


def test_agent_pushes_the_block_along_and_the_block_stays_when_left_alone():
    env = PushT()
    env.reset(seed=0, options={"state": [256, 420, 256, 250, 0.0]})
    for _ in range(8):                       # straight up into the stem's end, centred
        _, _, _, _, info = env.step([0.0, -40.0])
    s = info["state"]
    assert s[3] < 245 and abs(s[2] - 256) < 5          # the block went up, not sideways
    assert s[1] > s[3] + 120 - 1                        # the agent is below the stem's end
    for _ in range(5):                       # the agent backs away: damping 0, the block stops
        _, _, _, _, info = env.step([0.0, 40.0])
    before = info["state"][2:]
    for _ in range(5):
        _, _, _, _, info = env.step([0.0, 0.0])
    assert np.allclose(info["state"][2:], before, atol=1e-3)


def test_action_offsets_are_norm_clipped_and_the_agent_stays_inside():
    env = PushT()
    env.reset(seed=0, options={"state": [100, 100, 400, 400, 0.0]})
    far = env.step([1000.0, 0.0])[4]["state"]
    env.set_state([100, 100, 400, 400, 0.0])
    edge = env.step([40.0, 0.0])[4]["state"]
    assert np.allclose(far, edge)
    for _ in range(40):
        s = env.step([-40.0, -40.0])[4]["state"]
    assert s[0] >= env.wall_margin + env.agent_radius - 1 and s[1] >= 19


def test_state_round_trip_and_render_is_a_function_of_the_state():
    env = PushT()
    env.reset(seed=3)
    for _ in range(10):
        env.step(env.action_space.sample())
    s = env.get_state()
    assert s.shape == (5,) and 0 <= s[4] < 2 * math.pi
    frame = env.render()
    other = PushT()
    other.set_state(s)
    assert np.array_equal(other.get_state(), s) and np.array_equal(other.render(), frame)
    # from the same state (agent at rest), the same actions give the same trajectory
    env.set_state(s)
    a = [env.step([20.0, -10.0])[4]["state"] for _ in range(5)]
    other.set_state(s)
    b = [other.step([20.0, -10.0])[4]["state"] for _ in range(5)]
    assert np.array_equal(np.array(a), np.array(b))


@pytest.mark.parametrize("size", [64, 96, 224])
def test_frames_at_each_size_show_the_agent_and_the_block_where_the_state_says(size):
    env = PushT(image_size=size)
    obs, _ = env.reset(seed=0, options={"state": [100, 100, 300, 300, 0.0]})
    assert obs.shape == (size, size, 3) and obs.dtype == np.uint8
    k = size / 512
    blue = (obs[..., 2].astype(int) - obs[..., 0]) > 100            # the agent is RoyalBlue
    ys, xs = np.nonzero(blue)
    assert abs(xs.mean() - 100 * k) < 1.5 and abs(ys.mean() - 100 * k) < 1.5
    grey = (np.abs(obs.astype(int) - [119, 136, 153]).sum(-1) < 30)  # the block's grey
    ys, xs = np.nonzero(grey)
    assert abs(xs.mean() - 300 * k) < 2                               # symmetric about x=300
    assert 300 * k < ys.mean() < 420 * k                              # the bar on top, y down
    with pytest.raises(ValueError, match="image_size"):
        PushT(image_size=65)


def test_success_needs_position_and_angle_within_tolerance():
    env = PushT()
    goal = np.array([200, 200, 300, 300, 0.1], np.float32)
    env.set_goal(goal)
    assert env.is_success(goal + [10, 0, 0, 10, 0.3])          # 14 units, 0.3 rad < π/9
    assert not env.is_success(goal + [15, 0, 0, 15, 0.0])      # 21 units ≥ 20
    assert not env.is_success(goal + [0, 0, 0, 0, 0.4])        # 0.4 rad ≥ π/9
    assert env.is_success(np.r_[goal[:4], 0.1 + 2 * math.pi - 0.05])   # angles wrap
    block_only = PushT(block_only=True)
    block_only.set_goal(goal)
    assert block_only.is_success(goal + [200, 0, 5, 0, 0.1])   # the agent is left free


def test_pose_goals_are_inside_the_arena_and_clear_of_the_agent():
    env = PushT(block_only=True)
    rng = np.random.default_rng(0)
    for seed in range(20):
        start = env.random_state(np.random.default_rng(seed))
        goal = env.sample_pose_goal(start, rng)
        shift = np.linalg.norm(goal[2:4] - start[2:4])
        assert 40 <= shift <= 100 and not env._overlaps(goal[:2], goal[2:4], float(goal[4]))


def test_collection_covers_contact_and_does_not_depend_on_the_workers(tmp_path):
    cfg = dict(world="pusht", episodes=6, steps=40, heuristic_ratio=1.0, seed=2)
    one = collect(CollectConfig(out=tmp_path / "one.h5", workers=1, **cfg), progress=False)
    two = collect(CollectConfig(out=tmp_path / "two.h5", workers=2, **cfg), progress=False)
    moved = []
    with h5py.File(one) as a, h5py.File(two) as b:
        assert a.attrs["world"] == "pusht" and list(a["episodes"]) == list(b["episodes"])
        for name in a["episodes"]:
            for key in ("frames", "actions", "states"):
                assert np.array_equal(a["episodes"][name][key][()], b["episodes"][name][key][()])
            states = a["episodes"][name]["states"][()]
            moved.append(np.linalg.norm(np.diff(states[:, 2:4], axis=0), axis=1) > 0.5)
    assert np.mean(moved) > 0.15    # the pusher is in contact with the block a good share


def test_make_env_builds_pusht_with_a_size():
    assert make_env("pusht", image_size=96).observation_space.shape == (96, 96, 3)


def test_trajectory_goals_come_from_a_held_out_episode_25_steps_on():
    from ami.config import EvalConfig
    from ami.evaluate.goals import HELD_OUT_SEED, eval_world
    env = eval_world("pusht", EvalConfig(goal_rule="trajectory"), 64)
    rng = np.random.default_rng(1)
    start, goal = env.sample_start_and_goal(rng)
    seed, actions = env._replay
    assert seed >= HELD_OUT_SEED and env.offset == 25 and len(actions) <= 100 - 25
    env.set_state(start)
    assert np.array_equal(env.get_state(), start) and not env.is_success()
    env.set_goal(goal)
    assert np.array_equal(env.render_state(goal), PushT().render_state(goal))


def test_ami_eval_on_a_pusht_run_uses_its_preset_protocol(tmp_path):
    from ami.cli import main
    data, run = tmp_path / "p.h5", tmp_path / "run"
    collect(CollectConfig(out=data, world="pusht", episodes=3, steps=30), progress=False)
    assert main(["train", "--data", str(data), "--run", str(run), "--steps", "5",
                 "--batch-size", "4", "--warmup", "1", "--model.embed-dim", "8",
                 "--model.encoder-width", "4", "--model.predictor-width", "32",
                 "--no-progress"]) == 0
    config = json.loads((run / "config.json").read_text())["train"]["model"]
    assert (config["history"], config["frameskip"], config["action_scale"]) == (2, 5, 40.0)
    for rule in ("trajectory", "pose"):
        args = ["eval", "--run", str(run), "--episodes", "1", "--plan.samples", "8",
                "--plan.iterations", "1", "--plan.elites", "2", "--plan.horizon", "1",
                "--no-progress", "--no-gif"]
        assert main(args + ([] if rule == "trajectory" else ["--goal-rule", "pose"])) == 0
        protocol = json.loads((run / "eval.json").read_text())["protocol"]
        assert protocol["budget"] == 50 and protocol["goal_rule"].startswith(
            "start: a state of a held-out" if rule == "trajectory" else "start: a random")
        assert "angle_tolerance" in protocol["success_test"]
