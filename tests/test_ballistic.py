"""The ballistic world: gravity, bounces, collisions, occlusion, pushes, and its collection."""

import json

import h5py
import numpy as np
import pytest

from ami.config import BallisticConfig, CollectConfig
from ami.data.collect import collect
from ami.data.dataset import EpisodeDataset
from ami.envs import Ballistic, make_env
from ami.envs.ballistic import Balls, physics_step
from ami.errors import AmiError


def one_ball(x, y, vx, vy, radius=4.0) -> Balls:
    return Balls(np.array([[x, y]], float), np.array([[vx, vy]], float), np.array([radius]),
                 np.array([0]), np.array([True]))


def test_gravity_accelerates_a_ball_in_free_flight():
    env = Ballistic()
    b = one_ball(20.0, 20.0, 1.0, -2.0)
    for t in range(1, 6):
        b = env.step_balls(b)
        g = env.config.gravity
        assert b.vel[0, 1] == pytest.approx(-2.0 + t * g)
        assert b.pos[0, 0] == pytest.approx(20.0 + t)
        # semi-implicit Euler: y_t = y_0 + sum of v_1..v_t
        assert b.pos[0, 1] == pytest.approx(20.0 + sum(-2.0 + k * g for k in range(1, t + 1)))


def test_floor_and_wall_bounces_keep_a_share_of_the_speed():
    env = Ballistic(BallisticConfig(gravity=0.0, restitution=0.8))
    floor = env.hi - 4.0
    b = env.step_balls(one_ball(30.0, floor - 1.0, 0.0, 3.0))
    assert b.vel[0, 1] == pytest.approx(-0.8 * 3.0)
    assert b.pos[0, 1] == pytest.approx(floor - 0.8 * 2.0)   # the overshoot, reflected
    wall = env.lo + 4.0
    b = env.step_balls(one_ball(wall + 0.5, 30.0, -2.0, 0.0))
    assert b.vel[0, 0] == pytest.approx(0.8 * 2.0)
    assert b.pos[0, 0] >= wall


def test_balls_stay_in_the_box_and_pushes_change_ball_zero_only():
    env = Ballistic(BallisticConfig(balls=3))
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(400):
        before = env.get_state().reshape(3, 4)
        action = rng.uniform(-5, 5, 2)
        _, _, _, _, info = env.step(action)
        s = info["state"].reshape(3, 4)
        r = np.asarray(env.config.radii[:3])
        assert np.all(s[:, :2] >= env.lo + r[:, None] - 1e-4)
        assert np.all(s[:, :2] <= env.hi - r[:, None] + 1e-4)
        assert np.isfinite(s).all() and before.shape == s.shape
    # a push far from walls and other balls is a change of ball 0's velocity, norm-clipped
    env.set_state([20, 20, 0, 0, 50, 50, 0, 0, 20, 50, 0, 0])
    env.step([30.0, 40.0])
    v = env.get_state().reshape(3, 4)[:, 2:]
    assert v[0] == pytest.approx([1.8, 2.4 + env.config.gravity], abs=1e-5)
    assert v[1] == pytest.approx([0.0, env.config.gravity]) and v[2][0] == 0.0


def test_collisions_conserve_momentum_and_elastic_ones_energy():
    cfg = BallisticConfig(balls=2, gravity=0.0, restitution=1.0, radii=(4.0, 3.0))
    env = Ballistic(cfg)
    b = Balls(np.array([[20.0, 30.0], [28.0, 31.0]]), np.array([[2.0, 0.0], [-1.0, 0.0]]),
              np.array([4.0, 3.0]), np.array([0, 1]), np.array([True, True]))
    mass = b.radius**2
    after = physics_step(b, 0.0, 1.0, env.lo, env.hi)
    assert (mass[:, None] * after.vel).sum(0) == pytest.approx((mass[:, None] * b.vel).sum(0))
    energy = lambda s: float((mass * (s.vel**2).sum(1)).sum())
    assert energy(after) == pytest.approx(energy(b))
    assert after.vel[0, 0] < 2.0 and after.vel[1, 0] > -1.0          # they pushed each other
    assert np.hypot(*(after.pos[1] - after.pos[0])) >= 7.0 - 1e-9     # and no longer overlap


def test_render_draws_balls_where_the_state_says_and_the_occluder_hides_them():
    env = Ballistic()
    env.reset(seed=0, options={"state": [15.0, 40.0, 0.0, 0.0], "colours": [2]})
    frame = env.render()
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    ball = np.all(frame == env.palette[2].astype(np.uint8), axis=-1)
    ys, xs = np.nonzero(ball)
    assert abs(xs.mean() - 15.0) < 0.5 and abs(ys.mean() - 40.0) < 0.5
    env.set_state([env.config.occluder_x, 40.0, 0.0, 0.0])
    assert env.visible_area(env.balls, 0) == 0.0
    hidden = env.render()
    gone = env.balls.copy()
    gone.present[:] = False
    assert np.array_equal(hidden, env.render_balls(gone))       # behind the bar: not drawn
    assert env.visible_area(env.balls, 0) == 0.0
    env.set_state([15.0, 40.0, 0.0, 0.0])
    assert env.visible_area(env.balls, 0) == pytest.approx(np.pi * 16, rel=0.05)


def test_seeded_reset_is_deterministic_and_set_state_round_trips():
    a, b = make_env("ballistic"), make_env("ballistic")
    oa, ia = a.reset(seed=7)
    ob, ib = b.reset(seed=7)
    assert np.array_equal(oa, ob) and np.array_equal(ia["state"], ib["state"])
    for _ in range(30):
        assert np.array_equal(a.step([0.5, 0])[0], b.step([0.5, 0])[0])
    assert not np.array_equal(a.reset(seed=8)[1]["state"], ia["state"])
    s = a.get_state()
    a.step([0, 0])
    a.set_state(s)
    assert np.array_equal(a.get_state(), s)


def test_recolouring_changes_colour_only():
    """A world that recolours every step moves exactly as its twin that never does: same states,
    the same frame once given the twin's colours, and a colour that changes at every step."""
    recoloured = Ballistic(BallisticConfig(recolour_prob=1.0))
    twin = Ballistic(BallisticConfig(recolour_prob=0.0))
    recoloured.reset(seed=0)
    twin.reset(seed=0)
    colours, shown = [], 0
    for t in range(30):
        action = [0.5 * np.cos(t), 0.5 * np.sin(t)]
        frame, *_, info = recoloured.step(action)
        twin_frame, *_, twin_info = twin.step(action)
        np.testing.assert_array_equal(info["state"], twin_info["state"])
        seen = recoloured.visible_area(recoloured.balls, 0) > 0   # not behind the occluder
        differs = recoloured.balls.colour[0] != twin.balls.colour[0]
        assert np.array_equal(frame, twin_frame) != bool(seen and differs)
        shown += bool(seen and differs)
        repainted = recoloured.balls.copy()
        repainted.colour = twin.balls.colour.copy()
        np.testing.assert_array_equal(recoloured.render_balls(repainted), twin_frame)
        colours.append(int(recoloured.balls.colour[0]))
    assert all(a != b for a, b in zip(colours, colours[1:], strict=False))
    assert int(twin.balls.colour[0]) == 0
    assert shown >= 10                          # the frames compared did show a new colour


def test_bad_world_options_are_refused():
    with pytest.raises(ValueError, match="balls"):
        Ballistic(BallisticConfig(balls=4))
    with pytest.raises(AmiError, match="world ballistic: radii"):
        collect(CollectConfig(out="unused.h5", world="ballistic",
                              ballistic=BallisticConfig(balls=2, radii=(3.0,))), progress=False)


def test_collect_ballistic_records_states_and_its_settings(tmp_path):
    cfg = CollectConfig(out=tmp_path / "b.h5", world="ballistic", episodes=3, steps=25,
                        push_prob=0.2, ballistic=BallisticConfig(balls=2))
    d = EpisodeDataset.load(collect(cfg, progress=False))
    assert d.world == "ballistic" and d.num_episodes == 3 and d.action_dim == 2
    assert d.states.shape == (3 * 26, 8)
    pushes = np.linalg.norm(d.actions, axis=1)
    assert 0 < (pushes > 0).mean() < 0.6 and pushes.max() <= Ballistic.max_action_norm + 1e-5
    # the stored frames are the rendering of the stored states
    env = Ballistic(BallisticConfig(balls=2))
    ep = d.episode(1)
    env.reset(seed=cfg.seed * 1_000_003 + 1)
    assert np.array_equal(env.get_state(), ep["states"][0])
    for t in range(25):
        obs, _, _, _, info = env.step(ep["actions"][t])
        assert np.array_equal(obs, ep["frames"][t + 1])
    with h5py.File(cfg.out) as f:
        provenance = json.loads(f.attrs["provenance"])
    assert provenance["push_prob"] == 0.2 and provenance["ballistic"]["balls"] == 2
    with pytest.raises(AmiError, match="ballistic="):
        collect(CollectConfig(out=cfg.out, world="ballistic", episodes=4, steps=25,
                              push_prob=0.2, resume=True), progress=False)
