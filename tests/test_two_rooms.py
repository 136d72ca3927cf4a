"""Two-Rooms dynamics: walls block, the door lets through, goals are scored with the true state."""

import numpy as np
import pytest

from ami.envs import TwoRooms, make_env
from ami.errors import AmiError


def test_inner_wall_blocks_outside_the_door():
    env = TwoRooms()
    xy = np.array([25.0, 10.0], np.float32)  # left room, far above the door
    for _ in range(20):
        xy = env.move(xy, np.array([2.45, 0.0]))
    assert xy[0] == pytest.approx(env.wall_left)
    assert env.room_of(xy) == 0


def test_door_lets_through():
    env = TwoRooms()
    xy = np.array([25.0, env.layout.door_center], np.float32)
    for _ in range(10):
        xy = env.move(xy, np.array([2.45, 0.0]))
    assert env.room_of(xy) == 1 and xy[0] > env.wall_right


def test_slides_along_wall_and_stays_in_arena():
    env = TwoRooms()
    xy = np.array([25.0, 10.0], np.float32)
    xy2 = env.move(env.move(xy, [2.0, 1.0]), [2.0, 1.0])
    assert xy2[1] > xy[1]                     # the y part of a push into the wall still moves it
    for _ in range(100):
        xy = env.move(xy, [-2.0, -2.0])
    assert xy[0] == pytest.approx(env.lo) and xy[1] == pytest.approx(env.lo)


def test_action_norm_is_clipped():
    env = TwoRooms()
    xy = np.array([10.0, 30.0], np.float32)
    assert np.linalg.norm(env.move(xy, [100.0, 0.0]) - xy) == pytest.approx(2.45, abs=1e-5)


def test_goal_sampler_puts_start_and_goal_in_different_rooms():
    env = TwoRooms()
    rng = np.random.default_rng(0)
    for _ in range(200):
        s, g = env.sample_start_and_goal(rng)
        assert env.room_of(s) != env.room_of(g)


def test_success_and_render():
    env = TwoRooms()
    obs, info = env.reset(seed=0, options={"state": [10, 10], "goal": [12, 12]})
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert info["success"]
    y, x = np.unravel_index(obs[..., 0].argmax(), obs.shape[:2])
    assert (x, y) == (10, 10)  # the dot is drawn where the state says
    env.set_goal([50, 50])
    assert not env.is_success()


def test_seeded_reset_is_deterministic_and_random_layout_moves_the_wall():
    a, b = TwoRooms(random_layout=True), TwoRooms(random_layout=True)
    oa, _ = a.reset(seed=5)
    ob, _ = b.reset(seed=5)
    assert np.array_equal(oa, ob)
    walls = {round(a.reset(seed=s)[0] is not None and a.layout.wall_x, 3) for s in range(5)}
    assert len(walls) > 1


def test_unknown_world_suggests_names():
    with pytest.raises(AmiError, match="two_rooms"):
        make_env("two_room")


def test_far_goal_rule_keeps_both_ends_from_the_door_and_is_two_rooms_only():
    from ami.envs import Maze
    from ami.evaluate.planning import sample_task_states
    env = TwoRooms()
    door = np.array([env.layout.wall_x, env.layout.door_center])
    rng = np.random.default_rng(0)
    for _ in range(50):
        start, goal = sample_task_states(env, "far", rng, None)
        assert np.linalg.norm(start - door) >= 20 and np.linalg.norm(goal - door) >= 20
        assert (start[0] < door[0]) != (goal[0] < door[0])          # different rooms
    with pytest.raises(AmiError, match="far is Two-Rooms'"):
        sample_task_states(Maze(), "far", rng, None)
