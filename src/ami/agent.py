"""The agent: perception, world model, cost, actor and short-term memory, tied together.

A `Task` says what is wanted (a goal as an observation or as a world state, the cost terms, the
planner and its budget); the configurator (`configure`) turns it into a cost module and an actor.
The agent then perceives, plans in latent space, acts and remembers:

    agent = Agent.from_run("runs/latest")
    agent.reset(Task(goal_obs=goal_image), obs)
    while ...:
        obs, *_ = env.step(agent.act())
        agent.observe(obs)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ami.actor import ActionBounds, PolicyPlanner, RecedingHorizon, make_planner
from ami.config import CostConfig, PlanConfig
from ami.cost import ActionEffort, GoalDistance, IntrinsicCost
from ami.cost.critic import CriticTerminal
from ami.cost.guardrail import Guardrail
from ami.errors import AmiError
from ami.io import load_model
from ami.memory import ShortTermMemory


@dataclass
class Task:
    """What the agent is asked to do. The goal is an image, or a state the world can render."""

    goal_obs: np.ndarray | None = None
    """(H, W, C) uint8 goal observation."""
    goal_state: np.ndarray | None = None
    """A world state; rendered to the goal observation with the world's `render_state`."""
    plan: PlanConfig = field(default_factory=PlanConfig)
    cost: CostConfig = field(default_factory=CostConfig)


@dataclass
class Heads:
    """The optional trained heads of a run: Mode-1 policy, critic, guardrail classifier."""

    policy: torch.nn.Module | None = None
    critic: torch.nn.Module | None = None
    guardrail: torch.nn.Module | None = None
    guardrail_box: tuple | None = None
    high: tuple | None = None                      # (HighLevelModel, LandmarkGraph)
    position_probe: torch.nn.Module | None = None

    @classmethod
    def load(cls, run: Path, model, plan: PlanConfig, cost: CostConfig) -> Heads:
        """Load exactly the heads that the plan and cost settings use."""
        from ami.heads import load_critic, load_guardrail, load_policy
        heads = cls()
        if plan.planner == "policy" or plan.policy_init:
            heads.policy = load_policy(run, model.cfg.embed_dim, model.block_dim)
        if cost.critic_weight > 0:
            heads.critic = load_critic(run, model.cfg.embed_dim)
        if cost.guardrail:
            heads.guardrail, box = load_guardrail(run, model.cfg.embed_dim, model.block_dim)
            heads.guardrail_box = (box.x0, box.y0, box.x1, box.y1)
        if plan.planner == "hierarchical":
            from ami.hierarchy import load_high
            model_high, graph, heads.position_probe = load_high(run, model.cfg)
            heads.high = (model_high, graph)
        return heads


def configure(task: Task, z_goal: torch.Tensor, model, heads: Heads, bounds: ActionBounds,
              seed: int, goal_obs: np.ndarray | None = None):
    """The configurator: a task → (cost module, planner, optional proposer for the planner)."""
    c, p = task.cost, task.plan
    if c.goal_space == "pixels":  # decoded predictions against the goal image itself
        from ami.cost.pixels import PixelGoalDistance
        terms = [PixelGoalDistance(model, goal_obs, c.goal)]
    else:
        terms = [GoalDistance(z_goal, c.goal)]
    if c.effort_weight > 0:
        terms.append(ActionEffort(c.effort_weight, model.cfg.action_scale))
    if c.critic_weight > 0:
        if heads.critic is None:
            raise AmiError("critic_weight > 0 needs a critic (ami train-critic)")
        terms.append(CriticTerminal(heads.critic, z_goal, c.critic_weight))
    if c.guardrail:
        if heads.guardrail is None:
            raise AmiError("guardrail asked for, but none is loaded (ami train-guardrail)")
        terms.append(Guardrail(heads.guardrail, c.guardrail_weight))
    cost = IntrinsicCost(terms)
    planner = make_planner(p, bounds, model.block_dim, seed, heads.policy,
                           model.cfg.action_scale, heads.high)
    proposer = None
    if p.policy_init and p.planner != "policy":
        proposer = PolicyPlanner(heads.policy, bounds, p.horizon, model.cfg.action_scale)
    return cost, planner, proposer


class Agent:
    """Observe → encode → plan in latent space (receding horizon) → act; remember it all."""

    def __init__(self, model, bounds: ActionBounds, heads: Heads | None = None,
                 memory_capacity: int = 10_000, keep_frames: bool = False):
        self.model, self.bounds, self.heads = model.eval(), bounds, heads or Heads()
        self.memory = ShortTermMemory(model.cfg.history, model.cfg.frameskip, memory_capacity,
                                      keep_frames)
        self.mpc: RecedingHorizon | None = None
        self.cost: IntrinsicCost | None = None
        self._queue: list[np.ndarray] = []

    @classmethod
    def from_run(cls, run: Path, env=None, task: Task | None = None, **kwargs) -> Agent:
        """An agent with the run's world model and the heads that `task` needs."""
        model = load_model(run)
        task = task or Task()
        bounds = ActionBounds.of(env) if env is not None else ActionBounds(
            (-model.cfg.action_scale,) * model.cfg.action_dim,
            (model.cfg.action_scale,) * model.cfg.action_dim)
        return cls(model, bounds, Heads.load(Path(run), model, task.plan, task.cost), **kwargs)

    @torch.no_grad()
    def reset(self, task: Task, obs: np.ndarray, env=None, seed: int = 0) -> None:
        """Start an episode towards the task's goal from observation `obs`."""
        if task.goal_obs is not None:
            goal_obs = task.goal_obs
        elif task.goal_state is not None and env is not None:
            goal_obs = env.render_state(np.asarray(task.goal_state))
        else:
            raise AmiError("a task needs goal_obs, or goal_state and a world that renders it")
        z_goal = self.model.encode(goal_obs)
        self.cost, planner, proposer = configure(task, z_goal, self.model, self.heads,
                                                 self.bounds, seed, goal_obs)
        self.mpc = RecedingHorizon(planner, self.model.cfg.action_dim, task.plan.replan_every,
                                   task.plan.warm_start, proposer)
        self.memory.end_episode()
        self.memory.start_episode()
        self._queue = []
        self.observe(obs)

    @torch.no_grad()
    def observe(self, obs: np.ndarray) -> None:
        self.memory.observe(self.model.encode(obs), obs)

    @torch.no_grad()
    def act(self) -> np.ndarray:
        """The next action (A,) in world units; re-plans when the last plan's steps are used."""
        if self.mpc is None:
            raise AmiError("call agent.reset(task, obs) before agent.act()")
        if not self._queue:
            self._queue = list(self.mpc.plan(self.model, self.memory.z_hist(), self.cost))
            self.memory.record_costs(self.mpc.last.terms)
        action = self._queue.pop(0)
        self.memory.record_action(action)
        return action

    @property
    def plan_seconds(self) -> list[float]:
        return self.mpc.plan_seconds if self.mpc is not None else []
