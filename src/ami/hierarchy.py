"""H-JEPA at the run level: `ami train-high` trains the slower, more abstract level of a run's
world model on its frozen embeddings, and writes it beside the model:

    ami train-high --run RUN          # high.safetensors (predictor, landmark graph, probe)
    ami eval --run RUN --actor hierarchical

The model and its loss are in `ami/world_model/hierarchy.py`, the planner in
`ami/actor/hierarchical.py`. high.safetensors also holds a position probe (embedding → x, y),
which `ami eval` uses to draw where the subgoals are.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ami.config import HighLevelConfig, ModelConfig, to_dict
from ami.errors import AmiError, check_rules
from ami.heads import frozen_embeddings
from ami.io import atomic_write, check_state_dict, read_safetensors, write_json
from ami.world_model.hierarchy import (
    HighLevelModel,
    LandmarkGraph,
    PositionProbe,
    high_level_loss,
    macro_windows,
    train_high_level,
    window_batch,
)

HIGH_FILE = "high.safetensors"
HELD_OUT = 0.1      # share of episodes kept out of training, to score the high level on


def train_high(cfg: HighLevelConfig) -> Path:
    """Train and save the high level of `cfg.run`; returns the path of high.safetensors."""
    check_rules(cfg, [(name, getattr(cfg, name) >= low, f">= {low}") for name, low in [
        ("blocks", 1), ("macro_dim", 1), ("width", 1), ("depth", 2), ("window", 1), ("steps", 1),
        ("batch_size", 1), ("landmarks", 2), ("edge_samples", 1), ("min_edge_count", 1),
        ("probe_steps", 0)]])
    t0 = time.perf_counter()
    model, data, z = frozen_embeddings(cfg.run, cfg.data)
    m = model.cfg
    torch.manual_seed(cfg.seed)
    high = HighLevelModel(m.embed_dim, m.action_dim, m.frameskip, cfg.blocks, cfg.macro_dim,
                          cfg.width, cfg.depth, m.action_scale)
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(data.num_episodes)
    n_test = max(1, round(HELD_OUT * data.num_episodes)) if data.num_episodes > 1 else 0
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    span = cfg.window * high.steps
    if not (data.lengths[train] > span).any():
        raise AmiError(f"no training episode holds a window of {cfg.window} macro-steps of "
                       f"{high.steps} steps ({span + 1} frames); lower --window or --blocks")
    bar = tqdm(total=cfg.steps, desc="train-high", unit="step", disable=not cfg.progress)

    def progress(terms):
        bar.update()
        if bar.n % 50 == 0:
            bar.set_postfix(pred=f"{terms['pred']:.4f}", rollout=f"{terms['rollout']:.4f}")

    history = train_high_level(high, z, data.actions, data.starts[train], data.lengths[train],
                               cfg.window, cfg.steps, cfg.batch_size, cfg.lr,
                               cfg.sigreg_weight, cfg.seed, progress)
    bar.close()
    held_out = _held_out_error(high, z, data, test, cfg.window, rng) if n_test else None
    graph = LandmarkGraph(min(cfg.landmarks, len(z)), m.embed_dim).build(
        high, z, data.actions, data.starts, data.lengths, cfg.edge_samples, cfg.min_edge_count,
        seed=cfg.seed)
    probe, probe_mae = None, None
    if cfg.probe_steps > 0:
        if data.states is None:
            raise AmiError("the run's data records no states to fit the position probe on; "
                           "pass --probe-steps 0")
        probe = PositionProbe(m.embed_dim)
        probe_mae = probe.fit(z, data.states[:, :2], cfg.probe_steps, seed=cfg.seed)
    run = Path(cfg.run)
    write_json(run / "high_summary.json", {
        "seconds": time.perf_counter() - t0,
        "loss_first": history[0], "loss_last_100": {
            k: float(np.mean([h[k] for h in history[-100:]])) for k in history[0]},
        "held_out": held_out, "probe_mae_px": probe_mae,
        "macro_step_env_steps": high.steps,
        "graph": {"landmarks": len(graph.landmarks), "edges": int(graph.edges.sum()),
                  "predictor_agrees_with_data": graph.agreement,
                  "connected_to_all": _reach_all(graph)},
        "config": to_dict(cfg)})
    return save_high(high, graph, probe, run / HIGH_FILE, cfg)


def _reach_all(graph: LandmarkGraph) -> float:
    """Share of landmark pairs (i, j) with a path from i to j."""
    reach = (graph.edges > 0) | torch.eye(len(graph.edges), dtype=torch.bool)
    for _ in range(int(np.ceil(np.log2(max(2, len(reach))))) + 1):   # transitive closure
        reach = reach | ((reach.float() @ reach.float()) > 0)
    return float(reach.float().mean())


@torch.no_grad()
def _held_out_error(high: HighLevelModel, z, data, episodes, window, rng) -> dict | None:
    """Prediction error of the high level on episodes it never trained on, against the error
    of predicting no change (ẑ = z_t), per macro-step of the rollout."""
    lengths = data.lengths[episodes]
    if not (lengths > window * high.steps).any():
        return None
    first = macro_windows(data.starts[episodes], lengths, high.steps, window, 512, rng)
    zw, chunks = window_batch(z, data.actions, first, high.steps, window)
    _, terms = high_level_loss(high, zw, chunks)
    roll = high.rollout(zw[:, 0], high.encode_macro(chunks))
    per_step = (roll - zw[:, 1:]).pow(2).mean((0, 2))
    stay = (zw[:, :1] - zw[:, 1:]).pow(2).mean((0, 2))
    return {"episodes": int(len(episodes)), "windows": int(len(first)),
            "pred_mse": float(terms["pred"]), "rollout_mse_per_step": per_step.tolist(),
            "no_change_mse_per_step": stay.tolist()}


def _bundle(high: HighLevelModel, graph: LandmarkGraph, probe: PositionProbe | None
            ) -> nn.ModuleDict:
    return nn.ModuleDict({"high": high, "graph": graph,
                          **({"probe": probe} if probe is not None else {})})


def save_high(high: HighLevelModel, graph: LandmarkGraph, probe: PositionProbe | None,
              path: Path, cfg: HighLevelConfig) -> Path:
    tensors = {k: v.detach().cpu().contiguous() for k, v in _bundle(high, graph, probe)
               .state_dict().items()}
    meta = {"ami_high_config": json.dumps(to_dict(cfg)), "ami_head": "HighLevelModel",
            "probe": json.dumps(probe is not None)}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_high(run: Path, model_cfg: ModelConfig
              ) -> tuple[HighLevelModel, LandmarkGraph, PositionProbe | None]:
    """The run's high level, its landmark graph and position probe (None if trained without),
    loaded strictly."""
    path = Path(run) / HIGH_FILE
    if not path.exists():
        raise AmiError(f"no {HIGH_FILE} in {run}; train the high level with "
                       f"`ami train-high --run {run}`")
    meta, tensors = read_safetensors(path)
    if "ami_high_config" not in meta:
        raise AmiError(f"{path}: safetensors file without ami_high_config metadata")
    c = json.loads(meta["ami_high_config"])
    m = model_cfg
    high = HighLevelModel(m.embed_dim, m.action_dim, m.frameskip, c["blocks"], c["macro_dim"],
                          c["width"], c["depth"], m.action_scale)
    graph = LandmarkGraph(len(tensors.get("graph.landmarks", [])), m.embed_dim)
    probe = PositionProbe(m.embed_dim) if json.loads(meta.get("probe", "false")) else None
    bundle = _bundle(high, graph, probe)
    check_state_dict(bundle, tensors, path)
    bundle.load_state_dict(tensors, strict=True)
    return high.eval(), graph, probe.eval() if probe is not None else None
