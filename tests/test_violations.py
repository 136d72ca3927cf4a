"""Violation-of-expectation pairs differ from each other only where, when and how they should."""

import numpy as np
import pytest

from ami.config import BallisticConfig
from ami.envs import Ballistic, TwoRooms
from ami.envs.ballistic import Balls
from ami.evaluate.violations import TELEPORT_DISTANCE, make_pairs

STEPS = 36


@pytest.fixture(scope="module")
def ballistic():
    return Ballistic(BallisticConfig(balls=2))


def balls_of(state, env):
    """Balls with the given (n, 4) state and the world's radii (colour does not matter)."""
    n = len(state)
    return Balls(state[:, :2].astype(float), state[:, 2:].astype(float),
                 np.asarray(env.config.radii[:n], float), np.arange(n), np.ones(n, bool))


def assert_changes_only_near_changed_balls(p, u, env, also=None):
    """Frame u of the pair differs only on pixels covered by a ball whose state differs."""
    yy, xx = np.nonzero(np.any(p.possible[u] != p.impossible[u], axis=-1))
    a, b = (s[u].reshape(-1, 4) for s in (p.possible_states, p.impossible_states))
    changed = [j for j in range(len(a)) if j == also or not np.array_equal(a[j], b[j])]
    near = np.full(len(xx), np.inf)
    for j in changed:
        r = env.config.radii[j]
        for x, y in (a[j, :2], b[j, :2]):
            near = np.minimum(near, np.hypot(xx - x, yy - y) - r)
    assert np.all(near <= 1.0)


def pairs(env, category, count=4):
    world = "ballistic" if isinstance(env, Ballistic) else "two_rooms"
    made = make_pairs(world, env, category, count, STEPS, seed=5)
    for p in made:
        t = p.event
        assert p.possible.shape == p.impossible.shape == (STEPS + 1, 64, 64, 3)
        assert p.actions.shape == (STEPS, 2)
        assert 10 <= t <= STEPS - 10
        # the shared start: frames and states equal before the event
        assert np.array_equal(p.possible[:t], p.impossible[:t])
        assert np.array_equal(p.possible_states[:t], p.impossible_states[:t])
    return made


def moved_ball(p):
    """The ball whose state the violation changed at the event."""
    d = np.abs(p.possible_states[p.event:] - p.impossible_states[p.event:]).reshape(
        -1, len(p.possible_states[0]) // 4, 4).max(axis=(0, 2))
    return int(d.argmax())


def test_teleport_jumps_at_the_event_and_keeps_the_velocity(ballistic):
    for p in pairs(ballistic, "teleport"):
        t = p.event
        s0, s1 = (x[t].reshape(-1, 4) for x in (p.possible_states, p.impossible_states))
        jumped = np.hypot(*(s1[:, :2] - s0[:, :2]).T)
        k = int(jumped.argmax())
        assert jumped[k] >= TELEPORT_DISTANCE
        assert np.allclose(s1[k, 2:], s0[k, 2:])                 # same velocity, new place
        assert not np.array_equal(p.possible[t], p.impossible[t])
        # after the jump the balls follow the world's law from their new places
        after = ballistic.step_balls(balls_of(s1, ballistic))
        assert np.allclose(after.state(), p.impossible_states[t + 1], atol=1e-4)
        for u in range(t, STEPS + 1):
            assert_changes_only_near_changed_balls(p, u, ballistic)


def test_vanish_removes_a_ball_only_while_hidden(ballistic):
    for p in pairs(ballistic, "vanish"):
        t, k = p.event, moved_ball(p)
        # the ball disappears behind the occluder: the event frame looks the same in both
        assert np.array_equal(p.possible[t], p.impossible[t])
        differ = [u for u in range(STEPS + 1) if not np.array_equal(p.possible[u],
                                                                    p.impossible[u])]
        assert differ and differ[0] > t                    # the difference shows only later
        # where the possible ball comes out again, the impossible clip shows nothing of it
        colour = ballistic.palette[k].astype(np.uint8)      # suite clips never recolour
        assert not np.all(p.impossible[t:] == colour, axis=-1).any()
        assert np.all(p.possible[differ[-1]] == colour, axis=-1).any()
        for u in differ:   # only pixels of the vanished ball, or of one it would have hit
            assert_changes_only_near_changed_balls(p, u, ballistic, also=k)


def test_pass_through_goes_into_the_wall_instead_of_bouncing(ballistic):
    for p in pairs(ballistic, "pass_through"):
        t, k = p.event, moved_ball(p)
        before = p.possible_states[t - 1].reshape(-1, 4)[k]
        bounced = p.possible_states[t].reshape(-1, 4)[k]
        through = p.impossible_states[t].reshape(-1, 4)[k]
        assert np.sign(bounced[2]) == -np.sign(before[2])     # the possible ball bounced
        assert through[2] == pytest.approx(before[2])          # the impossible one did not
        r = ballistic.config.radii[k]
        x = p.impossible_states[t:, 4 * k]
        assert x.min() < ballistic.lo + r or x.max() > ballistic.hi - r   # into the wall
        assert not np.array_equal(p.possible[t], p.impossible[t])
        for u in range(t, STEPS + 1):
            assert_changes_only_near_changed_balls(p, u, ballistic)


def test_gravity_reverses_at_the_event(ballistic):
    g = ballistic.config.gravity
    for p in pairs(ballistic, "gravity"):
        t = p.event
        vy_p = p.possible_states[t - 1:t + 1, 3::4]
        vy_i = p.impossible_states[t - 1:t + 1, 3::4]
        k = moved_ball(p)
        assert vy_i[1, k] - vy_i[0, k] == pytest.approx(-g, abs=1e-4)
        assert vy_p[1, k] - vy_p[0, k] == pytest.approx(g, abs=1e-4)
        for u in range(t, STEPS + 1):
            assert_changes_only_near_changed_balls(p, u, ballistic)


def test_colour_change_changes_nothing_but_the_balls_pixels(ballistic):
    for p in pairs(ballistic, "colour"):
        t = p.event
        assert np.array_equal(p.possible_states, p.impossible_states)   # physics untouched
        assert not np.array_equal(p.possible[t], p.impossible[t])
        for u in range(t, STEPS + 1):
            changed = np.any(p.possible[u] != p.impossible[u], axis=-1)
            yy, xx = np.nonzero(changed)
            balls = p.possible_states[u].reshape(-1, 4)
            near = np.min([np.hypot(xx - b[0], yy - b[1]) - r
                           for b, r in zip(balls, ballistic.config.radii, strict=False)], axis=0)
            assert np.all(near <= 1.0)            # only pixels covered by a ball change


def test_two_rooms_teleport_and_colour():
    env = TwoRooms()
    for p in pairs(env, "teleport"):
        t = p.event
        assert np.hypot(*(p.impossible_states[t] - p.possible_states[t])) >= TELEPORT_DISTANCE
        # after the jump the same actions move the dot on from its new place
        assert np.allclose(p.impossible_states[t + 1], env.move(p.impossible_states[t],
                                                                p.actions[t]))
    for p in pairs(env, "colour"):
        t = p.event
        assert np.array_equal(p.possible_states, p.impossible_states)
        changed = np.any(p.possible[t:] != p.impossible[t:], axis=-1)
        assert changed.any()
        for u in range(t, STEPS + 1):
            yy, xx = np.nonzero(changed[u - t])
            xy = p.possible_states[u]
            assert np.all(np.hypot(xx - xy[0], yy - xy[1]) < 6)   # the dot's pixels only


def test_the_default_colour_renders_the_world_as_before():
    env = TwoRooms()
    xy = np.array([20.3, 31.7], np.float32)
    assert np.array_equal(env.render_state(xy), env.render_state(xy, (1.0, 0.5, 0.0)))


def test_pairs_are_reproducible_and_categories_checked(ballistic):
    a = make_pairs("ballistic", ballistic, "teleport", 2, STEPS, seed=9)
    b = make_pairs("ballistic", ballistic, "teleport", 2, STEPS, seed=9)
    assert all(np.array_equal(x.impossible, y.impossible) for x, y in zip(a, b, strict=True))
    with pytest.raises(ValueError, match="no 'vanish' clips in world two_rooms"):
        make_pairs("two_rooms", TwoRooms(), "vanish", 1, STEPS, 0)
    with pytest.raises(ValueError, match="occluder"):
        make_pairs("ballistic", Ballistic(BallisticConfig(occluder=False)), "vanish", 1, STEPS, 0)
