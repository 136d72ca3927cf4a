"""One preset per world: the settings in which a world differs from config.py's defaults, which
are the Two-Rooms preset.

`ami collect --world W` and `ami train --data FILE` (whose episodes name their world) start from
the world's preset; options given on the command line still win. In Python:
`preset(TrainConfig, "ballistic")`.
"""

from __future__ import annotations

from dataclasses import is_dataclass, replace
from pathlib import Path

from ami.config import CollectConfig, EvalConfig, TrainConfig

PRESETS: dict[str, dict[type, dict]] = {
    "pusht": {
        # 2000 pushing episodes (80 % scripted pusher, 20 % random targets) in two processes
        CollectConfig: {"out": Path("data/pusht.h5"), "world": "pusht", "episodes": 2000,
                        "steps": 100, "heuristic_ratio": 0.8, "workers": 2},
        # action blocks of 5 steps (0.5 s), as DINO-WM and LeWM; two frames of history, since
        # the agent's velocity is not in one frame; a wider embedding and predictor for the
        # block's pose and its contacts; an encoder twice as wide (32 channels first): 58 %
        # against 30 % on protocol (a) at the same 2,500 steps (BENCHMARKS.md, issue 5). Runs
        # trained with width 16 keep loading: their config.json holds their own width.
        # SiLU, as that run: a ReLU predictor (the Two-Rooms default) reached 38 % there
        TrainConfig: {"model": {"embed_dim": 64, "encoder_width": 32, "predictor_width": 256,
                                "predictor_depth": 4, "predictor_activation": "silu",
                                "history": 2, "frameskip": 5},
                      "steps": 2500},
        # the LeWM / DINO-WM protocol: goal 25 steps ahead in a held-out episode, 50 steps
        EvalConfig: {"goal_rule": "trajectory", "budget": 50, "episodes": 50},
    },
    "ballistic": {
        # many short episodes: more starts, more crossings of the occluder and the walls
        CollectConfig: {"out": Path("data/ballistic.h5"), "world": "ballistic",
                        "episodes": 600, "steps": 60},
        # velocity is not visible in one frame: the predictor reads 4 frames, 2 steps apart, a
        # window long enough to remember a ball that went behind the occluder; bounces need a
        # wider, deeper predictor. No smoothness term: nothing here plans towards a goal.
        # GELU, as the run measured in BENCHMARKS.md (issue 7), trained before the predictor's
        # activation became an option; the ReLU default is untested here
        TrainConfig: {"model": {"history": 4, "frameskip": 2, "predictor_width": 256,
                                "predictor_depth": 4, "predictor_activation": "gelu"},
                      "future": 2, "smooth_weight": 0.0, "steps": 4000},
    },
    "maze": {
        # long walks that cross many doors: the high level (`ami train-high`) learns from
        # windows of several 20-step macro-steps, and every door must be crossed often
        CollectConfig: {"out": Path("data/maze.h5"), "world": "maze", "episodes": 250,
                        "steps": 160, "heuristic_ratio": 0.8},
        # GELU, as the run measured in BENCHMARKS.md (issue 12); the ReLU default is untested here
        TrainConfig: {"model": {"predictor_activation": "gelu"}, "steps": 3000},
    },
}


def preset(cls: type, world: str | None):
    """`cls()` with `world`'s preset applied (config.py's defaults for Two-Rooms, or for a
    world without a preset)."""
    return _apply(cls(), PRESETS.get(world or "", {}).get(cls, {}))


def _apply(cfg, changes: dict):
    fields = {}
    for name, value in changes.items():
        current = getattr(cfg, name)
        fields[name] = _apply(current, value) if is_dataclass(current) else value
    return replace(cfg, **fields)
