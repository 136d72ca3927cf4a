"""`ami collect`: run data-collection policies in a world and append episodes to HDF5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ami.config import CollectConfig
from ami.data.dataset import EpisodeWriter
from ami.data.policies import DoorSeeker, RandomWalk
from ami.envs import make_env
from ami.errors import AmiError


def collect(cfg: CollectConfig, progress: bool = True) -> Path:
    """Collect `cfg.episodes` episodes into `cfg.out`; returns the file's path."""
    if cfg.episodes < 1 or cfg.steps < 1:
        raise AmiError(f"episodes and steps must be positive, got {cfg.episodes} and {cfg.steps}")
    if not 0.0 <= cfg.heuristic_ratio <= 1.0:
        raise AmiError(f"heuristic_ratio must be in [0, 1], got {cfg.heuristic_ratio}")
    env = make_env(cfg.world, random_layout=cfg.random_layout)
    rng = np.random.default_rng(cfg.seed)
    frames = np.empty((cfg.steps + 1, *env.observation_space.shape), np.uint8)
    actions = np.empty((cfg.steps, env.action_space.shape[0]), np.float32)
    states = np.empty((cfg.steps + 1, 2), np.float32)
    with EpisodeWriter(cfg.out, cfg.world, env.observation_space.shape,
                       env.action_space.shape[0]) as writer:
        first = len(writer)
        for i in tqdm(range(cfg.episodes), desc="collect", unit="ep", disable=not progress):
            obs, info = env.reset(seed=cfg.seed * 1_000_003 + first + i)
            policy = (DoorSeeker(env, rng) if rng.uniform() < cfg.heuristic_ratio
                      else RandomWalk(env.max_action_norm, rng))
            frames[0], states[0] = obs, info["state"]
            for t in range(cfg.steps):
                a = np.clip(policy(states[t]), env.action_space.low, env.action_space.high)
                obs, _, _, _, info = env.step(a)
                # store the action the world applied (norm-clipped), not the raw proposal
                n = np.linalg.norm(a)
                actions[t] = a * min(1.0, env.max_action_norm / max(n, 1e-12))
                frames[t + 1], states[t + 1] = obs, info["state"]
            writer.append(frames, actions, states)
    return Path(cfg.out)
