"""H-JEPA: the maze world, the high-level predictor, the landmark graph and hierarchical
planning through the agent."""

import json

import numpy as np
import pytest
import torch

from ami.actor.hierarchical import LandmarkSearch
from ami.config import CollectConfig, EvalConfig, HighLevelConfig, PlanConfig
from ami.data.collect import collect
from ami.data.policies import RandomWalk, RoomWalker
from ami.envs import Maze, make_env
from ami.world_model.hierarchy import (
    HighLevelModel,
    LandmarkGraph,
    macro_windows,
    train_high_level,
    window_batch,
)


def test_maze_layout_is_seeded_connected_and_walls_block():
    a, b, c = Maze(layout_seed=0), Maze(layout_seed=0), Maze(layout_seed=1)
    assert a.layout == b.layout and a.layout != c.layout
    assert len(a.layout.doors) == 8 and (a._distances >= 0).all()  # a spanning tree of 9 rooms
    rng = np.random.default_rng(0)
    s, rooms = a.free_position(0, rng), set()
    walker = RoomWalker(a, rng)
    for _ in range(3000):
        s = a.move(s, np.clip(walker(s), -2.45, 2.45))
        assert not a.solid[int(round(s[1])), int(round(s[0]))]       # never inside a wall
        rooms.add(a.room_of(s))
    assert rooms == set(range(9))                                    # ... and through doors
    # pushing straight into an inner wall away from any door goes nowhere
    wall_x = a.walls[0][0]
    row_without_door = next(r for r in range(3) if (r * 3, r * 3 + 1) not in
                            {(d[0], d[1]) for d in a.layout.doors})
    y = float(np.mean(a.spans[row_without_door]))
    stuck = a.move(np.array([wall_x - 3.0, y], np.float32), np.array([2.45, 0.0]))
    assert stuck[0] == pytest.approx(wall_x - a.agent_radius)


def test_goal_sampler_asks_for_goals_k_rooms_away():
    env = make_env("maze")
    rng = np.random.default_rng(0)
    for k in (1, 2, 3, 5):
        for _ in range(10):
            start, goal = env.sample_start_and_goal(rng, min_rooms=k, max_rooms=k)
            assert env.room_distance(env.room_of(start), env.room_of(goal)) == k
    start, goal = env.sample_start_and_goal(rng, min_rooms=3)
    assert env.room_distance(env.room_of(start), env.room_of(goal)) >= 3
    with pytest.raises(ValueError, match="rooms apart"):
        env.sample_start_and_goal(rng, min_rooms=20)


def _walks(env, episodes, steps, seed):
    """States and actions of walker and random-walk episodes, flat as in EpisodeDataset."""
    rng = np.random.default_rng(seed)
    states, actions = [], []
    for e in range(episodes):
        s = env.free_position(int(rng.integers(env.rooms**2)), rng)
        policy = RoomWalker(env, rng) if e % 2 else RandomWalk(env.max_action_norm, rng)
        ep_s, ep_a = [s], []
        for _ in range(steps):
            a = np.clip(policy(s), -2.45, 2.45)
            a = a * min(1.0, env.max_action_norm / max(np.linalg.norm(a), 1e-9))
            s = env.move(s, a)
            ep_s.append(s)
            ep_a.append(a)
        states.append(np.array(ep_s))
        actions.append(np.array(ep_a + [np.zeros(2)]))
    starts = np.arange(episodes) * (steps + 1)
    return (np.concatenate(states).astype(np.float32), np.concatenate(actions).astype(np.float32),
            starts, np.full(episodes, steps + 1))


def _oracle_embedding(env, xy):
    """A stand-in for a good encoder: position, and which room it is in."""
    rooms = np.array([env.room_of(p) for p in np.atleast_2d(xy)])
    centre = env.size / 2
    return np.concatenate([(np.atleast_2d(xy) - centre) / (centre / 2),
                           3.0 * np.eye(env.rooms**2)[rooms]], 1).astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These MLPs are tiny: a second thread only adds contention on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_high(one_thread):
    """A 2×2 maze, oracle embeddings, a high level trained on them and its landmark graph."""
    torch.manual_seed(0)
    env = Maze(rooms=2, size=48, layout_seed=0)
    states, actions, starts, lengths = _walks(env, 40, 100, seed=0)
    z = _oracle_embedding(env, states)
    high = HighLevelModel(z.shape[1], 2, frameskip=5, blocks=1, macro_dim=4, width=64,
                          action_scale=env.max_action_norm)
    history = train_high_level(high, z, actions, starts, lengths, window=2, steps=400,
                               batch_size=64, lr=3e-3)
    graph = LandmarkGraph(30, z.shape[1]).build(high, z, actions, starts, lengths, 3000)
    return env, high, graph, history, (z, actions, starts, lengths)


def test_high_level_loss_falls_on_tiny_data(tiny_high):
    env, high, _, history, _ = tiny_high
    first = np.mean([h["pred"] + h["rollout"] for h in history[:10]])
    last = np.mean([h["pred"] + h["rollout"] for h in history[-20:]])
    assert last < 0.5 * first
    assert history[-1]["sigreg"] < 0.1 * history[0]["sigreg"]   # macro-actions ~ N(0, I)
    # on episodes it never saw, it predicts a macro-step better than "nothing changes"
    states, actions, starts, lengths = _walks(env, 10, 100, seed=5)
    z = _oracle_embedding(env, states)
    first = macro_windows(starts, lengths, high.steps, 2, 500, np.random.default_rng(0))
    zw, chunks = window_batch(z, actions, first, high.steps, 2)
    with torch.no_grad():
        error = (high.rollout(zw[:, 0], high.encode_macro(chunks)) - zw[:, 1:]).pow(2).mean()
    assert error < 0.5 * (zw[:, 1:] - zw[:, :1]).pow(2).mean()


def test_subgoals_pass_through_the_doors(tiny_high):
    env, high, graph, _, data = tiny_high
    search = LandmarkSearch(graph)
    rng = np.random.default_rng(1)
    far = np.argwhere(env._distances == 3)          # next to each other, but 3 doors apart
    assert len(far)
    for a, b in far:
        for _ in range(3):
            start, goal = env.free_position(int(a), rng), env.free_position(int(b), rng)
            subgoals, cost = search(torch.from_numpy(_oracle_embedding(env, start)),
                                    torch.from_numpy(_oracle_embedding(env, goal)[0]))
            # decode the subgoals with the true positions they were built from
            rooms = [int(a)] + [int(np.argmax(s[2:])) for s in subgoals.numpy()]
            assert rooms[-1] == b and cost < len(graph.landmarks)
            hops = zip(rooms[:-1], rooms[1:], strict=True)
            assert all(env.room_distance(r, s) <= 1 for r, s in hops)
            assert [r for i, r in enumerate(rooms) if i == 0 or r != rooms[i - 1]] == \
                env.room_path(int(a), int(b))
    # the same predictor, data and seed give the same graph
    again = LandmarkGraph(30, graph.landmarks.shape[1]).build(high, *data, 3000)
    assert torch.equal(again.landmarks, graph.landmarks) and torch.equal(again.edges, graph.edges)


@pytest.mark.slow
def test_hierarchical_eval_through_the_agent_is_deterministic(tmp_path):
    from ami.evaluate.planning import evaluate
    from ami.hierarchy import train_high
    from ami.train import train
    from tests.conftest import tiny_train_config
    data = collect(CollectConfig(out=tmp_path / "maze.h5", world="maze", episodes=8, steps=60,
                                 heuristic_ratio=0.8, seed=0), progress=False)
    run = train(tiny_train_config(data, tmp_path / "run", steps=30))
    train_high(HighLevelConfig(run=run, blocks=2, window=2, steps=30, batch_size=32,
                               landmarks=20, edge_samples=500, probe_steps=30, progress=False))
    summary = json.loads((run / "high_summary.json").read_text())
    assert summary["graph"]["landmarks"] == 20 and summary["held_out"] is not None
    plan = PlanConfig(planner="hierarchical", samples=16, iterations=2, elites=4, horizon=3)
    cfg = EvalConfig(run=run, episodes=2, budget=10, plan=plan, gif=False, progress=False)
    first, second = evaluate(cfg), evaluate(cfg)
    assert (run / "subgoals.png").exists()
    assert first["protocol"]["min_rooms"] == 3
    for a, b in zip(first["per_episode"], second["per_episode"], strict=True):
        assert a["start"] == b["start"] and a["final_distance"] == b["final_distance"]
        env = make_env("maze")
        assert env.room_distance(env.room_of(a["start"]), env.room_of(a["goal"])) >= 3
    assert first["per_episode"][0]["subgoals_xy"] == second["per_episode"][0]["subgoals_xy"]
    cem = PlanConfig(planner="hierarchical", high_search="cem", samples=16, iterations=2,
                     elites=4, horizon=3, high_samples=16, high_iterations=2, high_elites=4)
    r = evaluate(EvalConfig(run=run, episodes=1, budget=5, plan=cem, gif=False,
                            progress=False))
    assert r["episodes"] == 1 and "high" in r["per_episode"][0]["cost_terms_first_plan"]


def test_cli_accepts_planner_hierarchical_and_train_high(capsys):
    from ami.cli import main
    with pytest.raises(SystemExit) as e:
        main(["train-high", "--help"])
    assert e.value.code == 0 and "macro-step" in capsys.readouterr().out
    import tyro
    cfg = tyro.cli(EvalConfig, args=["--planner", "hierarchical"])
    assert cfg.plan.planner == "hierarchical"


def test_hierarchical_without_a_high_level_says_what_to_run(tiny_run):
    from ami.agent import Heads
    from ami.config import CostConfig
    from ami.errors import AmiError
    from ami.io import load_model
    with pytest.raises(AmiError, match="ami train-high --run"):
        Heads.load(tiny_run, load_model(tiny_run), PlanConfig(planner="hierarchical"),
                   CostConfig())
