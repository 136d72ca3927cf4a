"""Heads on a run's frozen encoder: the Mode-1 policy, the critic and guardrails.

Each is a small network trained on the embeddings of the run's own data and saved beside the
world model as safetensors with its config in the metadata, loaded strictly:

    ami train-policy | train-critic | train-guardrail --run RUN
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

from ami.actor.policy import GoalConditionedPolicy, train_policy
from ami.config import CriticConfig, GuardrailConfig, PolicyConfig, to_dict
from ami.cost.critic import Critic, train_critic
from ami.cost.guardrail import Box, GuardrailClassifier, train_guardrail
from ami.data.dataset import EpisodeDataset
from ami.data.windows import WindowSampler
from ami.errors import AmiError
from ami.evaluate.probes import embed_frames
from ami.io import (
    atomic_write,
    check_model_fits,
    check_state_dict,
    load_model,
    read_safetensors,
    run_data,
    write_json,
)

POLICY_FILE, CRITIC_FILE, GUARDRAIL_FILE = ("policy.safetensors", "critic.safetensors",
                                            "guardrail.safetensors")


def frozen_embeddings(run: Path, data_path: Path | None):
    """The run's model, its data (default: what it was trained on) and every frame's z."""
    run = Path(run)
    model = load_model(run)
    if data_path is None:
        data_path = run_data(run)
    data = EpisodeDataset.load(data_path)
    check_model_fits(model.cfg, data.image_shape, data.action_dim, f"data {data_path}",
                     f"run {run}")
    return model, data, embed_frames(model, data.frames)


def save_head(module: nn.Module, path: Path, cfg) -> Path:
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    meta = {"ami_head_config": json.dumps(to_dict(cfg)), "ami_head": type(module).__name__}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_head(path: Path, build) -> tuple[nn.Module, dict]:
    """Rebuild a head with `build(config_dict)` and load its weights strictly."""
    path = Path(path)
    if not path.exists():
        command = {POLICY_FILE: "train-policy", CRITIC_FILE: "train-critic",
                   GUARDRAIL_FILE: "train-guardrail"}.get(path.name, "train-...")
        raise AmiError(f"no {path.name} in {path.parent}; train it with "
                       f"`ami {command} --run {path.parent}`")
    meta, tensors = read_safetensors(path)
    if "ami_head_config" not in meta:
        raise AmiError(f"{path}: safetensors file without ami_head_config metadata")
    cfg = json.loads(meta["ami_head_config"])
    module = build(cfg)
    check_state_dict(module, tensors, path)
    module.load_state_dict(tensors, strict=True)
    return module.eval(), cfg


def _summary(run: Path, name: str, t0: float, losses: list[float], cfg, **extra) -> None:
    write_json(Path(run) / f"{name}_summary.json", {
        "seconds": time.perf_counter() - t0, "loss_first": losses[0],
        "loss_last_100": float(np.mean(losses[-100:])), "config": to_dict(cfg), **extra})


def train_policy_run(cfg: PolicyConfig) -> Path:
    """Train and save the Mode-1 policy of `cfg.run` (hindsight behaviour cloning)."""
    t0 = time.perf_counter()
    model, data, z = frozen_embeddings(cfg.run, cfg.data)
    torch.manual_seed(cfg.seed)
    policy = GoalConditionedPolicy(model.cfg.embed_dim, model.block_dim, cfg.width)
    losses = train_policy(policy, z, data.actions, data.starts, data.lengths,
                          model.cfg.frameskip, model.cfg.action_scale, cfg.steps,
                          cfg.batch_size, cfg.max_blocks, cfg.lr, cfg.seed)
    _summary(cfg.run, "policy", t0, losses, cfg)
    return save_head(policy, Path(cfg.run) / POLICY_FILE, cfg)


def load_policy(run: Path, embed_dim: int, block_dim: int) -> GoalConditionedPolicy:
    return load_head(Path(run) / POLICY_FILE,
                     lambda c: GoalConditionedPolicy(embed_dim, block_dim, c["width"]))[0]


def train_critic_run(cfg: CriticConfig) -> Path:
    """Train and save the critic of `cfg.run` (expectile temporal-distance regression)."""
    t0 = time.perf_counter()
    model, data, z = frozen_embeddings(cfg.run, cfg.data)
    torch.manual_seed(cfg.seed)
    critic = Critic(model.cfg.embed_dim, cfg.width)
    losses = train_critic(critic, z, data.starts, data.lengths, model.cfg.frameskip,
                          cfg.max_blocks, cfg.expectile, cfg.steps, cfg.batch_size, cfg.lr,
                          cfg.seed)
    _summary(cfg.run, "critic", t0, losses, cfg)
    return save_head(critic, Path(cfg.run) / CRITIC_FILE, cfg)


def load_critic(run: Path, embed_dim: int) -> Critic:
    return load_head(Path(run) / CRITIC_FILE, lambda c: Critic(embed_dim, c["width"]))[0]


def train_guardrail_run(cfg: GuardrailConfig) -> Path:
    """Label the run's data with the forbidden box, train and save the classifier."""
    t0 = time.perf_counter()
    model, data, z = frozen_embeddings(cfg.run, cfg.data)
    if data.states is None:
        raise AmiError(f"{cfg.data or 'the run data'}: no recorded states to label the "
                       f"forbidden box with")
    box = Box(*cfg.box).inflated(cfg.margin)
    actions = None
    if cfg.segments:   # one sample per action block: (z where it ends, its actions, any step in?)
        fs = model.cfg.frameskip
        start = WindowSampler(data, 1, 1, fs).starts                         # (N,)
        steps = start[:, None] + np.arange(fs)                               # (N, fs)
        z = z[start + fs]
        actions = data.actions[steps].reshape(len(start), -1).astype(np.float32)
        forbidden = box.contains(data.states[steps + 1, :2]).any(axis=1)
    else:
        forbidden = box.contains(data.states[:, :2])
    torch.manual_seed(cfg.seed)
    classifier = GuardrailClassifier(model.cfg.embed_dim, cfg.width,
                                     model.block_dim if cfg.segments else 0)
    try:
        losses = train_guardrail(classifier, z, forbidden, cfg.steps, cfg.batch_size, cfg.lr,
                                 cfg.seed, actions)
    except ValueError as e:
        raise AmiError(f"box {cfg.box}: {e}") from None
    with torch.no_grad():
        a = None if actions is None else torch.from_numpy(actions)
        predicted = (classifier(torch.from_numpy(z), a) > 0).numpy()
    _summary(cfg.run, "guardrail", t0, losses, cfg,
             train_accuracy=float((predicted == forbidden).mean()),
             missed_forbidden=float((~predicted[forbidden]).mean()),
             forbidden_fraction=float(forbidden.mean()))
    return save_head(classifier, Path(cfg.run) / GUARDRAIL_FILE, cfg)


def load_guardrail(run: Path, embed_dim: int, block_dim: int
                   ) -> tuple[GuardrailClassifier, Box]:
    """The run's guardrail: a segment classifier (z_end, action block), or a state classifier
    as files written before segments were the default are."""
    classifier, cfg = load_head(
        Path(run) / GUARDRAIL_FILE,
        lambda c: GuardrailClassifier(embed_dim, c["width"],
                                      block_dim if c.get("segments", False) else 0))
    return classifier, Box(*cfg["box"])
