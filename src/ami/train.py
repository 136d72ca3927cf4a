"""`ami train`: one loop for the JEPA world model, MSE(ẑ, z) + λ·SIGReg, end to end from pixels.

The loop is resumable bit for bit: every `checkpoint_every` steps it writes the model, the
optimiser, and the state of every random stream it draws from (numpy for batches, a torch
Generator for SIGReg's directions, torch's and python's global RNGs), and `--resume RUN` puts all
of them back (`ami.resume`, which `ami pretrain` shares). The LR schedule is a pure function of
the step, so the step is its whole state.

Under torchrun the same loop runs on every rank (see `ami.distributed`): each rank draws the same
global batch and computes its equal share, SIGReg and BatchNorm see the global batch, DDP averages
the gradients, and rank 0 alone logs and writes. Every rank seeds and advances the same RNGs, so
SIGReg's directions are the same on every rank, and a checkpoint resumes on any number of ranks.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ami.config import ModelConfig, TrainConfig, to_dict
from ami.data.batches import WindowBatches
from ami.data.dataset import EpisodeDataset
from ami.data.stream import EpisodeStream, frame_bytes
from ami.data.windows import WindowSampler
from ami.device import autocast, use_bf16
from ami.distributed import (
    Ranks,
    gather_batch,
    join,
    leave,
    mean_over_ranks,
    on_main,
    wrap_for_ranks,
)
from ami.energy import Accounting, FlopTally
from ami.envs import WORLDS
from ami.errors import AmiError, check_rules
from ami.io import (
    CHECKPOINT_FILE,
    MODEL_FILE,
    Checkpoint,
    check_model_fits,
    read_checkpoint,
    save_checkpoint,
    save_model,
    write_json,
)
from ami.perception.pretrain import load_pretrained_backbone, with_pretrained_encoder
from ami.resume import keep_metrics_before, restore_run, resumed_config, rng_state, rng_tensors
from ami.world_model.model import WorldModel, build_world_model
from ami.world_model.sigreg import sigreg

METRICS_FILE = "metrics.jsonl"
ACCOUNTING_FILE = "accounting.json"
# options that change how a run is watched or stored, not what it computes: --resume takes them
# from the command line; every other option comes from the run itself
_RESUME_OVERRIDES = ("data", "device", "progress", "log_every", "checkpoint_every", "stream",
                     "workers", "compile")
# set from the data, not by the user
_MODEL_FROM_DATA = ("image_size", "channels", "action_dim", "action_scale")


def jepa_loss(model: WorldModel, frames: torch.Tensor, actions: torch.Tensor, cfg: TrainConfig,
              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Loss terms of one batch of windows: frames (B, n, H, W, C) uint8, actions (B, n-1, fs·A)."""
    h = model.cfg.history
    z = model.encode(frames)                                   # (B, n, D)
    b, n, d = z.shape
    pred = F.mse_loss(model.teacher_forced(z, actions), z[:, h:])
    # SIGReg tests the distribution of the global batch: every rank's embeddings, gathered
    reg = sigreg(gather_batch(z.reshape(b * n, d).float()), cfg.sigreg_projections, generator)
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


class JEPAObjective(nn.Module):
    """`jepa_loss` as a module: DDP synchronises the gradients of what runs in a forward call."""

    def __init__(self, model: WorldModel, cfg: TrainConfig):
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(self, frames: torch.Tensor, actions: torch.Tensor,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return jepa_loss(self.model, frames, actions, self.cfg, generator)


def objective_for(model: WorldModel, cfg: TrainConfig) -> nn.Module:
    """The training objective of the model's kind: JEPA's, or the generative baseline's."""
    if model.cfg.kind == "generative":
        from ami.baselines.generative import GenerativeObjective
        return GenerativeObjective(model)
    return JEPAObjective(model, cfg)


def effective_rank(z: torch.Tensor) -> float:
    """exp(entropy) of the normalised singular values of centred embeddings (Roy & Vetterli)."""
    if not torch.isfinite(z).all():  # diverged weights: the loss check names the step
        return float("nan")
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


def check_train_config(cfg: TrainConfig) -> None:
    """Every option in range, or an AmiError naming the first one that is not."""
    m = cfg.model
    rules = [
        ("steps", cfg.steps >= 1, ">= 1"), ("batch_size", cfg.batch_size >= 2, ">= 2"),
        ("future", cfg.future >= 1, ">= 1"),
        ("lr", math.isfinite(cfg.lr) and cfg.lr > 0, "a positive number"),
        ("weight_decay", cfg.weight_decay >= 0, ">= 0"), ("warmup", cfg.warmup >= 0, ">= 0"),
        ("smooth_weight", cfg.smooth_weight >= 0, ">= 0"),
        ("sigreg_weight", cfg.sigreg_weight >= 0, ">= 0"),
        ("sigreg_projections", cfg.sigreg_projections >= 1, ">= 1"),
        ("grad_clip", cfg.grad_clip >= 0, ">= 0 (0: off)"), ("seed", cfg.seed >= 0, ">= 0"),
        ("log_every", cfg.log_every >= 1, ">= 1"), ("workers", cfg.workers >= 0, ">= 0"),
        ("checkpoint_every", cfg.checkpoint_every >= 1, ">= 1"),
        ("model.embed_dim", m.embed_dim >= 1, ">= 1"),
        ("model.encoder_width", m.encoder_width >= 1, ">= 1"),
        ("model.predictor_width", m.predictor_width >= 1, ">= 1"),
        ("model.predictor_depth", m.predictor_depth >= 2, ">= 2"),
        ("model.history", m.history >= 1, ">= 1"), ("model.frameskip", m.frameskip >= 1, ">= 1"),
    ]
    check_rules(cfg, rules)


def train(cfg: TrainConfig) -> Path:
    """Train a world model on `cfg.data`, or continue `cfg.resume`; returns the run directory.

    Under torchrun (or in a process group the caller initialised) every rank calls this; the
    global batch stays `batch_size`, split equally over the ranks."""
    check_train_config(cfg)
    ckpt = None
    if cfg.resume is not None:
        ckpt = read_checkpoint(Path(cfg.resume) / CHECKPOINT_FILE)
        cfg = _resumed_config(cfg, ckpt)
    ranks, device = join(cfg.device)
    try:
        run = _train(cfg, ckpt, ranks, device)
    except BaseException:
        leave(ranks, wait=False)  # a peer that is still running cannot meet this rank again
        raise
    leave(ranks)
    return run


def _train(cfg: TrainConfig, ckpt: Checkpoint | None, ranks: Ranks,
           device: torch.device) -> Path:
    if cfg.batch_size % ranks.world:
        raise AmiError(f"--batch-size {cfg.batch_size} must be a multiple of the {ranks.world} "
                       f"processes: each computes an equal share of the batch")
    stream = on_main(ranks, lambda: _should_stream(cfg, ranks))
    data = EpisodeStream.open(cfg.data) if stream else EpisodeDataset.load(cfg.data)
    if ckpt is None:  # the data as an absolute path: the run resumes and probes from anywhere
        cfg = replace(cfg, model=_model_config_for(data, cfg), data=Path(cfg.data).resolve())

        def new_run_dir() -> Path:
            run = Path(cfg.run) if cfg.run is not None else default_run_dir(data.world)
            _refuse_to_overwrite(run)
            return run
        run = on_main(ranks, new_run_dir)  # one name, even when it comes from the clock
        cfg = replace(cfg, run=run)
    else:
        run = Path(cfg.resume)
        check_model_fits(cfg.model, data.image_shape, data.action_dim, f"data {cfg.data}",
                         f"run {run}")
        if ckpt.step >= cfg.steps and (run / MODEL_FILE).exists():
            return run  # finished before: nothing left to do
    mcfg = cfg.model
    sampler = WindowSampler(data, mcfg.history, cfg.future, mcfg.frameskip)
    if ranks.main:
        run.mkdir(parents=True, exist_ok=True)  # only once every input has been checked

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_world_model(mcfg).to(device)
    # a meter sees one process; with several ranks the energy is estimated from the CPU
    # seconds of all of them (summed below), so that kWh and CPU seconds describe one run.
    # A resumed run carries its earlier sessions (up to their last checkpoint) and reports all
    earlier = ckpt.state.get("accounting", []) if ckpt is not None else []
    acct = Accounting("train", model.num_parameters(), device,
                      meter="auto" if ranks.world == 1 else "estimate", earlier=earlier)
    with acct:  # the meters stop even if the run fails
        flops = FlopTally()  # one real step's forward and backward, counted on this rank
        # counted on a run's first step only, and kept in its checkpoints: counting dispatches
        # through another path, and a resumed run must compute what an uninterrupted one computed
        saved_flops = int(ckpt.state.get("flops_per_step", 0)) if ckpt is not None else 0
        if ckpt is None and cfg.encoder_from is not None:
            load_pretrained_backbone(model, cfg.encoder_from)
        if cfg.freeze_encoder:  # two-stage: perception fixed, the rest learns on its features
            model.encoder.backbone.requires_grad_(False)
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
        # SIGReg's directions come from the CPU whatever the device: the same on every rank and
        # device type, and a checkpoint's generator state fits wherever the run resumes
        gen = torch.Generator()
        gen.manual_seed(cfg.seed)
        data_info = {"path": str(cfg.data), "episodes": data.num_episodes,
                     "frames": data.num_frames}

        if ckpt is None:
            start, elapsed, resumed_at = 0, 0.0, []
            if ranks.main:
                write_json(run / "config.json", {"train": to_dict(cfg), "world": data.world,
                                                 "data": data_info,
                                                 "parameters": model.num_parameters()})
                (run / METRICS_FILE).unlink(missing_ok=True)
        else:
            start, elapsed, resumed_at = restore_run(ckpt, model, opt, rng, gen, device)
            if ranks.main:
                if ckpt.state.get("data", {}).get("frames") != data_info["frames"]:
                    warnings.warn(f"{cfg.data} now holds {data.num_episodes} episodes, not the "
                                  f"{ckpt.state.get('data', {}).get('episodes')} the run began "
                                  f"with; the resumed run will not match an uninterrupted one",
                                  stacklevel=1)
                keep_metrics_before(run / METRICS_FILE, start)
        objective = wrap_for_ranks(objective_for(model, cfg), ranks, device)
        if cfg.compile:  # in place: the state dict keeps its keys, checkpoints stay the same
            model.encoder.compile()
            model.predictor.compile()

        t_start = time.perf_counter() - elapsed

        def checkpoint(done: int) -> tuple[int, Path]:
            if not all(torch.isfinite(p).all() for p in model.parameters()):
                raise AmiError(f"training diverged: non-finite weights after step {done - 1}; "
                               f"{_last_good(last_good, run)}")
            session = {**acct.so_far(), "steps": [start, done]}
            session["cpu_seconds"] = _sum_over_ranks(session["cpu_seconds"], ranks, device)
            if not ranks.main:  # the weights are the same on every rank; rank 0 writes them
                return done, run / CHECKPOINT_FILE
            state = {"config": to_dict(cfg), "data": data_info, "resumed_at": resumed_at,
                     "elapsed": time.perf_counter() - t_start, **rng_state(rng),
                     "flops_per_step": saved_flops or flops.total * ranks.world,
                     "accounting": [*acct.earlier, session]}
            path = save_checkpoint(run / CHECKPOINT_FILE, model, opt, done, state,
                                   rng_tensors(gen, device))
            return done, path

        last_good = None
        last_good = checkpoint(0) if ckpt is None else (ckpt.step, ckpt.path)
        batches = WindowBatches(sampler, cfg.batch_size, rng, ranks, device, cfg.workers, stream)
        bar = tqdm(range(start, cfg.steps), desc="train", unit="step",
                   disable=not (cfg.progress and ranks.main), initial=start, total=cfg.steps)
        warned, record = False, None
        log_file = open(run / METRICS_FILE, "a") if ranks.main else contextlib.nullcontext()
        with log_file as log, contextlib.closing(batches):
            for step in bar:
                frames, actions = next(batches)
                for g in opt.param_groups:
                    g["lr"] = lr_at(step, cfg)
                model.train()
                with autocast(device, cfg.bf16), flops.count(step == start and not saved_flops):
                    terms = objective(frames, actions, gen)
                loss = terms["loss"]
                # what one process would see: the terms averaged over ranks (all ranks agree on it)
                shown = _mean_over_ranks(terms) if ranks.world > 1 else terms
                if not torch.isfinite(shown["loss"]):
                    raise AmiError(f"training diverged: loss is {shown['loss'].item()} at step "
                                   f"{step}; {_last_good(last_good, run)}")
                opt.zero_grad(set_to_none=True)
                with flops.count(step == start and not saved_flops):
                    loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                if step % cfg.log_every == 0 or step == cfg.steps - 1:
                    record = _log_record(model, frames, shown, step, opt, t_start)
                    if ranks.main:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                        bar.set_postfix(loss=f"{record['train/loss']:.4f}",
                                        pred=f"{record['train/pred']:.4f}",
                                        rank=f"{record['train/effective_rank']:.1f}")
                    if record["train/effective_rank"] < 0.1 * mcfg.embed_dim and step > cfg.warmup \
                            and not warned and ranks.main:
                        warned = True
                        rank = record["train/effective_rank"]
                        warnings.warn(f"embeddings may be collapsing: effective rank {rank:.2f} "
                                      f"of {mcfg.embed_dim} at step {step} (raise "
                                      f"sigreg_weight?)", stacklevel=1)
                if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
                    last_good = checkpoint(step + 1)
        checkpoint(cfg.steps)  # checks the weights are finite before they become the run's model
        acct.stop()
    # every rank computed an equal share of each step: the global step is world × this rank's
    # the whole run's steps: earlier sessions' CPU seconds are in the report too
    acct.set_flops(step=(saved_flops or flops.total * ranks.world, cfg.steps))
    acct.extra_cpu_s = _sum_over_ranks(acct.cpu_s, ranks, device) - acct.cpu_s
    if ranks.main:
        report = acct.report()
        report["sessions"][-1]["steps"] = [start, cfg.steps]
        write_json(run / ACCOUNTING_FILE, {**report, "processes": ranks.world,
                                           "steps_total": cfg.steps, "resumed_at": resumed_at})
        save_model(model.cpu(), run)
        summary = {"train_seconds": time.perf_counter() - t_start, "steps": cfg.steps,
                   "parameters": model.num_parameters(), "resumed_at": resumed_at,
                   "device": str(device), "bf16": use_bf16(device, cfg.bf16),
                   "processes": ranks.world, "stream": stream, "final": record}
        write_json(run / "train_summary.json", summary)
    return run


def _sum_over_ranks(x: float, ranks: Ranks, device: torch.device) -> float:
    """The sum of one number over every rank (CPU seconds: each rank measures its own)."""
    if ranks.world == 1:
        return x
    t = torch.tensor([x], dtype=torch.float64, device=device)
    return float(mean_over_ranks(t)) * ranks.world


def _should_stream(cfg: TrainConfig, ranks: Ranks) -> bool:
    """As asked; by default, when the frames (one copy per process on this machine) would take
    more than half the memory available now (loading holds them once; the rest is left to
    batches, the model and the system)."""
    if cfg.stream is not None:
        return cfg.stream
    copies = int(os.environ.get("LOCAL_WORLD_SIZE", ranks.world))
    return 2 * frame_bytes(cfg.data) * copies > _available_memory()


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no way to tell: assume it fits
        return 1 << 62


def _mean_over_ranks(terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    mean = mean_over_ranks(torch.stack([v.detach().float() for v in terms.values()]))
    return dict(zip(terms, mean, strict=True))


def _model_config_for(data: EpisodeDataset | EpisodeStream, cfg: TrainConfig) -> ModelConfig:
    h, w, c = data.image_shape
    if h != w:
        raise AmiError(f"{cfg.data}: images are {h}x{w}; the encoder needs square images")
    world = WORLDS.get(data.world)
    scale = world.max_action_norm if world is not None else cfg.model.action_scale
    mcfg = replace(cfg.model, image_size=h, channels=c, action_dim=data.action_dim,
                   action_scale=float(scale))
    return with_pretrained_encoder(mcfg, cfg.encoder_from) if cfg.encoder_from else mcfg


def _refuse_to_overwrite(run: Path) -> None:
    for name in (CHECKPOINT_FILE, MODEL_FILE):
        if (run / name).exists():
            raise AmiError(f"run directory {run} already holds {name}; continue it with "
                           f"`ami train --resume {run}`, or choose a new --run")


def _resumed_config(given: TrainConfig, ckpt: Checkpoint) -> TrainConfig:
    """The run's own config, with the options that do not change the computation taken from
    the command line; an option that would change it is an error, not silently ignored."""
    cfg = resumed_config(given, ckpt, "train", _RESUME_OVERRIDES,
                         ignored=tuple(f"model.{name}" for name in _MODEL_FROM_DATA))
    if cfg.model != ckpt.model_config:
        raise AmiError(f"{ckpt.path}: damaged: its model config and training config disagree")
    return cfg


def _last_good(last_good: tuple[int, Path] | None, run: Path) -> str:
    if last_good is None:
        return "the initial weights are not finite; no checkpoint was written"
    step, path = last_good
    return (f"the last good checkpoint is {path} (after step {step}); start a new run with a "
            f"lower --lr (the losses so far are in {run / METRICS_FILE})")


@torch.no_grad()
def _log_record(model, frames, terms, step, opt, t_start) -> dict:
    """Metrics of a step; every rank calls it, since the embeddings are gathered over ranks."""
    model.eval()
    z = gather_batch(model.encode(frames[:, 0]))
    return {
        "step": step,
        "time": round(time.perf_counter() - t_start, 3),
        "train/lr": opt.param_groups[0]["lr"],
        **{f"train/{k}": float(v) for k, v in terms.items()},
        "train/effective_rank": effective_rank(z),
        "train/z_std": float(z.std(0).mean()),
    }
