"""`ami bench efficiency`: is predicting in embedding space cheaper than predicting pixels?

The JEPA world model and the generative baseline (`ami.baselines.generative`: the same encoder
and predictor, plus a decoder trained on pixels) are trained at equal budget — the same data,
windows, steps, batch and seed — and then plan with the same planner from the same starts to
the same goals. Every figure comes from the runs' own accounting (`ami.energy`):

    model / planning        params  train FLOPs  train kWh  success  ms/plan  FLOPs/plan
    JEPA, latent            ...
    generative, latent      ...     (the same planner in the generative model's own latent)
    generative, pixels      ...     (decoded predictions against the goal image)

It writes efficiency.json, efficiency.md (the table, a line per metric saying which model wins
and by how much, and the CO2 of each run in two grid regions) and efficiency.png.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ami.config import (
    CollectConfig,
    CostConfig,
    EfficiencyConfig,
    EvalConfig,
    TrainConfig,
    to_dict,
)
from ami.data.collect import collect
from ami.data.dataset import count_episodes, read_header
from ami.energy import GRID_INTENSITY, co2_grams
from ami.errors import AmiError
from ami.evaluate.planning import evaluate
from ami.io import MODEL_FILE, run_world, write_json
from ami.presets import preset
from ami.train import train

# (key, label, lower is better); the order of the table's columns
METRICS = [
    ("parameters", "params", True),
    ("train_flops", "training FLOPs", True),
    ("train_kwh", "training kWh", True),
    ("success", "success %", False),
    ("ms_per_plan", "ms per plan", True),
    ("flops_per_plan", "FLOPs per plan", True),
]
WHAT_IF = ("us-virginia", "netherlands")


def efficiency(cfg: EfficiencyConfig) -> dict:
    """Train both models, plan with both, write and return the comparison."""
    _check(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    data = cfg.data if cfg.data is not None else _collect(cfg, out)
    world = read_header(data)["world"]
    base = replace(preset(TrainConfig, world), data=data, steps=cfg.steps,
                   batch_size=cfg.batch_size, seed=cfg.seed, progress=cfg.progress)
    runs = {kind: _train_once(base, kind, out / kind) for kind in ("jepa", "generative")}

    rows = []
    for name, kind, space in (("JEPA", "jepa", "latent"),
                              ("generative", "generative", "latent"),
                              ("generative", "generative", "pixels")):
        rows.append(_evaluate_row(cfg, name, runs[kind], space))
    load_end = os.getloadavg()

    result = {
        "world": world, "data": str(data), "episodes_in_data": count_episodes(data),
        "train": {"steps": cfg.steps, "batch_size": cfg.batch_size, "seed": cfg.seed,
                  "same_for_both": "data, windows (history, future, frameskip), steps, batch, "
                                   "seed, optimiser and schedule; the objectives differ"},
        "plan": to_dict(cfg.plan), "region": cfg.region,
        "machine": {"cpus": os.cpu_count(), "threads": _threads(),
                    "load_average_1min": [load_start[0], load_end[0]]},
        "rows": rows,
        "verdict": verdict(rows),
        "command": "ami bench efficiency " + " ".join(_flags(cfg)),
    }
    write_json(out / "efficiency.json", result)
    (out / "efficiency.md").write_text(markdown(result))
    save_bar_plot(rows, out / "efficiency.png")
    return result


def _check(cfg: EfficiencyConfig) -> None:
    if cfg.region not in GRID_INTENSITY:
        raise AmiError(f"--region {cfg.region}: unknown; choose one of "
                       f"{', '.join(GRID_INTENSITY)}")
    for name in ("steps", "batch_size", "eval_episodes", "episodes", "budget"):
        if getattr(cfg, name) < (0 if name == "budget" else 1):
            raise AmiError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    if cfg.pixel_plans < 1 and cfg.pixel_episodes < 1:
        raise AmiError("--pixel-plans or --pixel-episodes must be >= 1")


def _threads() -> int:
    import torch
    return torch.get_num_threads()


def _collect(cfg: EfficiencyConfig, out: Path) -> Path:
    path = out / "two_rooms.h5"
    # resume: a file from an earlier run of this benchmark is topped up, not collected again
    return collect(CollectConfig(out=path, episodes=cfg.episodes, seed=cfg.seed, resume=True),
                   progress=cfg.progress)


def _train_once(base: TrainConfig, kind: str, run: Path) -> Path:
    """Train `kind` into `run`, or reuse a finished run there trained with the same settings."""
    cfg = replace(base, run=run, model=replace(base.model, kind=kind))
    if (run / MODEL_FILE).exists() and (run / "accounting.json").exists():
        saved = json.loads((run / "config.json").read_text())["train"]
        mine = to_dict(cfg)
        same = all(saved.get(k) == v for k, v in mine.items()
                   if k not in ("model", "progress", "run"))
        if same and all(saved["model"].get(k) == v for k, v in mine["model"].items()
                        if k not in ("image_size", "channels", "action_dim", "action_scale")):
            return run
        raise AmiError(f"{run} holds a run trained with other settings; choose a new --out")
    return train(cfg)


def _evaluate_row(cfg: EfficiencyConfig, name: str, run: Path, space: str) -> dict:
    acct = json.loads((run / "accounting.json").read_text())
    pixels_timed_only = space == "pixels" and cfg.pixel_episodes < 1
    world = run_world(run)
    ecfg = preset(EvalConfig, world)  # the world's goal rule and budget
    if pixels_timed_only:  # a short episode: exactly pixel_plans plans, unless it arrives
        ecfg = replace(ecfg, episodes=1, budget=cfg.pixel_plans * cfg.plan.replan_every)
    else:
        ecfg = replace(ecfg, episodes=cfg.pixel_episodes if space == "pixels"
                       else cfg.eval_episodes, budget=cfg.budget or ecfg.budget)
    ecfg = replace(ecfg, run=run, plan=cfg.plan, cost=CostConfig(goal_space=space), gif=False,
                   progress=cfg.progress)
    t = time.perf_counter()
    r = evaluate(ecfg)
    (run / "eval.json").rename(run / f"eval_{space}.json")
    e = r["accounting"]
    return {
        "model": name, "planning": space, "run": str(run),
        "parameters": acct["parameters"],
        "train_flops": acct["flops"]["total"],
        "train_flops_per_step": acct["flops"]["per_step"],
        "train_kwh": acct["energy_kwh"],
        "train_energy_method": acct["energy_method"],
        "train_wall_s": acct["wall_seconds"], "train_cpu_s": acct["cpu_seconds"],
        "train_peak_rss_mb": acct["peak_memory"]["rss_bytes"] / 2**20,
        "success": None if pixels_timed_only else 100 * r["success_rate"],
        "eval_episodes": 0 if pixels_timed_only else r["episodes"],
        "plans": e["flops"]["plans"],
        "ms_per_plan": r["ms_per_plan_median"],
        "flops_per_plan": e["flops"]["per_plan"],
        "eval_kwh": e["energy_kwh"], "eval_wall_s": time.perf_counter() - t,
        "co2_grams": {region: co2_grams(acct["energy_kwh"] + e["energy_kwh"], region)
                      for region in (cfg.region, *WHAT_IF)},
    }


def verdict(rows: list[dict]) -> list[str]:
    """One line per metric: which model wins, by what factor; a tie or a loss is said as such."""
    lines = []
    jepa = rows[0]
    for key, label, lower in METRICS:
        for other in rows[1:]:
            if key.startswith("train") or key == "parameters":
                if other["planning"] != "latent":  # training figures: one line per model
                    continue
                who = other["model"]
            else:
                who = f"{other['model']} ({other['planning']})"
            a, b = jepa[key], other[key]
            if a is None or b is None:
                lines.append(f"{label}: JEPA vs {who}: not measured")
                continue
            if a == b:
                lines.append(f"{label}: JEPA and {who} tie ({_fmt(a, key)})")
                continue
            jepa_wins = (a < b) == lower
            ratio = max(a, b) / min(a, b) if min(a, b) > 0 else float("inf")
            winner, loser = ("JEPA", who) if jepa_wins else (who, "JEPA")
            lines.append(f"{label}: {winner} wins over {loser}: {_fmt(a, key)} vs "
                         f"{_fmt(b, key)}" + (f" ({ratio:.1f}×)" if key != "success" else ""))
    return lines


def _fmt(v, key: str) -> str:
    if v is None:
        return "—"
    if key == "success":
        return f"{v:.0f} %"
    if "flops" in key:
        scale, unit = next((s, u) for s, u in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1, ""))
                           if v >= s or s == 1)
        return f"{v / scale:.3g} {unit}"
    if "kwh" in key:
        return f"{v * 1000:.3g} Wh"
    if key == "parameters":
        return f"{v:,}"
    return f"{v:.1f}"


def markdown(result: dict) -> str:
    rows = result["rows"]
    region = result["region"]
    head = ["model", "planning", *[label for _, label, _ in METRICS], "train s (wall)",
            f"CO2 g ({region})", *[f"CO2 g ({r})" for r in WHAT_IF]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], r["planning"]]
        for key, _, _ in METRICS:
            cell = _fmt(r[key], key)
            if key == "success":
                cell = (f"{cell} of {r['eval_episodes']}" if r["success"] is not None
                        else f"— ({r['plans']} plans timed)")
            cells.append(cell)
        cells.append(f"{r['train_wall_s']:.0f}")
        cells += [f"{r['co2_grams'][x]:.3g}" for x in (region, *WHAT_IF)]
        lines.append("| " + " | ".join(cells) + " |")
    m = result["machine"]
    notes = [
        "", f"World {result['world']}, {result['episodes_in_data']} episodes; both models "
        f"trained {result['train']['steps']} steps of {result['train']['batch_size']} windows.",
        f"Energy: {rows[0]['train_energy_method']}. CO2 covers training and this evaluation.",
        f"Machine: {m['cpus']} CPUs, {m['threads']} torch threads, 1-min load average "
        f"{m['load_average_1min'][0]:.1f} at the start and {m['load_average_1min'][1]:.1f} at "
        f"the end (above {m['cpus']}: measured under load, times inflated).",
        "", *[f"- {line}" for line in result["verdict"]],
        "", f"Command: `{result['command']}`", "",
    ]
    return "\n".join(lines + notes)


COLOURS = [(31, 119, 180), (255, 127, 14), (214, 39, 40)]


def save_bar_plot(rows: list[dict], path: Path) -> Path:
    """One panel per metric, one horizontal bar per row (log scale: the ratios matter)."""
    import math
    font = ImageFont.load_default()
    width, panel_h, left = 720, 30 + 22 * len(rows), 190
    img = Image.new("RGB", (width, panel_h * len(METRICS)), "white")
    draw = ImageDraw.Draw(img)
    for p, (key, label, lower) in enumerate(METRICS):
        top = p * panel_h
        better = "lower is better" if lower else "higher is better"
        draw.text((8, top + 6), f"{label} ({better}; log scale)" if key != "success"
                  else f"{label} ({better})", fill="black", font=font)
        values = [r[key] for r in rows]
        known = [v for v in values if v is not None and v > 0]
        lo = min(known) / 10 if known else 1.0
        hi = max(known) if known else 1.0
        for i, (r, v) in enumerate(zip(rows, values, strict=True)):
            y = top + 26 + 22 * i
            draw.text((8, y + 3), f"{r['model']}, {r['planning']}", fill="black", font=font)
            if v is None:
                draw.text((left, y + 3), "not measured", fill=(120, 120, 120), font=font)
                continue
            span = width - left - 110
            if key == "success":
                frac = v / 100
            else:
                frac = (math.log(max(v, lo)) - math.log(lo)) / max(1e-9, math.log(hi) -
                                                                      math.log(lo))
            x1 = left + max(1, int(span * frac))
            draw.rectangle([left, y, x1, y + 16], fill=COLOURS[i % len(COLOURS)])
            draw.text((x1 + 6, y + 3), _fmt(v, key), fill="black", font=font)
    img.save(path)
    return path


def _flags(cfg: EfficiencyConfig) -> list[str]:
    d = to_dict(cfg)
    flags = []
    for k, v in d.items():
        if k in ("benchmark", "plan", "progress"):
            continue
        if v is not None:
            flags.append(f"--{k.replace('_', '-')} {v}")
    return flags
