"""`ami eval`: planning success in a world, scored with the true state the planner never sees."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ami.actor import ActionBounds, PolicyPlanner, RecedingHorizon, make_planner
from ami.config import EvalConfig, to_dict
from ami.cost import GoalCost
from ami.envs import make_env
from ami.errors import AmiError
from ami.evaluate.video import save_gif
from ami.io import MODEL_FILE, load_model, write_json

GOAL_RULE = "start and goal drawn uniformly in different rooms (env.sample_start_and_goal)"


@torch.no_grad()
def evaluate(cfg: EvalConfig) -> dict:
    """Run `cfg.episodes` goal-reaching episodes; writes eval.json (and a GIF) in the run dir."""
    run = Path(cfg.run)
    model = load_model(run)
    world = _world_of(run)
    env = make_env(world, random_layout=cfg.random_layout)
    bounds = ActionBounds.of(env)
    p = cfg.plan
    policy = None
    if p.planner == "policy" or p.policy_init:
        from ami.train_policy import load_policy
        policy = load_policy(run, model.cfg.embed_dim, model.block_dim)
    episodes, plan_ms, gif_frames, gif_goal = [], [], None, None
    t_all = time.perf_counter()
    bar = tqdm(range(cfg.episodes), desc="eval", unit="ep", disable=not cfg.progress)
    successes = 0
    for i in bar:
        seed = cfg.seed + i
        env.reset(seed=seed)  # draws the layout when it is random
        start, goal = env.sample_start_and_goal(np.random.default_rng(seed))
        env.set_state(start)
        env.set_goal(goal)
        obs = env.render()
        z_goal = model.encode(env.render_state(goal))
        cost = GoalCost(z_goal, cfg.plan.cost)
        planner = make_planner(p, bounds, model.block_dim, seed, policy, model.cfg.action_scale)
        proposer = PolicyPlanner(policy, bounds, p.horizon, model.cfg.action_scale) \
            if p.policy_init and p.planner != "policy" else None
        mpc = RecedingHorizon(model, planner, p.replan_every, p.warm_start, proposer)
        frames, steps, success = [obs], 0, env.is_success()
        t_ep = time.perf_counter()
        mpc.observe(model.encode(obs))
        while steps < cfg.budget and not success:
            for a in mpc.act(cost):
                obs, _, success, _, _ = env.step(a)
                mpc.observe(model.encode(obs))
                frames.append(obs)
                steps += 1
                if success or steps >= cfg.budget:
                    break
        episodes.append({
            "seed": seed, "start": start.tolist(), "goal": goal.tolist(), "success": bool(success),
            "steps": steps, "final_distance": float(np.linalg.norm(env.get_state() - goal)),
            "plans": len(mpc.plan_seconds), "seconds": time.perf_counter() - t_ep,
        })
        plan_ms += [1000 * s for s in mpc.plan_seconds]
        successes += success
        bar.set_postfix(success=f"{successes}/{i + 1}")
        if i == 0:
            gif_frames, gif_goal = frames, goal
    total_s = time.perf_counter() - t_all
    steps_all = [e["steps"] for e in episodes]
    result = {
        "episodes": len(episodes),
        "success_rate": successes / len(episodes),
        "mean_steps": float(np.mean(steps_all)),
        "mean_steps_success": float(np.mean([e["steps"] for e in episodes if e["success"]]))
        if successes else None,
        "ms_per_plan_median": float(np.median(plan_ms)) if plan_ms else None,
        "ms_per_env_step": 1000 * total_s / max(1, sum(steps_all)),
        "seconds_per_episode": total_s / len(episodes),
        "protocol": {
            "world": world, "random_layout": cfg.random_layout, "episodes": cfg.episodes,
            "seeds": [cfg.seed, cfg.seed + cfg.episodes - 1], "budget": cfg.budget,
            "goal_rule": GOAL_RULE, "success_radius": env.success_radius,
            "success_test": "distance to goal <= success_radius at any step; episode ends there",
            "planner": asdict(cfg.plan), "model_sha256": _sha256(run / MODEL_FILE),
            "command": "ami eval " + " ".join(_cli_flags(cfg)),
        },
        "per_episode": episodes,
    }
    write_json(run / "eval.json", result)
    if cfg.gif and gif_frames is not None:
        save_gif(gif_frames, run / "episode.gif", gif_goal, radius=env.success_radius)
    return result


def _world_of(run: Path) -> str:
    try:
        return json.loads((run / "config.json").read_text())["world"]
    except (OSError, KeyError, json.JSONDecodeError) as e:
        raise AmiError(f"{run}: no readable config.json with the world name ({e})") from None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli_flags(cfg: EvalConfig) -> list[str]:
    flags = []
    def walk(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            elif prefix + k == "plan.planner":
                flags.append(f"--actor {v}")
            elif isinstance(v, bool):
                flags.append(f"--{prefix}{k.replace('_', '-')}" if v else
                             f"--{prefix}no-{k.replace('_', '-')}")
            else:
                flags.append(f"--{prefix}{k.replace('_', '-')} {v}")
    walk(to_dict(cfg))
    return flags
