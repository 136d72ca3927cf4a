"""`ami demo`: the whole loop on Two-Rooms — collect, train, evaluate — and a summary."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from ami.config import DemoConfig
from ami.data.collect import collect
from ami.data.dataset import EpisodeDataset
from ami.evaluate.planning import evaluate
from ami.io import write_json
from ami.train import train


def demo(cfg: DemoConfig) -> dict:
    """Collect fresh data, train a world model, plan with it; returns the summary."""
    runs = Path(cfg.runs)
    runs.mkdir(parents=True, exist_ok=True)
    data_path = runs / f"{cfg.collect.world}.h5"
    data_path.unlink(missing_ok=True)  # a demo starts from fresh data, never appends

    t0 = time.perf_counter()
    collect(replace(cfg.collect, out=data_path))
    collect_s = time.perf_counter() - t0
    data = EpisodeDataset.load(data_path)
    run = cfg.train.run or runs / f"{cfg.collect.world}-{time.strftime('%Y%m%d-%H%M%S')}"

    t0 = time.perf_counter()
    run = train(replace(cfg.train, data=data_path, run=run))
    train_s = time.perf_counter() - t0
    link_latest(run)

    t0 = time.perf_counter()
    result = evaluate(replace(cfg.eval, run=run))
    eval_s = time.perf_counter() - t0

    from ami.io import load_model
    summary = {
        "run": str(run),
        "data": str(data_path),
        "episodes_collected": data.num_episodes,
        "frames": len(data.frames),
        "collect_seconds": collect_s,
        "train_seconds": train_s,
        "train_steps": cfg.train.steps,
        "parameters": load_model(run).num_parameters(),
        "eval_episodes": result["episodes"],
        "success_rate": result["success_rate"],
        "mean_steps": result["mean_steps"],
        "ms_per_plan_median": result["ms_per_plan_median"],
        "seconds_per_episode": result["seconds_per_episode"],
        "eval_seconds": eval_s,
    }
    write_json(Path(run) / "demo.json", summary)
    return summary


def link_latest(run: Path) -> None:
    """Point runs/latest at the newest run (best effort: not every filesystem has symlinks)."""
    latest = Path(run).parent / "latest"
    try:
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(Path(run).name)
    except OSError:
        pass
