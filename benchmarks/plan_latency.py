"""Median milliseconds of one CEM plan at the LeWM setting (300 samples, 30 iterations,
horizon 5) with the default Two-Rooms model (random weights: latency does not depend on them).

    python benchmarks/plan_latency.py [--run RUN] [--repeats 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from ami.actor import ActionBounds, CEMPlanner
from ami.config import ModelConfig
from ami.cost import GoalCost
from ami.envs import TwoRooms
from ami.io import load_model
from ami.world_model import WorldModel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", default=None, help="run directory (default: default model, random)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.run) if args.run else WorldModel(ModelConfig()).eval()
    env = TwoRooms()
    torch.set_grad_enabled(False)
    z = model.encode(env.render_state(np.array([10.0, 10.0])))[None, None]   # (1, 1, D)
    z_goal = model.encode(env.render_state(np.array([50.0, 50.0])))
    planner = CEMPlanner(ActionBounds.of(env), horizon=5, block_dim=model.block_dim,
                         samples=300, iterations=30, elites=30)
    cost = GoalCost(z_goal, "final")
    for _ in range(3):
        planner.plan(model, z, cost)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        planner.plan(model, z, cost)
        times.append(1000 * (time.perf_counter() - t))
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} threads")
    source = f"run {args.run}" if args.run else "default config"
    print(f"model: {model.num_parameters():,} parameters ({source})")
    print(f"CEM plan (300 samples x 30 iterations, horizon 5): "
          f"median {statistics.median(times):.1f} ms, min {min(times):.1f} ms "
          f"over {args.repeats} plans")


if __name__ == "__main__":
    main()
