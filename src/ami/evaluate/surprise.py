"""`ami surprise`: violation of expectation, measured as the world model's surprise.

Surprise of frame t is the latent prediction error ||ẑ_t − z_t||² / D: ẑ_t is what the predictor
expects from the sliding context window of `history` frames (`frameskip` apart) that ends
`horizon` predictor steps before t, rolled forward through the actions taken since, and z_t is
the encoder's embedding of the frame actually observed. A clip scores the max and the mean of
its frames' surprise. Over matched pairs (violations.py), the suite reports per category the
relative accuracy (the impossible clip is the more surprising one of its pair) and the AUROC
(an impossible clip is more surprising than a possible one, over all clips).
"""

from __future__ import annotations

import time
from dataclasses import is_dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ami.config import BallisticConfig, SurpriseConfig, from_dict, to_dict
from ami.data.dataset import read_header
from ami.envs import make_env
from ami.errors import AmiError
from ami.evaluate.plot import Series, save_line_plots
from ami.evaluate.violations import CATEGORIES, CONTROLS, make_pairs
from ami.io import MODEL_FILE, file_sha256, load_model, run_config, run_world, write_json
from ami.world_model.model import WorldModel


@torch.no_grad()
def frame_surprise(model: WorldModel, frames, actions, horizon: int = 1) -> np.ndarray:
    """Per-frame surprise of clips: frames (B, T+1, H, W, C) uint8, actions (B, T, A) →
    (B, T+1) float, NaN for the first frames, which have no full context window before them."""
    h, fs = model.cfg.history, model.cfg.frameskip
    frames, actions = np.asarray(frames), np.asarray(actions, np.float32)
    b, n = frames.shape[:2]
    first = (h - 1 + horizon) * fs
    out = np.full((b, n), np.nan)
    if first >= n:
        return out
    z = model.encode(frames)                                        # (B, T+1, D)
    target = np.arange(first, n)                                     # (N,)
    ctx_end = target - horizon * fs
    ctx = ctx_end[:, None] - fs * np.arange(h - 1, -1, -1)           # (N, h)
    steps = ctx_end[:, None] + np.arange(horizon * fs)               # (N, horizon·fs)
    blocks = torch.as_tensor(actions[:, steps].reshape(b * len(target), horizon, -1),
                             device=model.device)                    # (B·N, horizon, fs·A)
    z_ctx = z[:, ctx].reshape(b * len(target), h, -1)                # (B·N, h, D)
    z_hat = model.rollout(z_ctx, blocks)[:, -1]                      # (B·N, D)
    err = (z_hat - z[:, target].reshape(b * len(target), -1)).pow(2).mean(-1)
    out[:, first:] = err.reshape(b, len(target)).float().cpu().numpy()
    return out


def clip_scores(per_frame: np.ndarray) -> dict[str, np.ndarray]:
    """Max and mean surprise per clip, over the frames that have one: (B, T+1) → (B,) each."""
    return {"max": np.nanmax(per_frame, axis=1), "mean": np.nanmean(per_frame, axis=1)}


def relative_accuracy(possible: np.ndarray, impossible: np.ndarray) -> float:
    """Share of pairs whose impossible clip is more surprising than its possible twin (ties
    count half)."""
    possible, impossible = np.asarray(possible, float), np.asarray(impossible, float)
    return float(np.mean((impossible > possible) + 0.5 * (impossible == possible)))


def auroc(possible: np.ndarray, impossible: np.ndarray) -> float:
    """P(score of an impossible clip > score of a possible one) over all clips, ties counting
    half: the area under the ROC curve of surprise as a detector of impossible clips."""
    neg, pos = np.asarray(possible, float), np.asarray(impossible, float)
    scores = np.concatenate([neg, pos])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):           # tied scores share their average rank
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    u = ranks[len(neg):].sum() - len(pos) * (len(pos) + 1) / 2   # Mann–Whitney U of `pos`
    return float(u / (len(neg) * len(pos)))


def surprise(cfg: SurpriseConfig) -> dict:
    """Score the run's world model on the violation-of-expectation suite of its world; writes
    surprise.json (and surprise.png) in the run directory."""
    _check(cfg)
    run = Path(cfg.run)
    model = load_model(run)
    world, world_options, source = _world_of(run)
    env = make_env(world, **world_options)
    t0 = time.perf_counter()
    results, examples = {}, []
    for category in tqdm(_categories(world, env, cfg), desc="surprise", unit="category",
                         disable=not cfg.progress):
        try:
            pairs = make_pairs(world, env, category, cfg.pairs, cfg.steps, cfg.seed)
        except RuntimeError as e:  # a world whose settings never lead to the event
            raise AmiError(f"{category}: {e}") from None
        results[category], per_frame = _score_pairs(model, pairs, cfg)
        examples.append((category, pairs[0].event, per_frame["possible"][0],
                         per_frame["impossible"][0]))
    result = {
        "world": world,
        "categories": results,
        "seconds": time.perf_counter() - t0,
        "protocol": {
            "surprise": "||ẑ_t − z_t||² / D, ẑ_t predicted from the context window ending "
                        "horizon·frameskip steps before t; clip score: max or mean over frames",
            "pairs": cfg.pairs, "steps": cfg.steps, "horizon": cfg.horizon, "seed": cfg.seed,
            "history": model.cfg.history, "frameskip": model.cfg.frameskip,
            "world_options": {k: to_dict(v) if is_dataclass(v) else v
                              for k, v in world_options.items()},
            "world_options_from": source,
            "model_sha256": file_sha256(run / MODEL_FILE),
            "command": f"ami surprise --run {run} --pairs {cfg.pairs} --steps {cfg.steps} "
                       f"--horizon {cfg.horizon} --seed {cfg.seed}"
                       + (f" --categories {' '.join(cfg.categories)}" if cfg.categories else ""),
        },
    }
    write_json(run / "surprise.json", result)
    if cfg.plot:
        save_line_plots([
            (f"{category}: one pair; the grey line is where its clips part", event,
             [Series("possible", possible, (40, 110, 220)),
              Series("impossible" if category not in CONTROLS else "changed", impossible,
                     (220, 50, 50))])
            for category, event, possible, impossible in examples
        ], run / "surprise.png", x_label="frame", y_label="surprise")
    return result


def _categories(world: str, env, cfg: SurpriseConfig) -> tuple[str, ...]:
    if world not in CATEGORIES:
        raise AmiError(f"no violation-of-expectation suite for world {world}; there is one for "
                       f"{', '.join(CATEGORIES)}")
    categories = cfg.categories or CATEGORIES[world]
    unknown = [c for c in categories if c not in CATEGORIES[world]]
    if unknown:
        raise AmiError(f"unknown categories {unknown} for world {world}; choose from "
                       f"{', '.join(CATEGORIES[world])}")
    if world == "ballistic" and not env.config.occluder:   # nothing to vanish behind
        if "vanish" in cfg.categories:
            raise AmiError("the vanish category needs an occluder, and the run's world has none")
        categories = tuple(c for c in categories if c != "vanish")
    return categories


def _score_pairs(model: WorldModel, pairs: list, cfg: SurpriseConfig
                 ) -> tuple[dict, dict[str, np.ndarray]]:
    """One category's scores, and the per-frame surprise of its clips by kind."""
    actions = np.stack([p.actions for p in pairs])
    per_frame = {kind: _batched(model, np.stack([getattr(p, kind) for p in pairs]), actions,
                                cfg.horizon, cfg.batch)
                 for kind in ("possible", "impossible")}
    possible, impossible = (clip_scores(per_frame[k]) for k in ("possible", "impossible"))
    scores = {
        "control": pairs[0].category in CONTROLS,
        "pairs": len(pairs),
        **{f"auroc_{s}": auroc(possible[s], impossible[s]) for s in ("max", "mean")},
        **{f"relative_accuracy_{s}": relative_accuracy(possible[s], impossible[s])
           for s in ("max", "mean")},
        "events": [p.event for p in pairs],
        "possible": {s: v.tolist() for s, v in possible.items()},
        "impossible": {s: v.tolist() for s, v in impossible.items()},
    }
    return scores, per_frame


def _batched(model, frames, actions, horizon, batch) -> np.ndarray:
    return np.concatenate([frame_surprise(model, frames[i:i + batch], actions[i:i + batch],
                                          horizon)
                           for i in range(0, len(frames), batch)])


def _check(cfg: SurpriseConfig) -> None:
    for name, ok, want in [("pairs", cfg.pairs >= 2, ">= 2"), ("steps", cfg.steps >= 30, ">= 30"),
                           ("horizon", cfg.horizon >= 1, ">= 1"), ("batch", cfg.batch >= 1, ">= 1"),
                           ("seed", cfg.seed >= 0, ">= 0")]:
        if not ok:
            raise AmiError(f"--{name} must be {want}, got {getattr(cfg, name)}")


def _world_of(run: Path) -> tuple[str, dict, str]:
    """The run's world, the constructor options of the world its data came from, and where
    those options were found: the suite must be made in the world the model learned."""
    config, world = run_config(run), run_world(run)
    if world != "ballistic":
        return world, {}, "defaults"
    data = Path(config.get("data", {}).get("path", ""))
    try:
        saved = (read_header(data)["provenance"] or {}).get("ballistic")
    except AmiError:
        saved = None
    if saved is None:
        return world, {"config": BallisticConfig()}, "defaults (the run's data has no record)"
    options = from_dict(BallisticConfig, saved)           # JSON's lists back to tuples there
    return world, {"config": options}, str(data)
