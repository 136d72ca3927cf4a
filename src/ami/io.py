"""Run directories and checkpoints: safetensors weights + JSON, never pickles.

A checkpoint describes itself: its safetensors metadata holds the model config, so it can be
rebuilt without the code that trained it guessing. Loading is strict: every key and shape must
match, and a mismatch is an error that names them. Nothing here calls torch.load or pickle, so
loading a file cannot run code; every write goes to a temporary file that is fsynced and then
renamed, so a crash leaves the old file or the new one, never half of one.

A training checkpoint (`checkpoint.safetensors`) adds what `ami train --resume` (or `ami pretrain
--resume`) needs to continue bit for bit: the optimiser's state tensors, the trainer's RNG states
and JSON state (step, config, numpy/python RNG states), and the command that wrote it, in one file
so that one rename replaces all of it at once; `ami.resume` puts the trainer's part back.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ami.config import ModelConfig, from_dict, to_dict
from ami.envs import WORLDS
from ami.errors import AmiError
from ami.world_model.model import WorldModel, build_world_model

MODEL_FILE = "model.safetensors"
RUN_CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "ami-checkpoint"
CHECKPOINT_VERSION = 1
# safetensors itself refuses headers above 100 MB; a larger length field means "not safetensors"
_MAX_HEADER = 100_000_000


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a temporary file next to `path`, fsync it, rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # created like any other file (mode 0666 less the umask), unlike mkstemp's 0600
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)  # the rename itself must reach the disk, not only the bytes
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path: Path, obj) -> None:
    """Write JSON atomically: a temporary file, fsync, then rename."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2)))


def save_model(model: WorldModel, run: Path) -> Path:
    """Write model.safetensors atomically, with the model config in its metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"ami_model_config": json.dumps(to_dict(model.cfg))}
    return atomic_write(Path(run) / MODEL_FILE, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_model(run: Path, device: str | torch.device = "cpu") -> WorldModel:
    """Rebuild the world model of a run directory (or a .safetensors file), strictly.

    When the run's config.json names a built-in world, the model must take that world's images
    and actions: a model swapped in from another run fails here, not deep inside a convolution.
    """
    run = Path(run)
    path = run if run.suffix == ".safetensors" else run / MODEL_FILE
    if not path.exists():
        where = "run directory" if run.is_dir() else "path"
        raise AmiError(f"no model at {path} ({where} {run} has no {MODEL_FILE}; train one with "
                       f"`ami train`)")
    meta, tensors = read_safetensors(path)
    if "ami_model_config" not in meta:
        raise AmiError(f"{path}: safetensors file without ami_model_config metadata; "
                       f"not an ami checkpoint")
    cfg = _model_config(meta["ami_model_config"], path)
    model = build_world_model(cfg)  # the class the checkpoint's own config names
    check_state_dict(model, tensors, path)
    model.load_state_dict(tensors, strict=True)
    if path.parent / MODEL_FILE == path:
        _check_model_fits_its_world(cfg, path.parent)
    return model.to(device).eval()


def read_safetensors(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Metadata and tensors of a safetensors file; a pickle, truncated or foreign file is an
    AmiError that says which. The header is checked before any tensor is read."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(9)
            if head[8:9] != b"{":  # a safetensors header is JSON, right after its length
                # torch.save writes a zip (PK..), a pickle starts with the PROTO opcode 0x80
                if head[:2] == b"PK" or head[:1] == b"\x80":
                    raise AmiError(f"{path}: a pickle (torch.save) file, not safetensors; "
                                   f"refused unread, because loading a pickle can run code")
                if len(head) < 9:
                    raise AmiError(f"{path}: truncated: {size} bytes, too short for a "
                                   f"safetensors header")
                raise AmiError(f"{path}: not a safetensors file")
            n = int.from_bytes(head[:8], "little")
            f.seek(8)
            if n > _MAX_HEADER:
                raise AmiError(f"{path}: not a safetensors file (header length field is {n})")
            if 8 + n > size:
                raise AmiError(f"{path}: truncated: {size} bytes, but its header alone needs "
                               f"{8 + n}")
            header = json.loads(f.read(n))
    except OSError as e:
        raise AmiError(f"{path}: cannot read ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AmiError(f"{path}: not a safetensors file (its header is not JSON)") from None
    try:
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"),
                  default=0)
    except (TypeError, KeyError, IndexError, AttributeError):
        raise AmiError(f"{path}: not a safetensors file (malformed header)") from None
    if 8 + n + end > size:
        raise AmiError(f"{path}: truncated: {size} bytes, but its header describes "
                       f"{8 + n + end} (was a copy or a write cut short?)")
    try:
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as e:
        raise AmiError(f"{path}: not a readable safetensors file ({e})") from None
    return meta, tensors


def _model_config(text: str, path: Path) -> ModelConfig:
    try:
        return from_dict(ModelConfig, json.loads(text))
    except (ValueError, TypeError) as e:
        raise AmiError(f"{path}: model config in its metadata does not fit this version of "
                       f"ami ({e})") from None


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


def check_model_fits(cfg: ModelConfig, image_shape: tuple, action_dim: int, source: str,
                     model_source: str) -> None:
    """The model must take `source`'s images (H, W, C) and actions; else an AmiError naming both."""
    want = (cfg.image_size, cfg.image_size, cfg.channels)
    if tuple(image_shape) != want:
        raise AmiError(f"{source} has {_shape(image_shape)} images, but the model of "
                       f"{model_source} takes {_shape(want)} images")
    if action_dim != cfg.action_dim:
        raise AmiError(f"{source} has {action_dim}-d actions, but the model of {model_source} "
                       f"takes {cfg.action_dim}-d actions")


def _shape(s) -> str:
    return "x".join(str(int(v)) for v in s)


# --------------------------------------------------------------------------- a run's own files

def run_config(run: Path) -> dict:
    """The run's config.json (what `ami train` was asked, the world, the data), or a one-line
    error naming the file."""
    path = Path(run) / RUN_CONFIG_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise AmiError(f"{run}: no readable {RUN_CONFIG_FILE} ({e})") from None


def run_world(run: Path) -> str:
    """The name of the world the run's data came from."""
    world = run_config(run).get("world")
    if not isinstance(world, str):
        raise AmiError(f"{Path(run) / RUN_CONFIG_FILE} does not name the run's world")
    return world


def run_data(run: Path) -> Path:
    """The data file the run was trained on. Runs since session 3 record it as an absolute
    path; older ones recorded it as given, relative to where `ami train` ran."""
    data = run_config(run).get("data")
    path = data.get("path") if isinstance(data, dict) else None
    if not isinstance(path, str):
        raise AmiError(f"{Path(run) / RUN_CONFIG_FILE} does not name the run's data; pass --data")
    return Path(path)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (models are small: read at once)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_model_fits_its_world(cfg: ModelConfig, run: Path) -> None:
    try:
        world = run_world(run)
    except AmiError:
        return  # no run config: nothing to check against (a bare model file)
    if world not in WORLDS:
        return
    env = WORLDS[world]()
    check_model_fits(cfg, env.observation_space.shape, env.action_space.shape[0],
                     f"world {world} (from {run / 'config.json'})", str(run / MODEL_FILE))


# --------------------------------------------------------------------------- training checkpoints

@dataclass
class Checkpoint:
    """A training checkpoint read from disk; `restore` puts it into a model and an optimiser."""

    path: Path
    step: int                                   # optimisation steps completed
    command: str                                # the trainer that wrote it: train or pretrain
    model_config: ModelConfig | None            # a world model's (None: pretraining's JEPA)
    state: dict                                 # the trainer's JSON state
    tensors: dict[str, torch.Tensor]            # the trainer's tensors (RNG states)
    model: dict[str, torch.Tensor] = field(repr=False)
    optimizer: dict = field(repr=False)         # torch's optimizer state_dict layout


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    step: int, state: dict, tensors: dict[str, torch.Tensor],
                    command: str = "train") -> Path:
    """Write model, optimiser, `tensors` and JSON `state` to one safetensors file, atomically;
    `command` (train, pretrain) names the trainer that can resume it."""
    out = {f"model/{k}": v for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for index, per_param in opt["state"].items():
        for name, value in per_param.items():
            if not torch.is_tensor(value):
                raise TypeError(f"optimizer state {name} of parameter {index} is not a tensor")
            out[f"optimizer/{index}/{name}"] = value
    out.update({f"extra/{k}": v for k, v in tensors.items()})
    out = {k: v.detach().cpu().contiguous().clone() for k, v in out.items()}
    meta = {
        "ami_checkpoint": json.dumps({
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": step,
            "command": command,
            "optimizer": {"class": type(optimizer).__name__,
                          "param_groups": opt["param_groups"]},
            "state": state,
        }),
    }
    if isinstance(model, WorldModel):  # rebuilds the model without its trainer's help
        meta["ami_model_config"] = json.dumps(to_dict(model.cfg))
    return atomic_write(path, lambda tmp: save_file(out, tmp, metadata=meta))


def read_checkpoint(path: Path) -> Checkpoint:
    """Read a training checkpoint written by `save_checkpoint`, checking its own structure."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.exists():
        raise AmiError(f"no training checkpoint at {path} (only runs of `ami train` or `ami "
                       f"pretrain` by this version of ami can be resumed)")
    meta, tensors = read_safetensors(path)
    if "ami_checkpoint" not in meta:
        raise AmiError(f"{path}: a safetensors file, but not an ami training checkpoint")
    try:
        info = json.loads(meta["ami_checkpoint"])
        fmt, version, step = info["format"], info["version"], int(info["step"])
        opt_info, state = info["optimizer"], info["state"]
        command = str(info.get("command", "train"))  # written by `ami train` alone before
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise AmiError(f"{path}: its ami_checkpoint metadata is damaged") from None
    if fmt != CHECKPOINT_FORMAT or version != CHECKPOINT_VERSION:
        raise AmiError(f"{path}: checkpoint format {fmt} v{version}; this ami reads "
                       f"{CHECKPOINT_FORMAT} v{CHECKPOINT_VERSION}")
    if command == "train" and "ami_model_config" not in meta:  # a world model describes itself
        raise AmiError(f"{path}: a safetensors file, but not an ami training checkpoint")
    parts: dict[str, dict] = {"model": {}, "optimizer": {}, "extra": {}}
    for key, value in tensors.items():
        kind, _, rest = key.partition("/")
        if kind not in parts or not rest:
            raise AmiError(f"{path}: unexpected tensor {key!r} in a training checkpoint")
        parts[kind][rest] = value
    opt_state: dict[int, dict] = {}
    for key, value in parts["optimizer"].items():
        index, _, name = key.partition("/")
        if not index.isdigit() or not name:
            raise AmiError(f"{path}: unexpected optimizer tensor {key!r}")
        opt_state.setdefault(int(index), {})[name] = value
    return Checkpoint(
        path=path, step=step, command=command,
        model_config=_model_config(meta["ami_model_config"], path)
        if "ami_model_config" in meta else None,
        state=state, tensors=parts["extra"], model=parts["model"],
        optimizer={"class": opt_info.get("class"), "state": opt_state,
                   "param_groups": opt_info.get("param_groups")},
    )


def restore(ckpt: Checkpoint, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Load a checkpoint's model and optimiser state, after checking every key and shape."""
    check_state_dict(model, ckpt.model, ckpt.path)
    check_optimizer_state(model, optimizer, ckpt.optimizer, ckpt.path)
    model.load_state_dict(ckpt.model, strict=True)
    current = optimizer.state_dict()["param_groups"]
    groups = []
    for saved, now in zip(ckpt.optimizer["param_groups"], current, strict=True):
        # JSON turned tuples (Adam's betas) into lists: give them back their type
        groups.append({k: tuple(v) if isinstance(now.get(k), tuple) else v
                       for k, v in saved.items()})
    optimizer.load_state_dict({"state": ckpt.optimizer["state"], "param_groups": groups})


def check_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, saved: dict,
                          path: Path) -> None:
    """Raise an AmiError naming every way `saved` does not fit `optimizer` over `model`."""
    if saved["class"] != type(optimizer).__name__:
        raise AmiError(f"{path}: optimiser state is from {saved['class']}, the trainer uses "
                       f"{type(optimizer).__name__}")
    names = {id(p): n for n, p in model.named_parameters()}
    params = [p for g in optimizer.param_groups for p in g["params"]]
    groups = saved["param_groups"]
    sizes_now = [len(g["params"]) for g in optimizer.param_groups]
    sizes_saved = [len(g.get("params", [])) for g in groups] if isinstance(groups, list) else None
    if sizes_saved != sizes_now:
        raise AmiError(f"{path}: optimiser has parameter groups of sizes {sizes_saved}, the "
                       f"model needs {sizes_now}")
    problems = []
    for index, per_param in sorted(saved["state"].items()):
        if index >= len(params):
            problems.append(f"state for parameter {index}, but the model has {len(params)}")
            continue
        p = params[index]
        for name, value in sorted(per_param.items()):
            # per-parameter moments have the parameter's shape; counters are scalars
            if value.dim() > 0 and value.shape != p.shape:
                problems.append(f"{names.get(id(p), index)}.{name}: {tuple(value.shape)} != "
                                f"{tuple(p.shape)}")
    if problems:
        raise AmiError(f"{path}: optimiser state does not match the model: {'; '.join(problems)}")


# --------------------------------------------------------------------------- pretrained encoders

ENCODER_FILE = "encoder.safetensors"


def save_encoder(vit: torch.nn.Module, run: Path, info: dict) -> Path:
    """Write a pretrained ViT to encoder.safetensors atomically; `info` (JSON-ready) holds what
    rebuilds it: vit (a ViTConfig dict), image_size, channels, and how it was trained."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in vit.state_dict().items()}
    meta = {"ami_encoder": json.dumps(info)}
    return atomic_write(Path(run) / ENCODER_FILE,
                        lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_encoder(run: Path, device: str | torch.device = "cpu"):
    """(ViT, info) of a pretraining run directory (or an encoder .safetensors file), strictly."""
    from ami.config import ViTConfig
    from ami.perception.vit import ViT
    run = Path(run)
    path = run if run.suffix == ".safetensors" else run / ENCODER_FILE
    if not path.exists():
        raise AmiError(f"no pretrained encoder at {path} (pretrain one with `ami pretrain`)")
    meta, tensors = read_safetensors(path)
    try:
        info = json.loads(meta["ami_encoder"])
        v = from_dict(ViTConfig, info["vit"])
        vit = ViT(int(info["channels"]), int(info["image_size"]), v.patch, v.width, v.depth,
                  v.heads, v.tubelet or 1)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise AmiError(f"{path}: not an ami pretrained encoder (its ami_encoder metadata is "
                       f"missing or does not fit this version of ami: {e})") from None
    check_state_dict(vit, tensors, path)
    vit.load_state_dict(tensors, strict=True)
    info["vit"] = v
    return vit.to(device).eval(), info
