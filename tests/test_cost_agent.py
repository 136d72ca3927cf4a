"""Cost module, critic, guardrail, memory and the agent."""

import numpy as np
import pytest
import torch

from ami.actor import ActionBounds
from ami.agent import Agent, Heads, Task
from ami.config import CostConfig, PlanConfig
from ami.cost import ActionEffort, GoalDistance, IntrinsicCost
from ami.cost.critic import Critic, CriticTerminal, temporal_pairs, train_critic
from ami.cost.guardrail import Box, Guardrail, GuardrailClassifier, train_guardrail
from ami.envs import TwoRooms
from ami.io import load_model
from ami.memory import ShortTermMemory


def test_cost_terms_add_up_to_the_total():
    g = torch.Generator().manual_seed(0)
    z_pred, actions = torch.randn(7, 4, 3, generator=g), torch.randn(7, 4, 6, generator=g)
    classifier = GuardrailClassifier(3, 8)
    critic = Critic(3, 8)
    goal = torch.randn(3, generator=g)
    cost = IntrinsicCost([GoalDistance(goal, "sum", 2.0), ActionEffort(0.5, 2.0),
                          Guardrail(classifier, 100.0), CriticTerminal(critic, goal, 0.3)])
    total, terms = cost(z_pred, actions)
    assert set(terms) == {"goal", "effort", "guardrail", "critic"}
    assert torch.allclose(total, sum(terms.values()))
    assert torch.allclose(terms["goal"], 2.0 * (z_pred - goal).pow(2).sum(-1).mean(1))
    assert torch.allclose(terms["effort"], 0.5 * (actions / 2.0).pow(2).mean((1, 2)))
    assert torch.equal(cost.z_goal.reshape(-1), goal)
    with pytest.raises(ValueError, match="distinct"):
        IntrinsicCost([GoalDistance(goal), GoalDistance(goal)])


def test_guardrail_classifier_separates_labelled_states():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 64, (4000, 2)).astype(np.float32)
    box = Box(10, 22, 24, 42)
    z = np.concatenate([xy / 32 - 1, np.sin(xy / 9)], 1).astype(np.float32)  # an "embedding"
    torch.manual_seed(0)
    clf = GuardrailClassifier(4, 64)
    train_guardrail(clf, z, box.contains(xy), steps=600, batch_size=128, lr=3e-3)
    test = rng.uniform(0, 64, (2000, 2)).astype(np.float32)
    zt = np.concatenate([test / 32 - 1, np.sin(test / 9)], 1).astype(np.float32)
    with torch.no_grad():
        predicted = clf(torch.from_numpy(zt)).numpy() > 0
    assert (predicted == box.contains(test)).mean() > 0.95


def _segments(rng, n, box):
    """Blocks of 3 steps ending at uniform positions: (end, actions (n, 6), any step in box)."""
    end = rng.uniform(0, 64, (n, 2))
    steps = rng.uniform(-6, 6, (n, 3, 2))
    path = end[:, None] - steps[:, ::-1].cumsum(1)[:, ::-1] + steps      # positions after steps
    z = np.concatenate([end / 32 - 1, np.sin(end / 9)], 1).astype(np.float32)
    return z, steps.reshape(n, 6).astype(np.float32), box.contains(path).any(1), path


def test_segment_guardrail_catches_blocks_that_cut_a_corner():
    """A block can cross the box between two predicted states; the segment classifier, from the
    end embedding and the block's actions, flags it where a state classifier cannot."""
    rng = np.random.default_rng(0)
    box = Box(20, 20, 32, 36)
    z, a, label, path = _segments(rng, 6000, box)
    assert np.allclose(path[:, -1], (z[:, :2] + 1) * 32, atol=1e-4)   # last step ends at end
    torch.manual_seed(0)
    clf = GuardrailClassifier(4, 64, block_dim=6)
    train_guardrail(clf, z, label, steps=1500, batch_size=128, lr=3e-3, actions=a)
    zt, at, lt, pt = _segments(rng, 3000, box)
    with torch.no_grad():
        predicted = clf(torch.from_numpy(zt), torch.from_numpy(at)).numpy() > 0
    corner = lt & ~box.contains(pt[:, -1])        # forbidden steps, but the block ends outside
    assert corner.sum() > 50
    assert (predicted == lt).mean() > 0.93
    assert predicted[corner].mean() > 0.8
    with pytest.raises(ValueError, match="action blocks"):
        clf(torch.from_numpy(zt))


def test_critic_orders_goals_by_how_far_they_are_along_paths():
    # straight walks along a line: the temporal distance is the position difference
    n_ep, length = 40, 41
    z = np.concatenate([np.stack([np.arange(length), np.zeros(length)], 1) + [0, e]
                        for e in range(n_ep)]).astype(np.float32) / 10
    starts, lengths = np.arange(n_ep) * length, np.full(n_ep, length)
    t, g, k = temporal_pairs(starts, lengths, 2, 5, 300, np.random.default_rng(0))
    assert ((g - t) == 2 * k).all() and (k <= 5).all()
    torch.manual_seed(0)
    critic = Critic(2, 64)
    train_critic(critic, z, starts, lengths, frameskip=2, max_blocks=5, expectile=0.5,
                 steps=800, batch_size=128, lr=3e-3)
    here = torch.tensor([[1.0, 0.5]])
    with torch.no_grad():
        v = [critic(here, here + torch.tensor([[d / 10, 0.0]])).item() for d in (0, 4, 8)]
    assert v[0] < v[1] < v[2]
    assert abs(v[2] - 4.0) < 1.0        # 8 steps = 4 blocks


def test_memory_never_grows_past_its_bound():
    mem = ShortTermMemory(history=2, frameskip=3, capacity=10, keep_frames=True)
    for _ in range(5):
        mem.start_episode()
        for t in range(8):
            mem.observe(torch.full((4,), float(t)), np.zeros((2, 2, 3), np.uint8))
            mem.record_action(np.ones(2))
            mem.record_costs({"goal": 1.0})
            assert len(mem.latents) <= 10 and len(mem.actions) <= 10 and len(mem.frames) <= 10
        mem.end_episode()
        assert sum(len(e["actions"]) for e in mem.episodes) <= 10
    # the history is the newest latents frameskip apart
    assert mem.z_hist()[0, :, 0].tolist() == [4.0, 7.0]
    with pytest.raises(ValueError, match="capacity"):
        ShortTermMemory(history=3, frameskip=5, capacity=5)


def _episode_actions(agent, env, seed, steps=12):
    env.reset(seed=seed)
    start, goal = env.sample_start_and_goal(np.random.default_rng(seed))
    env.set_state(start)
    task = Task(goal_state=goal, plan=PlanConfig(samples=32, iterations=3, elites=4))
    agent.reset(task, env.render(), env=env, seed=seed)
    actions = []
    for _ in range(steps):
        actions.append(agent.act())
        obs, *_ = env.step(actions[-1])
        agent.observe(obs)
    return np.stack(actions)


def test_agent_is_deterministic_for_a_seed_and_reports_cost_terms(tiny_run):
    env = TwoRooms()
    agents = [Agent(load_model(tiny_run), ActionBounds.of(env)) for _ in range(2)]
    a, b = (_episode_actions(ag, env, seed=3) for ag in agents)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, _episode_actions(agents[0], env, seed=4))
    assert (np.linalg.norm(a, axis=1) <= env.max_action_norm + 1e-5).all()
    assert agents[0].mpc.last.terms.keys() == {"goal"}
    assert len(agents[0].plan_seconds) == 3       # 12 steps, re-planning every 5


def test_agent_needs_the_heads_its_task_names(tiny_run):
    from ami.errors import AmiError
    model = load_model(tiny_run)
    with pytest.raises(AmiError, match="train-critic"):
        Heads.load(tiny_run, model, PlanConfig(), CostConfig(critic_weight=1.0))
    agent = Agent(model, ActionBounds.of(TwoRooms()))
    with pytest.raises(AmiError, match="critic"):
        agent.reset(Task(goal_obs=np.zeros((64, 64, 3), np.uint8),
                         cost=CostConfig(critic_weight=1.0)), np.zeros((64, 64, 3), np.uint8))
