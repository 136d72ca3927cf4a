"""`ami eval`: planning success in a world, scored with the true state the planner never sees."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ami.actor import ActionBounds
from ami.agent import Agent, Heads, Task
from ami.config import EvalConfig, to_dict
from ami.cost.guardrail import Box
from ami.energy import Accounting, count_flops
from ami.envs import WORLDS, TwoRooms
from ami.errors import AmiError
from ami.evaluate.goals import GOAL_RULES as MORE_GOAL_RULES
from ami.evaluate.goals import eval_world
from ami.evaluate.video import save_gif
from ami.io import MODEL_FILE, file_sha256, load_model, run_world, write_json

GOAL_RULES = {
    "rooms": "start and goal drawn uniformly in different rooms (env.sample_start_and_goal)",
    "far": "start and goal in different rooms, each at least 20 px from the door",
}
GOAL_RULES.update(MORE_GOAL_RULES)  # trajectory and pose: ami.evaluate.goals


def sample_task_states(env, rule: str, rng: np.random.Generator, box: Box | None,
                       min_rooms: int | None = None):
    """Start and goal by the protocol's rule; neither inside the forbidden box, if any. In a
    maze, the goal's room is at least `min_rooms` rooms from the start's."""
    options = {"min_rooms": min_rooms} if min_rooms and hasattr(env, "room_distance") else {}
    if rule == "far":   # Two-Rooms' rule: its one door is what "far" is measured from
        if not isinstance(env, TwoRooms):
            raise AmiError(f"--goal-rule far is Two-Rooms' (both 20 px from its door); in "
                           f"{type(env).__name__} use rooms (and --min-rooms in a maze)")
        options["min_door_distance"] = 20.0
    for _ in range(10_000):
        start, goal = env.sample_start_and_goal(rng, **options)
        if box is None or not (box.contains(start) or box.contains(goal)):
            return start, goal
    raise AmiError(f"no start and goal outside the forbidden box {box} after 10000 draws")


@torch.no_grad()
def evaluate(cfg: EvalConfig) -> dict:
    """Run `cfg.episodes` goal-reaching episodes; writes eval.json (and a GIF) in the run dir."""
    run = Path(cfg.run)
    model = load_model(run)
    world = run_world(run)
    with_goals = [n for n, w in WORLDS.items() if hasattr(w, "sample_start_and_goal")]
    if world not in with_goals and cfg.goal_rule not in MORE_GOAL_RULES:
        raise AmiError(f"{run}: world '{world}' has no goals to plan towards; `ami eval` scores "
                       f"goal reaching, in {', '.join(with_goals)}; in any world that "
                       f"records states, with --goal-rule trajectory")
    env = eval_world(world, cfg, model.cfg.image_size)
    agent = Agent(model, ActionBounds.of(env), Heads.load(run, model, cfg.plan, cfg.cost))
    box_xyxy = cfg.forbidden_box or agent.heads.guardrail_box
    box = Box(*box_xyxy) if box_xyxy is not None else None
    episodes, plan_ms, gif_frames, gif_goal = [], [], None, None
    acct = Accounting("eval", model.num_parameters(), model.device).start()
    t_all = time.perf_counter()
    bar = tqdm(range(cfg.episodes), desc="eval", unit="ep", disable=not cfg.progress)
    successes = violations = 0
    for i in bar:
        seed = cfg.seed + i
        env.reset(seed=seed)  # draws the layout when it is random
        start, goal = sample_task_states(env, cfg.goal_rule, np.random.default_rng(seed), box,
                                         cfg.min_rooms)
        env.set_state(start)
        env.set_goal(goal)
        obs = env.render()
        # the agent gets the goal as an observation; the true states stay with the scorer
        agent.reset(Task(goal_obs=env.render_state(goal), plan=cfg.plan, cost=cfg.cost), obs,
                    seed=seed)
        frames, steps, success, violated = [obs], 0, env.is_success(), False
        path = [start]
        t_ep = time.perf_counter()
        while steps < cfg.budget and not success:
            obs, _, success, _, info = env.step(agent.act())
            agent.observe(obs)
            frames.append(obs)
            path.append(info["state"])
            steps += 1
            violated |= bool(box is not None and box.contains(info["state"]))
        episodes.append({
            "seed": seed, "start": start.tolist(), "goal": goal.tolist(), "success": bool(success),
            "steps": steps, "final_distance": _final_distance(env, goal),
            # where a failure ended (PushT: which of agent, block position, angle missed)
            "final_state": np.asarray(path[-1], np.float64).round(3).tolist(),
            "violation": violated, "plans": len(agent.plan_seconds),
            "seconds": time.perf_counter() - t_ep,
            "cost_terms_first_plan": agent.memory.costs[-len(agent.plan_seconds)]
            if agent.plan_seconds else {},
        })
        plan_ms += [1000 * s for s in agent.plan_seconds]
        successes += success
        violations += violated
        bar.set_postfix(success=f"{successes}/{i + 1}")
        if i == 0:
            gif_frames, gif_goal = frames, goal
            if cfg.plan.planner == "hierarchical" and agent.heads.position_probe is not None:
                figure = _subgoal_figure(agent, env, np.array(path), goal, seed,
                                         run / "subgoals.png")
                episodes[-1]["subgoals_xy"] = figure
    total_s = time.perf_counter() - t_all
    acct.stop()
    # each episode encodes its goal, its first observation and one per step
    acct.set_flops(plan=(_plan_flops(agent), len(plan_ms)),
                   encode=(count_flops(lambda: model.encode(obs))[1],
                           sum(e["steps"] + 2 for e in episodes)))
    steps_all = [e["steps"] for e in episodes]
    result = {
        "episodes": len(episodes),
        "success_rate": successes / len(episodes),
        "mean_steps": float(np.mean(steps_all)),
        "mean_steps_success": float(np.mean([e["steps"] for e in episodes if e["success"]]))
        if successes else None,
        "violation_rate": violations / len(episodes) if box is not None else None,
        "ms_per_plan_median": float(np.median(plan_ms)) if plan_ms else None,
        "ms_per_env_step": 1000 * total_s / max(1, sum(steps_all)),
        "seconds_per_episode": total_s / len(episodes),
        "protocol": {
            "world": world, "random_layout": cfg.random_layout, "episodes": cfg.episodes,
            "seeds": [cfg.seed, cfg.seed + cfg.episodes - 1], "budget": cfg.budget,
            "goal_rule": GOAL_RULES[cfg.goal_rule], "success_radius": env.success_radius,
            "success_test": getattr(env, "success_test", "distance to goal <= success_radius "
                                    "at any step; episode ends there"),
            "forbidden_box": list(box_xyxy) if box_xyxy is not None else None,
            "min_rooms": cfg.min_rooms if hasattr(env, "room_distance") else None,
            "planner": asdict(cfg.plan), "cost": asdict(cfg.cost),
            "model_sha256": file_sha256(run / MODEL_FILE),
            "command": "ami eval " + " ".join(_cli_flags(cfg)),
        },
        "accounting": acct.report(),
        "per_episode": episodes,
    }
    write_json(run / "eval.json", result)
    if cfg.gif and gif_frames is not None:
        ring = env.goal_ring(gif_goal) if hasattr(env, "goal_ring") else None
        save_gif(gif_frames, run / "episode.gif", env.render_state(gif_goal), ring)
    return result


def _final_distance(env, goal: np.ndarray) -> float:
    """The world's own distance to the goal where it has one (PushT: positions only, its angle
    is judged apart), else the Euclidean distance of the states."""
    if hasattr(env, "distance"):
        return float(env.distance())
    return float(np.linalg.norm(env.get_state() - goal))


def _plan_flops(agent: Agent) -> int:
    """FLOPs of one plan from the agent's last state, as the planner makes it without a warm
    start (CEM and MPPI do the same work either way)."""
    _, flops = count_flops(lambda: agent.mpc.planner.plan(agent.model, agent.memory.z_hist(),
                                                          agent.cost))
    return flops


@torch.no_grad()
def _subgoal_figure(agent: Agent, env, path: np.ndarray, goal: np.ndarray, seed: int,
                    out: Path) -> list[list[float]]:
    """Draw the episode's path and subgoals (placed by the run's position probe) to `out`;
    returns each plan's first subgoal, decoded to (x, y)."""
    from ami.evaluate.subgoals import save_subgoal_figure
    plans = agent.mpc.planner.subgoal_plans                              # [(H, D)] per plan
    probe = agent.heads.position_probe
    firsts = probe(torch.stack([p[0] for p in plans])).numpy()
    save_subgoal_figure(env.background(), path, firsts, goal, out, probe(plans[0]).numpy(),
                        env.success_radius, title=f"episode seed {seed}")
    return firsts.round(2).tolist()


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
