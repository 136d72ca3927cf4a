"""`ami pretrain`: train a ViT by masked latent prediction on images, videos or episodes.

I-JEPA (`--method ijepa`) draws single frames and multi-block masks; V-JEPA (`--method vjepa`)
draws clips of `--frames` frames and masks tubes through them, twice per clip (several small
blocks, a few large ones), averaging the two losses. The run directory gets encoder.safetensors
(the EMA target encoder, as I-JEPA evaluates, or the one encoder of the SIGReg variant),
config.json, metrics.jsonl and pretrain_summary.json.

Like `ami train`, the loop is resumable bit for bit: every `checkpoint_every` steps it writes
checkpoint.safetensors (context and target encoders, predictor, AdamW, the numpy stream of clips
and masks, SIGReg's torch Generator, torch's and python's RNGs), and `--resume RUN` puts all of
them back through `ami.resume`. The LR and EMA schedules are pure functions of the step.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ami.config import PretrainConfig, ViTConfig, to_dict
from ami.data.media import open_frames, sample_clips
from ami.device import resolve_device
from ami.errors import AmiError, check_rules
from ami.io import (
    CHECKPOINT_FILE,
    ENCODER_FILE,
    check_state_dict,
    load_encoder,
    read_checkpoint,
    save_checkpoint,
    save_encoder,
    write_json,
)
from ami.perception.jepa import JEPA, MaskedPredictor, momentum_at
from ami.perception.masks import batch_indices, multiblock_mask, tube_mask
from ami.perception.vit import ViT
from ami.resume import keep_metrics_before, restore_run, resumed_config, rng_state, rng_tensors

METRICS_FILE = "metrics.jsonl"
# options that change how a run is watched or stored, not what it computes: --resume takes them
# from the command line; every other option comes from the run itself
_RESUME_OVERRIDES = ("data", "device", "progress", "log_every", "checkpoint_every")


def resolved_vit(cfg: PretrainConfig) -> ViTConfig:
    """The ViT config with its tubelet decided: 2 for V-JEPA, 1 for I-JEPA, unless given."""
    return replace(cfg.vit, tubelet=cfg.vit.tubelet or (2 if cfg.method == "vjepa" else 1))


def draw_masks(cfg: PretrainConfig, grid: tuple[int, int, int], batch: int,
               rng: np.random.Generator) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per masking of the batch, context (B, Nc) and target (B, Nt) token indices."""
    t, h, w = grid
    if cfg.method == "ijepa":
        pairs = [multiblock_mask(rng, h, w, cfg.targets, cfg.target_scale, cfg.target_aspect,
                                 cfg.context_scale, cfg.allow_overlap) for _ in range(batch)]
        # the target blocks of one image are predicted together, from one context
        sets = [([c for c, _ in pairs], [np.unique(np.concatenate(b)) for _, b in pairs])]
    else:
        sets = []
        for blocks, scale in (cfg.tubes_small, cfg.tubes_large):
            if int(blocks) > 0:
                pairs = [tube_mask(rng, t, h, w, int(blocks), (scale, scale), cfg.target_aspect)
                         for _ in range(batch)]
                sets.append(([c for c, _ in pairs], [g for _, g in pairs]))
    context = [torch.as_tensor(batch_indices(c, rng)) for c, _ in sets]
    target = [torch.as_tensor(batch_indices(g, rng)) for _, g in sets]
    return context, target


def lr_at(step: int, cfg: PretrainConfig) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def check_pretrain_config(cfg: PretrainConfig, vit: ViTConfig) -> None:
    rules = [
        ("steps", cfg.steps >= 1, ">= 1"), ("batch_size", cfg.batch_size >= 2, ">= 2"),
        ("lr", math.isfinite(cfg.lr) and cfg.lr > 0, "a positive number"),
        ("frames", cfg.frames >= 1, ">= 1"), ("frame_stride", cfg.frame_stride >= 1, ">= 1"),
        ("ema_start", 0 <= cfg.ema_start <= cfg.ema_end <= 1, "in [0, ema_end]"),
        ("ema_end", cfg.ema_end <= 1, "<= 1"),
        ("channels", cfg.channels in (0, 1, 3), "0, 1 or 3"),
        ("targets", cfg.targets >= 1, ">= 1"),
        ("vit.width", vit.width % vit.heads == 0, f"a multiple of --vit.heads {vit.heads}"),
        ("predictor_width", cfg.predictor_width % cfg.predictor_heads == 0,
         f"a multiple of --predictor-heads {cfg.predictor_heads}"),
        ("log_every", cfg.log_every >= 1, ">= 1"),
        ("checkpoint_every", cfg.checkpoint_every >= 1, ">= 1"),
    ]
    if cfg.method == "vjepa":
        rules.append(("frames", cfg.frames % vit.tubelet == 0,
                      f"a multiple of the tubelet ({vit.tubelet})"))
    check_rules(cfg, rules)
    for name in ("target_scale", "context_scale"):
        lo, hi = getattr(cfg, name)
        if not 0 < lo <= hi <= 1:
            raise AmiError(f"--{name.replace('_', '-')} must be 0 < low <= high <= 1, got "
                           f"{lo} {hi}")


def pretrain(cfg: PretrainConfig) -> Path:
    """Pretrain a ViT on `cfg.data`, or continue `cfg.resume` from its last checkpoint; returns
    the run directory (holding encoder.safetensors)."""
    ckpt = None
    if cfg.resume is not None:
        ckpt = read_checkpoint(Path(cfg.resume) / CHECKPOINT_FILE)
        cfg = resumed_config(cfg, ckpt, "pretrain", _RESUME_OVERRIDES)
    vcfg = resolved_vit(cfg)
    check_pretrain_config(cfg, vcfg)
    source = open_frames(cfg.data, cfg.image_size, cfg.channels)
    if source.image_size % vcfg.patch:
        raise AmiError(f"image size {source.image_size} is not a multiple of --vit.patch "
                       f"{vcfg.patch}")
    frames = cfg.frames if cfg.method == "vjepa" else 1
    if ckpt is None:  # the data as an absolute path: the run resumes from anywhere
        cfg = replace(cfg, data=Path(cfg.data).resolve())
        run = Path(cfg.run) if cfg.run is not None else \
            Path("runs") / f"pretrain-{cfg.method}-{time.strftime('%Y%m%d-%H%M%S')}"
        _refuse_to_overwrite(run)
        cfg = replace(cfg, run=run)
    else:
        run = Path(cfg.resume)
        if ckpt.step >= cfg.steps and (run / ENCODER_FILE).exists():
            return run  # finished before: nothing left to do
    run.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator()
    gen.manual_seed(cfg.seed)
    encoder = ViT(source.channels, source.image_size, vcfg.patch, vcfg.width, vcfg.depth,
                  vcfg.heads, vcfg.tubelet)
    predictor = MaskedPredictor(vcfg.width, cfg.predictor_width, cfg.predictor_depth,
                                cfg.predictor_heads)
    jepa = JEPA(encoder, predictor, cfg.collapse, cfg.loss, cfg.sigreg_weight,
                cfg.sigreg_projections).to(device)
    params = [p for p in jepa.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    grid = encoder.grid(frames + (-frames % vcfg.tubelet))
    info = {"vit": to_dict(vcfg), "image_size": source.image_size, "channels": source.channels,
            "method": cfg.method, "collapse": cfg.collapse, "frames": frames,
            "frame_stride": cfg.frame_stride, "data": str(cfg.data), "source": source.kind,
            "items": len(source)}
    if ckpt is None:
        start, elapsed, resumed_at = 0, 0.0, []
        write_json(run / "config.json", {"pretrain": to_dict(cfg), "encoder": info,
                                         "parameters": {"encoder": _count(encoder),
                                                        "predictor": _count(predictor)}})
        (run / METRICS_FILE).unlink(missing_ok=True)
    else:
        start, elapsed, resumed_at = restore_run(ckpt, jepa, opt, rng, gen, device)
        if ckpt.state.get("items") != len(source):
            warnings.warn(f"{cfg.data} now holds {len(source)} items, not the "
                          f"{ckpt.state.get('items')} the run began with; the resumed run will "
                          f"not match an uninterrupted one", stacklevel=1)
        keep_metrics_before(run / METRICS_FILE, start)

    t0 = time.perf_counter() - elapsed

    def checkpoint(done: int) -> None:
        state = {"config": to_dict(cfg), "items": len(source), "resumed_at": resumed_at,
                 "elapsed": time.perf_counter() - t0, **rng_state(rng)}
        save_checkpoint(run / CHECKPOINT_FILE, jepa, opt, done, state, rng_tensors(gen, device),
                        command="pretrain")

    if ckpt is None:
        checkpoint(0)
    record = None
    bar = tqdm(range(start, cfg.steps), desc=f"pretrain {cfg.method}", unit="step",
               disable=not cfg.progress, initial=start, total=cfg.steps)
    with open(run / METRICS_FILE, "a") as log:
        for step in bar:
            clips = sample_clips(source, rng, cfg.batch_size, frames, cfg.frame_stride)
            x = torch.as_tensor(clips, device=device).permute(0, 4, 1, 2, 3).float().div_(255)
            context, target = draw_masks(cfg, grid, cfg.batch_size, rng)
            context = [c.to(device) for c in context]
            target = [t.to(device) for t in target]
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            terms = jepa(x, context, target, gen)
            if not torch.isfinite(terms["loss"]):
                raise AmiError(f"pretraining diverged: loss is {terms['loss'].item()} at step "
                               f"{step}; try a lower --lr")
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            momentum = momentum_at(step, cfg.steps, cfg.ema_start, cfg.ema_end)
            jepa.update_target(momentum)
            if step % cfg.log_every == 0 or step == cfg.steps - 1:
                record = {"step": step, "time": round(time.perf_counter() - t0, 3),
                          "pretrain/lr": opt.param_groups[0]["lr"],
                          **({"pretrain/momentum": momentum} if cfg.collapse == "ema" else {}),
                          **{f"pretrain/{k}": float(v.detach()) for k, v in terms.items()},
                          "pretrain/token_std": _token_std(jepa, x)}
                log.write(json.dumps(record) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{record['pretrain/loss']:.4f}",
                                std=f"{record['pretrain/token_std']:.3f}")
            if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
                checkpoint(step + 1)
    if start < cfg.steps:  # the final state, kept like `ami train`'s
        checkpoint(cfg.steps)
    seconds = time.perf_counter() - t0
    save_encoder(jepa.feature_encoder, run, {**info, "steps": cfg.steps})
    write_json(run / "pretrain_summary.json", {"seconds": seconds, "steps": cfg.steps,
                                               "resumed_at": resumed_at,
                                               "device": str(device), "final": record})
    return run


def _refuse_to_overwrite(run: Path) -> None:
    for name in (CHECKPOINT_FILE, ENCODER_FILE):
        if (run / name).exists():
            raise AmiError(f"run directory {run} already holds {name}; continue it with "
                           f"`ami pretrain --resume {run}`, or choose a new --run")


@torch.no_grad()
def _token_std(jepa: JEPA, x: torch.Tensor) -> float:
    """Std over the batch of the mean token of the kept encoder: near 0 means collapse."""
    return float(jepa.feature_encoder(x).mean(1).std(0).mean())


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------- the two-stage world model (V-JEPA 2-AC)

def with_pretrained_encoder(mcfg, encoder_run: Path):
    """The world model's config with a pretrained ViT as its encoder: `encoder` vit and the
    ViT's shape taken from the pretraining run; its image size and channels must be the data's."""
    _, info = load_encoder(encoder_run)
    if (info["image_size"], info["channels"]) != (mcfg.image_size, mcfg.channels):
        raise AmiError(f"the encoder of {encoder_run} takes {info['image_size']}x"
                       f"{info['image_size']} images with {info['channels']} channels; the data "
                       f"has {mcfg.image_size}x{mcfg.image_size} with {mcfg.channels}")
    return replace(mcfg, encoder="vit", vit=info["vit"])


def load_pretrained_backbone(model, encoder_run: Path) -> None:
    """Put a pretrained ViT's weights into the world model's encoder backbone, strictly."""
    vit, _ = load_encoder(encoder_run)
    tensors = vit.state_dict()
    check_state_dict(model.encoder.backbone, tensors, Path(encoder_run) / ENCODER_FILE)
    model.encoder.backbone.load_state_dict(tensors, strict=True)
