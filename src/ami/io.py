"""Run directories and checkpoints: safetensors weights + JSON, never pickles.

A checkpoint describes itself: its safetensors metadata holds the model config, so it can be
rebuilt without the code that trained it guessing. Loading is strict: every key and shape must
match, and a mismatch is an error that names them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ami.config import ModelConfig, from_dict, to_dict
from ami.errors import AmiError
from ami.world_model.model import WorldModel

MODEL_FILE = "model.safetensors"


def write_json(path: Path, obj) -> None:
    """Write JSON atomically: a temporary file, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump(obj, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(f.name, path)


def save_model(model: WorldModel, run: Path) -> Path:
    """Write model.safetensors atomically, with the model config in its metadata."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    path = run / MODEL_FILE
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, tmp, metadata={"ami_model_config": json.dumps(to_dict(model.cfg))})
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_model(run: Path, device: str | torch.device = "cpu") -> WorldModel:
    """Rebuild the world model of a run directory (or a .safetensors file), strictly."""
    run = Path(run)
    path = run if run.suffix == ".safetensors" else run / MODEL_FILE
    if not path.exists():
        where = "run directory" if run.is_dir() else "path"
        raise AmiError(f"no model at {path} ({where} {run} has no {MODEL_FILE}; train one with "
                       f"`ami train`)")
    try:
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as e:
        raise AmiError(f"{path}: not a readable safetensors checkpoint ({e})") from None
    if "ami_model_config" not in meta:
        raise AmiError(f"{path}: safetensors file without ami_model_config metadata; "
                       f"not an ami checkpoint")
    cfg = from_dict(ModelConfig, json.loads(meta["ami_model_config"]))
    model = WorldModel(cfg)
    check_state_dict(model, tensors, path)
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval()


def check_state_dict(model: torch.nn.Module, tensors: dict, path: Path) -> None:
    """Raise an AmiError naming every missing, unexpected or mis-shaped key."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = [f"{k}: {tuple(tensors[k].shape)} != {tuple(v.shape)}"
              for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"missing {missing}")
    if unexpected:
        problems.append(f"unexpected {unexpected}")
    if shapes:
        problems.append(f"shape mismatch {shapes}")
    if problems:
        raise AmiError(f"{path}: checkpoint does not match its model: {'; '.join(problems)}")
