"""Planner × (success, ms per plan, ms per environment step, s per episode) on Two-Rooms.

Runs `ami eval` once per actor on the same trained run, same seeds and budget:

    python benchmarks/planners.py --run runs/latest [--episodes 50]

CEM and MPPI use the LeWM setting (300 samples × 30 iterations, horizon 5); gradient planning
gets the same number of rollouts per plan's forward passes (300 restarts × 30 steps); the
Mode-1 policy (`ami train-policy` first) acts one block at a time with no search.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ami.config import EvalConfig, PlanConfig
from ami.evaluate.planning import evaluate

ACTORS = {
    "cem": PlanConfig(planner="cem"),
    "mppi": PlanConfig(planner="mppi"),
    "gradient": PlanConfig(planner="gradient"),
    "policy": PlanConfig(planner="policy", horizon=1),
    "cem+policy": PlanConfig(planner="cem", policy_init=True),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", type=Path, default=Path("runs/latest"))
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--actors", nargs="+", default=list(ACTORS), choices=list(ACTORS))
    args = p.parse_args()
    rows = []
    for name in args.actors:
        # each actor's eval.json is kept beside the others
        cfg = EvalConfig(run=args.run, episodes=args.episodes, plan=ACTORS[name], gif=False,
                         progress=False)
        r = evaluate(cfg)
        (args.run / "eval.json").rename(args.run / f"eval_{name}.json")
        rows.append((name, 100 * r["success_rate"], r["ms_per_plan_median"],
                     r["ms_per_env_step"], r["seconds_per_episode"], r["mean_steps"]))
        print(f"{name}: done", flush=True)
    print(f"\nrun {args.run}, {args.episodes} episodes, seeds from {EvalConfig().seed}")
    print("| actor | success % | ms per plan (median) | ms per env step | s per episode "
          "| mean steps |")
    print("|---|---|---|---|---|---|")
    for name, succ, ms_plan, ms_step, s_ep, steps in rows:
        print(f"| {name} | {succ:.0f} | {ms_plan:.2f} | {ms_step:.2f} | {s_ep:.3f} | {steps:.1f} |")


if __name__ == "__main__":
    main()
