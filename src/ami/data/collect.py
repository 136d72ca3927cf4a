"""`ami collect`: run data-collection policies in a world and append episodes to HDF5.

Episode i of a collection depends only on (seed, i): the world is reset with a seed made from
both, and the policy draws from its own generator seeded with both. So `--resume` after a crash
adds exactly the episodes an uninterrupted collection would have written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ami.config import CollectConfig, to_dict
from ami.data.dataset import EpisodeWriter
from ami.data.policies import COLLECTION_POLICIES
from ami.envs import make_env
from ami.errors import AmiError

# per world, the settings that decide what an episode holds; `--resume` must not change them
_PROVENANCE = {
    "two_rooms": ("world", "steps", "heuristic_ratio", "random_layout", "seed"),
    "ballistic": ("world", "steps", "push_prob", "ballistic", "seed"),
}
# per world, its constructor's options, taken from the collection's
_WORLD_OPTIONS = {
    "two_rooms": lambda cfg: {"random_layout": cfg.random_layout},
    "ballistic": lambda cfg: {"config": cfg.ballistic},
}


def collect(cfg: CollectConfig, progress: bool = True) -> Path:
    """Collect `cfg.episodes` episodes into `cfg.out` (with `cfg.resume`: until it holds that
    many); returns the file's path."""
    if cfg.episodes < 1 or cfg.steps < 1:
        raise AmiError(f"episodes and steps must be positive, got {cfg.episodes} and {cfg.steps}")
    if not 0.0 <= cfg.heuristic_ratio <= 1.0:
        raise AmiError(f"heuristic_ratio must be in [0, 1], got {cfg.heuristic_ratio}")
    if not 0.0 <= cfg.push_prob <= 1.0:
        raise AmiError(f"push_prob must be in [0, 1], got {cfg.push_prob}")
    if cfg.seed < 0:
        raise AmiError(f"seed must be >= 0, got {cfg.seed}")
    options = _WORLD_OPTIONS.get(cfg.world, lambda _: {})(cfg)
    try:
        env = make_env(cfg.world, **options)  # an unknown world: the error names the known ones
    except ValueError as e:  # a world option out of range
        raise AmiError(f"world {cfg.world}: {e}") from None
    make_policy = COLLECTION_POLICIES[cfg.world]
    frames = np.empty((cfg.steps + 1, *env.observation_space.shape), np.uint8)
    actions = np.empty((cfg.steps, env.action_space.shape[0]), np.float32)
    states = np.empty((cfg.steps + 1, len(env.get_state())), np.float32)
    provenance = _provenance(cfg)
    with EpisodeWriter(cfg.out, cfg.world, env.observation_space.shape,
                       env.action_space.shape[0], provenance) as writer:
        first = len(writer)
        if cfg.resume:
            _check_same_collection(cfg, writer.provenance)
        last = max(first, cfg.episodes) if cfg.resume else first + cfg.episodes
        for index in tqdm(range(first, last), desc="collect", unit="ep", disable=not progress):
            rng = np.random.default_rng([cfg.seed, index])
            obs, info = env.reset(seed=cfg.seed * 1_000_003 + index)
            policy, policy_name = make_policy(env, rng, cfg)
            frames[0], states[0] = obs, info["state"]
            for t in range(cfg.steps):
                a = np.clip(policy(states[t]), env.action_space.low, env.action_space.high)
                obs, _, _, _, info = env.step(a)
                # store the action the world applied (norm-clipped), not the raw proposal
                n = np.linalg.norm(a)
                actions[t] = a * min(1.0, env.max_action_norm / max(n, 1e-12))
                frames[t + 1], states[t + 1] = obs, info["state"]
            writer.append(frames, actions, states, seed=cfg.seed, index=index,
                          policy=policy_name)
    return Path(cfg.out)


def _provenance(cfg: CollectConfig) -> dict:
    """The settings that decide what the world's episodes hold, JSON-ready."""
    settings = to_dict(cfg)
    return {k: settings[k] for k in _PROVENANCE[cfg.world]}


def _check_same_collection(cfg: CollectConfig, saved: dict | None) -> None:
    if saved is None:  # a file from before provenance was recorded: nothing to compare
        return
    now = _provenance(cfg)
    differ = [f"{k}={now[k]!r} (the file has {saved[k]!r})" for k in now
              if k in saved and saved[k] != now[k]]
    if differ:
        raise AmiError(f"{cfg.out}: --resume continues the collection the file was made with, "
                       f"but these options differ: {', '.join(differ)}")
