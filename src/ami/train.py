"""`ami train`: one loop for the JEPA world model, MSE(ẑ, z) + λ·SIGReg, end to end from pixels."""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ami.config import TrainConfig, to_dict
from ami.data.dataset import EpisodeDataset
from ami.data.windows import WindowSampler
from ami.device import autocast, resolve_device
from ami.envs import WORLDS
from ami.errors import AmiError
from ami.io import save_model, write_json
from ami.world_model.model import WorldModel
from ami.world_model.sigreg import sigreg


def jepa_loss(model: WorldModel, frames: torch.Tensor, actions: torch.Tensor, cfg: TrainConfig,
              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Loss terms of one batch of windows: frames (B, n, H, W, C) uint8, actions (B, n-1, fs·A)."""
    h = model.cfg.history
    z = model.encode(frames)                                   # (B, n, D)
    b, n, d = z.shape
    # teacher-forced one-step predictions for every frame after the first h
    z_hist = z.unfold(1, h, 1)[:, : n - h].permute(0, 1, 3, 2)  # (B, n-h, h, D)
    a = actions[:, h - 1 : n - 1]                               # (B, n-h, fs·A)
    z_pred = model.predict(z_hist.reshape(-1, h, d), a.reshape(b * (n - h), -1))
    pred = F.mse_loss(z_pred.reshape(b, n - h, d), z[:, h:])
    reg = sigreg(z.reshape(b * n, d), cfg.sigreg_projections, generator)
    terms = {"pred": pred, "sigreg": reg}
    loss = pred + cfg.sigreg_weight * reg
    if cfg.smooth_weight > 0:
        terms["smooth"] = F.mse_loss(z[:, 1:], z[:, :-1])
        loss = loss + cfg.smooth_weight * terms["smooth"]
    if cfg.rollout_loss and n - h > 1:
        rolled = model.rollout(z[:, :h], actions[:, h - 1 :])   # (B, n-h, D)
        terms["rollout"] = F.mse_loss(rolled, z[:, h:])
        loss = loss + terms["rollout"]
    terms["loss"] = loss
    return terms


def effective_rank(z: torch.Tensor) -> float:
    """exp(entropy) of the normalised singular values of centred embeddings (Roy & Vetterli)."""
    s = torch.linalg.svdvals((z - z.mean(0)).float())
    p = s / s.sum().clamp_min(1e-12)
    return float(torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum()))


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def default_run_dir(world: str) -> Path:
    return Path("runs") / f"{world}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(cfg: TrainConfig) -> Path:
    """Train a world model on `cfg.data`; returns the run directory."""
    if cfg.steps < 1 or cfg.batch_size < 2:
        raise AmiError(f"steps must be >= 1 and batch_size >= 2, got {cfg.steps}, {cfg.batch_size}")
    data = EpisodeDataset.load(cfg.data)
    h, w, c = data.image_shape
    if h != w:
        raise AmiError(f"{cfg.data}: images are {h}x{w}; the encoder needs square images")
    world = WORLDS.get(data.world)
    scale = world.max_action_norm if world is not None else cfg.model.action_scale
    mcfg = replace(cfg.model, image_size=h, channels=c, action_dim=data.action_dim,
                   action_scale=float(scale))
    cfg = replace(cfg, model=mcfg)
    run = Path(cfg.run) if cfg.run is not None else default_run_dir(data.world)
    run.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = resolve_device(cfg.device)
    model = WorldModel(mcfg).to(device)
    sampler = WindowSampler(data, mcfg.history, cfg.future, mcfg.frameskip)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)

    write_json(run / "config.json", {"train": to_dict(cfg), "world": data.world,
                                     "data": {"path": str(cfg.data), "episodes": data.num_episodes,
                                              "frames": len(data.frames)},
                                     "parameters": model.num_parameters()})
    metrics_path = run / "metrics.jsonl"
    metrics_path.unlink(missing_ok=True)
    t_start = time.perf_counter()
    bar = tqdm(range(cfg.steps), desc="train", unit="step", disable=not cfg.progress)
    warned = False
    with open(metrics_path, "a") as log:
        for step in bar:
            frames, actions = sampler.sample(cfg.batch_size, rng)
            frames = torch.from_numpy(frames).to(device, non_blocking=True)
            actions = torch.from_numpy(actions).to(device, non_blocking=True)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            model.train()
            with autocast(device, cfg.bf16):
                terms = jepa_loss(model, frames, actions, cfg, gen)
            loss = terms["loss"]
            if not torch.isfinite(loss):
                raise AmiError(f"training diverged: loss is {loss.item()} at step {step}; "
                               f"the last saved model in {run} is from before it")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if step % cfg.log_every == 0 or step == cfg.steps - 1:
                record = _log_record(model, frames, terms, step, opt, t_start)
                log.write(json.dumps(record) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{record['train/loss']:.4f}",
                                pred=f"{record['train/pred']:.4f}",
                                rank=f"{record['train/effective_rank']:.1f}")
                if record["train/effective_rank"] < 0.1 * mcfg.embed_dim and step > cfg.warmup \
                        and not warned:
                    warned = True
                    warnings.warn(f"embeddings may be collapsing: effective rank "
                                  f"{record['train/effective_rank']:.2f} of {mcfg.embed_dim} at "
                                  f"step {step} (raise sigreg_weight?)", stacklevel=1)
    save_model(model.cpu(), run)
    summary = {"train_seconds": time.perf_counter() - t_start, "steps": cfg.steps,
               "parameters": model.num_parameters(), "final": record}
    write_json(run / "train_summary.json", summary)
    return run


@torch.no_grad()
def _log_record(model, frames, terms, step, opt, t_start) -> dict:
    model.eval()
    z = model.encode(frames[:, 0])
    return {
        "step": step,
        "time": round(time.perf_counter() - t_start, 3),
        "train/lr": opt.param_groups[0]["lr"],
        **{f"train/{k}": float(v) for k, v in terms.items()},
        "train/effective_rank": effective_rank(z),
        "train/z_std": float(z.std(0).mean()),
    }
