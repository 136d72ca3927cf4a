"""Violation-of-expectation clips: matched pairs that share their start, one possible and one
impossible (the intuitive-physics protocol of V-JEPA, in worlds whose laws we know exactly).

Ballistic: a ball teleports (continuity), vanishes behind the occluder (permanence), passes
through a side wall (solidity), or gravity reverses mid-flight. Two-Rooms: the dot teleports.
Both worlds: a colour change, the control — visually different, physically possible. Clips have
no pushes and no random recolouring, so that the pair differs only by the violation.

A pair is drawn from its own generator, seeded with (seed, category, index): the suite is the
same on every machine and for every model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ami.data.policies import RandomWalk
from ami.envs.ballistic import Ballistic, Balls
from ami.envs.two_rooms import TwoRooms

CATEGORIES = {
    "ballistic": ("teleport", "vanish", "pass_through", "gravity", "colour"),
    "two_rooms": ("teleport", "colour"),
}
CONTROLS = ("colour",)        # possible "violations": a good model is not surprised by them
TELEPORT_DISTANCE = 16.0      # px: the smallest jump of a teleport
TWO_ROOMS_COLOUR = (0.0, 1.0, 0.5)   # the control's green dot (the world's dot is orange)


@dataclass
class Pair:
    """Two clips of `len(actions) + 1` frames that are the same up to frame `event`."""

    category: str
    possible: np.ndarray           # (T+1, H, W, C) uint8
    impossible: np.ndarray         # (T+1, H, W, C) uint8
    actions: np.ndarray            # (T, A) float32, taken in both clips
    event: int                     # first frame whose state (or colour) differs
    possible_states: np.ndarray    # (T+1, S) float32
    impossible_states: np.ndarray  # (T+1, S) float32


def make_pairs(world: str, env, category: str, count: int, steps: int, seed: int) -> list[Pair]:
    """`count` pairs of one category, clips of `steps` steps, in the world `env`."""
    if category not in CATEGORIES.get(world, ()):
        raise ValueError(f"no '{category}' clips in world {world}; it has "
                         f"{', '.join(CATEGORIES.get(world, ())) or 'none'}")
    make = _ballistic_pair if world == "ballistic" else _two_rooms_pair
    index = CATEGORIES[world].index(category)
    return [make(env, category, steps, np.random.default_rng([seed, index, i]))
            for i in range(count)]


def event_window(steps: int) -> tuple[int, int]:
    """Frames where a violation may happen: a third of the clip in, at least 10 frames of
    context before it and 10 frames after it to see its consequences."""
    lo = max(10, steps // 3)
    hi = min(steps - 10, 2 * steps // 3)
    if hi < lo:
        raise ValueError(f"clips of {steps} steps are too short for the suite; use >= 30")
    return lo, hi


# --------------------------------------------------------------------------- ballistic

def _ballistic_pair(env: Ballistic, category: str, steps: int, rng: np.random.Generator) -> Pair:
    if category == "vanish" and not env.config.occluder:
        raise ValueError("the vanish category needs a world with an occluder")
    lo, hi = event_window(steps)
    for _ in range(10_000):  # starts that do not lead to the event are drawn again
        start = env.sample_balls(rng)
        possible = _simulate(env, start, steps)
        k = int(rng.integers(len(start.radius)))
        found = _BALLISTIC_EVENTS[category](env, possible, k, lo, hi, rng)
        if found is None:
            continue
        event, impossible = found
        actions = np.zeros((steps, 2), np.float32)
        return Pair(category, _render(env, possible), _render(env, impossible), actions, event,
                    _states(possible), _states(impossible))
    raise RuntimeError(f"no start led to a '{category}' event in 10,000 draws")


def _simulate(env: Ballistic, start: Balls, steps: int, **laws) -> list[Balls]:
    """[start, then `steps` steps of the world's dynamics (with `laws` changed)]."""
    out = [start]
    for _ in range(steps):
        out.append(env.step_balls(out[-1], **laws))
    return out


def _continue(env: Ballistic, before: list[Balls], changed: Balls, steps: int,
              **laws) -> list[Balls]:
    """`before`, then `changed`, then the dynamics from it until the clip has `steps` steps."""
    return [*before, *_simulate(env, changed, steps - len(before), **laws)]


def _visible(env: Ballistic, balls: Balls, k: int, share: float) -> bool:
    return env.visible_area(balls, k) >= share * np.pi * balls.radius[k] ** 2


def _teleport(env, possible, k, lo, hi, rng):
    t = int(rng.integers(lo, hi + 1))
    if not (_visible(env, possible[t - 1], k, 0.5) and _visible(env, possible[t], k, 0.5)):
        return None
    jumped = possible[t].copy()
    r = jumped.radius[k]
    for _ in range(100):
        xy = rng.uniform(env.lo + r, env.hi - r, size=2)
        jumped.pos[k] = xy
        others_clear = all(np.hypot(*(xy - jumped.pos[j])) > r + jumped.radius[j] + 1
                           for j in range(len(jumped.radius)) if j != k)
        if np.hypot(*(xy - possible[t].pos[k])) >= TELEPORT_DISTANCE and others_clear \
                and _visible(env, jumped, k, 0.9):
            return t, _continue(env, possible[:t], jumped, len(possible) - 1)
    return None


def _vanish(env, possible, k, lo, hi, rng):
    hidden = [t for t in range(lo, hi + 1) if env.visible_area(possible[t], k) == 0.0]
    if not hidden:
        return None
    t = hidden[0]
    if env.visible_area(possible[t - 1], k) == 0.0:  # hidden since before the window
        return None
    # the possible ball comes out again, well before the clip ends
    if not any(_visible(env, possible[u], k, 0.5) for u in range(t + 1, len(possible) - 5)):
        return None
    gone = possible[t].copy()
    gone.present[k] = False
    return t, _continue(env, possible[:t], gone, len(possible) - 1)


def _pass_through(env, possible, k, lo, hi, rng):
    no_wall = np.ones(len(possible[0].radius), bool)
    no_wall[k] = False
    for t in range(lo, hi + 1):
        free = env.step_balls(possible[t - 1], side_walls=no_wall)
        if not np.allclose(free.pos[k], possible[t].pos[k]):  # the wall stopped ball k here
            rest = _simulate(env, free, len(possible) - 1 - t, side_walls=no_wall)
            return t, [*possible[:t], *rest]
    return None


def _gravity(env, possible, k, lo, hi, rng):
    t = int(rng.integers(lo, hi + 1))
    g = env.config.gravity
    # mid-flight: nothing but gravity acts on ball k from just before t to well after it
    for u in range(t, min(t + 6, len(possible))):
        a, b = possible[u - 1], possible[u]
        if not (np.isclose(b.vel[k, 1], a.vel[k, 1] + g) and np.isclose(b.vel[k, 0], a.vel[k, 0])):
            return None
    if not _visible(env, possible[t], k, 0.5):
        return None
    rest = _simulate(env, possible[t - 1], len(possible) - t, gravity=-g)
    return t, [*possible[:t - 1], *rest]


def _colour(env, possible, k, lo, hi, rng):
    t = int(rng.integers(lo, hi + 1))
    if not _visible(env, possible[t], k, 0.5):
        return None
    new = int(rng.choice([c for c in range(len(env.palette)) if c != possible[t].colour[k]]))
    recoloured = [b.copy() for b in possible]
    for b in recoloured[t:]:
        b.colour[k] = new
    return t, recoloured


_BALLISTIC_EVENTS = {"teleport": _teleport, "vanish": _vanish, "pass_through": _pass_through,
                     "gravity": _gravity, "colour": _colour}


def _render(env: Ballistic, clip: list[Balls]) -> np.ndarray:
    return np.stack([env.render_balls(b) for b in clip])


def _states(clip: list[Balls]) -> np.ndarray:
    return np.stack([b.state() for b in clip])


# --------------------------------------------------------------------------- Two-Rooms

def _two_rooms_pair(env: TwoRooms, category: str, steps: int, rng: np.random.Generator) -> Pair:
    lo, hi = event_window(steps)
    start = env.free_position(int(rng.integers(2)), rng)
    walk = RandomWalk(env.max_action_norm, rng)
    actions = np.stack([walk(None) for _ in range(steps)]).astype(np.float32)
    possible = _walk(env, start, actions)
    t = int(rng.integers(lo, hi + 1))
    impossible, colours = possible.copy(), [None] * (steps + 1)
    if category == "teleport":
        for _ in range(1000):
            xy = env.free_position(int(rng.integers(2)), rng)
            if np.hypot(*(xy - possible[t])) >= TELEPORT_DISTANCE:
                break
        # the dot jumps at frame t, then moves as the same actions move it from there
        impossible = np.concatenate([possible[:t], _walk(env, xy, actions[t:])])
    else:
        colours[t:] = [TWO_ROOMS_COLOUR] * (steps + 1 - t)
    frames = np.stack([env.render_state(xy) for xy in possible])
    changed = np.stack([env.render_state(xy, c) for xy, c in zip(impossible, colours, strict=True)])
    return Pair(category, frames, changed, actions, t, possible, impossible)


def _walk(env: TwoRooms, start: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Positions (len(actions) + 1, 2) from `start` under `actions`."""
    xy = [np.asarray(start, np.float32)]
    for a in actions:
        xy.append(env.move(xy[-1], a))
    return np.stack(xy)
