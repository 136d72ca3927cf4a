"""`ami train-policy`: the Mode-1 policy of a run, trained on the run's frozen encoder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ami.actor.policy import GoalConditionedPolicy, train_policy
from ami.config import PolicyConfig, to_dict
from ami.data.dataset import EpisodeDataset
from ami.errors import AmiError
from ami.io import atomic_write, check_state_dict, load_model, read_safetensors, write_json

POLICY_FILE = "policy.safetensors"


@torch.no_grad()
def encode_all(model, frames: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Embeddings (N, D) of frames (N, H, W, C), in batches."""
    model.eval()
    return torch.cat([model.encode(frames[i:i + batch]) for i in range(0, len(frames), batch)]
                     ).numpy()


def train_policy_run(cfg: PolicyConfig) -> Path:
    """Train and save the Mode-1 policy of `cfg.run`; returns the policy file's path."""
    run = Path(cfg.run)
    model = load_model(run)
    data_path = cfg.data
    if data_path is None:
        try:
            data_path = Path(json.loads((run / "config.json").read_text())["train"]["data"])
        except (OSError, KeyError, json.JSONDecodeError) as e:
            raise AmiError(f"{run}: cannot tell which data it was trained on ({e}); "
                           f"pass --data") from None
    data = EpisodeDataset.load(data_path)
    if data.image_shape != (model.cfg.image_size, model.cfg.image_size, model.cfg.channels):
        raise AmiError(f"{data_path}: images {data.image_shape} do not fit the model of {run}")
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    z = encode_all(model, data.frames)
    policy = GoalConditionedPolicy(model.cfg.embed_dim, model.block_dim, cfg.width)
    bar = tqdm(total=cfg.steps, desc="train-policy", unit="step", disable=not cfg.progress)
    losses = train_policy(policy, z, data.actions, data.starts, data.lengths,
                          model.cfg.frameskip, model.cfg.action_scale, cfg.steps,
                          cfg.batch_size, cfg.max_blocks, cfg.lr, cfg.seed,
                          progress=lambda loss: (bar.update(), bar.set_postfix(loss=f"{loss:.4f}")))
    bar.close()
    path = save_policy(policy, cfg, run)
    write_json(run / "policy_summary.json", {
        "seconds": time.perf_counter() - t0, "loss_first": losses[0],
        "loss_last_100": float(np.mean(losses[-100:])), "config": to_dict(cfg),
    })
    return path


def save_policy(policy: GoalConditionedPolicy, cfg: PolicyConfig, run: Path) -> Path:
    tensors = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    meta = {"ami_policy_config": json.dumps(to_dict(cfg))}
    return atomic_write(Path(run) / POLICY_FILE, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_policy(run: Path, embed_dim: int, block_dim: int) -> GoalConditionedPolicy:
    """The run's Mode-1 policy, loaded strictly."""
    path = Path(run) / POLICY_FILE
    if not path.exists():
        raise AmiError(f"no Mode-1 policy at {path}; train one with `ami train-policy --run {run}`")
    meta, tensors = read_safetensors(path)
    if "ami_policy_config" not in meta:
        raise AmiError(f"{path}: safetensors file without ami_policy_config metadata")
    width = json.loads(meta["ami_policy_config"])["width"]
    policy = GoalConditionedPolicy(embed_dim, block_dim, width)
    check_state_dict(policy, tensors, path)
    policy.load_state_dict(tensors, strict=True)
    return policy.eval()
