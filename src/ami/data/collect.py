"""`ami collect`: run data-collection policies in a world and append episodes to HDF5.

Episode i of a collection depends only on (seed, i): the world is reset with a seed made from
both, and the policy draws from its own generator seeded with both. So `--resume` after a crash
adds exactly the episodes an uninterrupted collection would have written.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ami.config import CollectConfig, to_dict
from ami.data.dataset import EpisodeWriter
from ami.data.policies import COLLECTION_POLICIES
from ami.envs import WORLDS, make_env
from ami.errors import AmiError

# per world, the settings that decide what an episode holds; `--resume` must not change them
_PROVENANCE = {
    "two_rooms": ("world", "steps", "heuristic_ratio", "random_layout", "seed"),
    "ballistic": ("world", "steps", "push_prob", "ballistic", "seed"),
    "maze": ("world", "steps", "heuristic_ratio", "random_layout", "seed"),
    "pusht": ("world", "steps", "heuristic_ratio", "image_size", "seed"),
}
# any other world (a gymnasium environment)
_GYM_PROVENANCE = ("world", "steps", "image_size", "policy", "seed")
# per world, its constructor's options, taken from the collection's
_WORLD_OPTIONS = {
    "two_rooms": lambda cfg: {"random_layout": cfg.random_layout},
    "ballistic": lambda cfg: {"config": cfg.ballistic},
    "maze": lambda cfg: {"random_layout": cfg.random_layout},
    "pusht": lambda cfg: {"image_size": cfg.image_size},
}


def collect(cfg: CollectConfig, progress: bool = True) -> Path:
    """Collect `cfg.episodes` episodes into `cfg.out` (with `cfg.resume`: until it holds that
    many); returns the file's path. With `cfg.workers` > 1, episodes run in worker processes and
    are written in order, so the file does not depend on the number of workers."""
    if cfg.episodes < 1 or cfg.steps < 1:
        raise AmiError(f"episodes and steps must be positive, got {cfg.episodes} and {cfg.steps}")
    if not 0.0 <= cfg.heuristic_ratio <= 1.0:
        raise AmiError(f"heuristic_ratio must be in [0, 1], got {cfg.heuristic_ratio}")
    if not 0.0 <= cfg.push_prob <= 1.0:
        raise AmiError(f"push_prob must be in [0, 1], got {cfg.push_prob}")
    if cfg.seed < 0:
        raise AmiError(f"seed must be >= 0, got {cfg.seed}")
    if cfg.workers < 1:
        raise AmiError(f"workers must be >= 1, got {cfg.workers}")
    env = make_world(cfg)
    make_policy(cfg)  # a user's policy that cannot be found fails before any file is written
    provenance = _provenance(cfg)
    with EpisodeWriter(cfg.out, cfg.world, env.observation_space.shape,
                       env.action_space.shape[0], provenance) as writer:
        first = len(writer)
        if cfg.resume:
            _check_same_collection(cfg, writer.provenance)
        last = max(first, cfg.episodes) if cfg.resume else first + cfg.episodes
        with _episodes(cfg, env, range(first, last)) as results:
            for index, (frames, actions, states, policy_name) in tqdm(
                    zip(range(first, last), results, strict=True), total=last - first,
                    desc="collect", unit="ep", disable=not progress):
                writer.append(frames, actions, states if states.shape[1] else None, seed=cfg.seed,
                              index=index, policy=policy_name)
    return Path(cfg.out)


def make_world(cfg: CollectConfig):
    """The collection's world, built with its options."""
    if cfg.world in WORLDS:
        options = _WORLD_OPTIONS.get(cfg.world, lambda _: {})(cfg)
    else:  # a gymnasium environment
        options = {"image_size": cfg.image_size}
    try:
        return make_env(cfg.world, **options)  # an unknown world: the error names close ones
    except ValueError as e:  # a world option out of range
        raise AmiError(f"world {cfg.world}: {e}") from None


def make_policy(cfg: CollectConfig):
    """(env, rng, cfg) → (policy, its name): the world's own, or for a gymnasium environment
    the user's `--policy` or uniform random actions."""
    if cfg.world in COLLECTION_POLICIES:
        return COLLECTION_POLICIES[cfg.world]
    if cfg.policy is None:
        return random_actions
    module_name, _, attr = cfg.policy.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise AmiError(f"--policy {cfg.policy}: cannot load it ({e}); expected "
                       f"package.module:function") from None
    return lambda env, rng, _cfg: (factory(env, rng), cfg.policy)


def random_actions(env, rng: np.random.Generator, cfg):
    """Uniform random actions in the environment's box."""
    low, high = env.action_space.low, env.action_space.high
    return (lambda _obs: rng.uniform(low, high).astype(np.float32)), "random"


def reset_seed(seed: int, index: int) -> int:
    """The seed episode `index` of a collection with `seed` resets its world with."""
    return seed * 1_000_003 + index


def run_episode(env, policy_factory, cfg: CollectConfig, seed: int, index: int):
    """One episode: (frames (T+1, H, W, C), actions (T, A), states (T+1, S), policy name).
    It ends early when the environment says so (terminated or truncated)."""
    rng = np.random.default_rng([seed, index])
    obs, info = env.reset(seed=reset_seed(seed, index))
    policy, policy_name = policy_factory(env, rng, cfg)
    frames = np.empty((cfg.steps + 1, *env.observation_space.shape), np.uint8)
    actions = np.empty((cfg.steps, env.action_space.shape[0]), np.float32)
    states = np.empty((cfg.steps + 1, len(info["state"])), np.float32)
    frames[0], states[0] = obs, info["state"]
    # built-in worlds act on their true state; a gymnasium environment on its observation
    seen = info["state"] if cfg.world in COLLECTION_POLICIES else getattr(env, "_obs", None)
    max_norm = getattr(env, "max_action_norm", None)
    t = 0
    while t < cfg.steps:
        a = np.clip(policy(seen), env.action_space.low, env.action_space.high)
        obs, _, terminated, truncated, info = env.step(a)
        # store the action the world applied (norm-clipped), not the raw proposal
        if max_norm is not None:
            n = np.linalg.norm(a)
            a = a * min(1.0, max_norm / max(n, 1e-12))
        actions[t] = a
        frames[t + 1], states[t + 1] = obs, info["state"]
        seen = info["state"] if cfg.world in COLLECTION_POLICIES else getattr(env, "_obs", None)
        t += 1
        if terminated or truncated:
            break
    return frames[: t + 1], actions[:t], states[: t + 1], policy_name


@contextlib.contextmanager
def _episodes(cfg: CollectConfig, env, indices: range):
    """The episodes of `indices`, in order: here, or from `cfg.workers` processes."""
    if cfg.workers == 1 or len(indices) < 2:
        factory = make_policy(cfg)
        yield (run_episode(env, factory, cfg, cfg.seed, i) for i in indices)
        return
    # not fork: a child forked while a thread of this process (tqdm's monitor, torch's pool)
    # holds a lock can wait on it forever; forkserver children start from a clean process
    ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else
                         "spawn")
    pool = ctx.Pool(min(cfg.workers, len(indices)), initializer=_start_worker, initargs=(cfg,))
    try:
        yield pool.imap(_worker_episode, indices, chunksize=1)
        pool.close()        # done: the workers take the pool's sentinels and exit themselves
    except BaseException:
        pool.terminate()    # stopped early: SIGTERM to every worker
        raise
    finally:
        pool.join()


_worker: tuple | None = None


def _start_worker(cfg: CollectConfig) -> None:
    global _worker
    _worker = (make_world(cfg), make_policy(cfg), cfg)


def _worker_episode(index: int):
    env, factory, cfg = _worker
    return run_episode(env, factory, cfg, cfg.seed, index)


def _provenance(cfg: CollectConfig) -> dict:
    """The settings that decide what the world's episodes hold, JSON-ready."""
    settings = to_dict(cfg)
    return {k: settings[k] for k in _PROVENANCE.get(cfg.world, _GYM_PROVENANCE)}


def _check_same_collection(cfg: CollectConfig, saved: dict | None) -> None:
    if saved is None:  # a file from before provenance was recorded: nothing to compare
        return
    now = _provenance(cfg)
    differ = [f"{k}={now[k]!r} (the file has {saved[k]!r})" for k in now
              if k in saved and saved[k] != now[k]]
    if differ:
        raise AmiError(f"{cfg.out}: --resume continues the collection the file was made with, "
                       f"but these options differ: {', '.join(differ)}")
