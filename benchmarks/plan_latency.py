"""Median milliseconds of one CEM plan at the LeWM setting (300 samples, 30 iterations,
horizon 5) with the default Two-Rooms model (random weights: latency does not depend on them),
the plan's achieved GFLOP/s, and this machine's float32 matmul GFLOP/s measured in the same run.

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
from ami.cost import GoalDistance, IntrinsicCost
from ami.envs import TwoRooms
from ami.io import load_model
from ami.world_model import WorldModel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", default=None, help="run directory (default: default model, random)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--variants", action="store_true",
                   help="also time bf16 autocast, torch.compile and the other predictor "
                        "activations (gelu, relu, silu), "
                        "interleaved with the default so that load affects all alike")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.run) if args.run else WorldModel(ModelConfig()).eval()
    env = TwoRooms()
    torch.set_grad_enabled(False)
    z = model.encode(env.render_state(np.array([10.0, 10.0])))[None, None]   # (1, 1, D)
    z_goal = model.encode(env.render_state(np.array([50.0, 50.0])))
    planner = CEMPlanner(ActionBounds.of(env), horizon=5, block_dim=model.block_dim,
                         samples=300, iterations=30, elites=30)
    cost = IntrinsicCost([GoalDistance(z_goal)])
    times = median_ms(lambda: planner.plan(model, z, cost), args.repeats)
    plan_flops = 300 * 30 * 5 * predictor_flops_per_step(model)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    peak = 2 * 2048**3 / (statistics.median(median_ms(lambda: a @ b, 10)) / 1000) / 1e9
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} threads")
    source = f"run {args.run}" if args.run else "default config"
    print(f"model: {model.num_parameters():,} parameters ({source})")
    print(f"CEM plan (300 samples x 30 iterations, horizon 5): "
          f"median {statistics.median(times):.1f} ms, min {min(times):.1f} ms "
          f"over {args.repeats} plans")
    achieved = plan_flops / (statistics.median(times) / 1000) / 1e9
    print(f"CEM plan throughput: {plan_flops / 1e9:.2f} GFLOP per plan, {achieved:.0f} GFLOP/s; "
          f"fp32 matmul peak (2048^3) {peak:.0f} GFLOP/s; ratio {achieved / peak:.2f}")
    if args.variants:
        compare_variants(model, planner, z, cost, args.repeats)


def compare_variants(model, planner, z, cost, repeats: int) -> None:
    """Median ms per plan of speed variants, timed round-robin in one run."""
    import contextlib
    import copy
    from dataclasses import replace
    other = {act: WorldModel(replace(model.cfg, predictor_activation=act)).eval()
             for act in ("gelu", "relu", "silu") if act != model.cfg.predictor_activation}
    compiled = copy.deepcopy(model)
    compiled.predictor.rollout = torch.compile(compiled.predictor.rollout, dynamic=False)
    t = time.perf_counter()
    planner.plan(compiled, z, cost)
    print(f"torch.compile of the rollout: {time.perf_counter() - t:.1f} s to compile")
    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    none = contextlib.nullcontext
    variants = {f"{model.cfg.predictor_activation} (this model)": (model, none),
                "bf16 autocast": (model, bf16), "compiled rollout": (compiled, none),
                **{f"{act} predictor": (m, none) for act, m in other.items()}}
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, (m, ctx) in variants.items():
            with ctx():
                t = time.perf_counter()
                planner.plan(m, z, cost)
                times[name].append(1000 * (time.perf_counter() - t))
    for name, ts in times.items():
        print(f"  {name:<22} median {statistics.median(ts):.1f} ms")


def median_ms(fn, repeats: int) -> list[float]:
    """Times of `repeats` calls in ms, after 3 warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    return times


def predictor_flops_per_step(model) -> int:
    """Multiply-adds ×2 of the predictor's linear layers for one candidate and one step."""
    return sum(2 * m.in_features * m.out_features for m in model.predictor.modules()
               if isinstance(m, torch.nn.Linear))


if __name__ == "__main__":
    main()
