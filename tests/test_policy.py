"""Mode-1: hindsight pairs, a policy that learns to head for the goal, and its use by eval."""

import numpy as np
import torch

from ami.actor import ActionBounds, PolicyPlanner
from ami.actor.policy import GoalConditionedPolicy, hindsight_pairs, train_policy
from ami.cost import GoalDistance, IntrinsicCost

from .test_actor import IdentityWorld


def _walks(episodes=60, steps=40, seed=0):
    """Persistent random walks in the plane; the 'embedding' is the position itself."""
    rng = np.random.default_rng(seed)
    z, actions, lengths = [], [], []
    for _ in range(episodes):
        a = np.repeat(rng.uniform(-1, 1, (steps // 8 + 1, 2)), 8, axis=0)[:steps].astype(np.float32)
        pos = np.concatenate([np.zeros((1, 2)), np.cumsum(a, 0)]).astype(np.float32)
        z.append(pos)
        actions.append(np.concatenate([a, np.zeros((1, 2), np.float32)]))
        lengths.append(steps + 1)
    lengths = np.array(lengths)
    return (np.concatenate(z), np.concatenate(actions),
            np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)


def test_hindsight_pairs_stay_inside_their_episode():
    _, actions, starts, lengths = _walks(episodes=5, steps=17)
    n = int(lengths.sum())
    episode = np.repeat(np.arange(5), lengths)
    z = np.stack([np.arange(n), episode], 1).astype(np.float32)      # "embedding" = (frame, ep)
    zt, zg, blocks = hindsight_pairs(z, actions, starts, lengths, frameskip=2, max_blocks=4,
                                     n=500, rng=np.random.default_rng(0))
    assert zt.shape == zg.shape == (500, 2) and blocks.shape == (500, 4)
    assert (zt[:, 1] == zg[:, 1]).all()                               # same episode
    gap = zg[:, 0] - zt[:, 0]
    assert ((gap >= 2) & (gap <= 8) & (gap % 2 == 0)).all()            # 1..4 blocks ahead
    t = zt[:, 0].astype(int)
    assert np.array_equal(blocks, actions[t[:, None] + np.arange(2)].reshape(500, 4))
    assert (zg[:, 0] < starts[zg[:, 1].astype(int)] + lengths[zg[:, 1].astype(int)]).all()


def test_policy_learns_to_head_for_the_goal():
    z, actions, starts, lengths = _walks()
    torch.manual_seed(0)
    policy = GoalConditionedPolicy(2, 4, width=64)
    losses = train_policy(policy, z, actions, starts, lengths, frameskip=2, action_scale=1.0,
                          steps=400, batch_size=128, max_blocks=2, lr=3e-3)
    assert np.mean(losses[-50:]) < 0.6 * np.mean(losses[:50])
    rng = np.random.default_rng(1)
    here = torch.from_numpy(rng.uniform(-5, 5, (200, 2)).astype(np.float32))
    goal = here + torch.from_numpy(rng.uniform(-2, 2, (200, 2)).astype(np.float32))
    with torch.no_grad():
        a = policy(here, goal).reshape(200, 2, 2).mean(1)
    cos = torch.nn.functional.cosine_similarity(a, goal - here, dim=-1)
    assert cos.median() > 0.8


def test_policy_planner_reports_cost_terms_and_respects_bounds():
    world = IdentityWorld()
    bounds = ActionBounds((-1.0, -1.0), (1.0, 1.0), max_norm=1.0)
    policy = GoalConditionedPolicy(2, 4, width=16)
    with torch.no_grad():
        policy.net[-1].bias.fill_(5.0)   # wants to move far: must be clipped
    result = PolicyPlanner(policy, bounds, horizon=3, action_scale=1.0).plan(
        world, torch.zeros(1, 1, 2), IntrinsicCost([GoalDistance(torch.tensor([3.0, 3.0]))]))
    assert result.actions.shape == (3, 4)
    assert (result.actions.reshape(-1, 2).norm(dim=-1) <= 1.0 + 1e-6).all()
    assert set(result.terms) == {"goal"} and result.cost == result.terms["goal"]
