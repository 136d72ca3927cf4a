"""Continuing a killed training run bit for bit, for `ami train` and `ami pretrain` alike.

A loop that draws from a numpy Generator (batches, masks), a CPU torch Generator (SIGReg's
directions) and torch's and python's global RNGs saves all of them in its checkpoint
(`rng_state`, `rng_tensors`) and puts them back on `--resume` (`restore_rngs`). The run's own
config comes back from the checkpoint (`resumed_config`), so that an option given again with
another value is refused, not silently ignored; and metrics.jsonl is cut back to the checkpoint's
step (`keep_metrics_before`), so that the steps the killed run logged after it appear once.
The checkpoint file itself (model, optimiser, these states) is `ami.io`'s.
"""

from __future__ import annotations

import json
import random
import warnings
from dataclasses import fields, is_dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ami.config import from_dict
from ami.errors import AmiError
from ami.io import Checkpoint, atomic_write, restore

# what each command's runs are, for the error that sends a --resume to the other command
_RUN_KIND = {"train": "a world-model training run", "pretrain": "a pretraining run"}


def rng_state(rng: np.random.Generator) -> dict:
    """The numpy Generator's and python's RNG states, JSON-ready (a checkpoint's state)."""
    version, state, gauss = random.getstate()
    return {"numpy_rng": rng.bit_generator.state,
            "python_rng": {"version": version, "state": list(state), "gauss": gauss}}


def rng_tensors(gen: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    """torch's global RNG state, `gen`'s (SIGReg's directions) and, on CUDA, the device's."""
    tensors = {"rng/torch": torch.get_rng_state(), "rng/sigreg": gen.get_state()}
    if device.type == "cuda":
        tensors["rng/cuda"] = torch.cuda.get_rng_state(device)
    return tensors


def restore_rngs(ckpt: Checkpoint, rng: np.random.Generator, gen: torch.Generator,
                 device: torch.device) -> None:
    """Put back every RNG state `rng_state` and `rng_tensors` saved in `ckpt`."""
    try:
        rng.bit_generator.state = ckpt.state["numpy_rng"]
        p = ckpt.state["python_rng"]
        random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
        torch.set_rng_state(ckpt.tensors["rng/torch"])
        sigreg_state = ckpt.tensors["rng/sigreg"]
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise AmiError(f"{ckpt.path}: its RNG states are missing or damaged ({e})") from None
    try:
        gen.set_state(sigreg_state)
    except RuntimeError:  # a CUDA generator's state, written by an earlier ami on a GPU
        warnings.warn(f"{ckpt.path} holds SIGReg's random state of a CUDA generator; "
                      f"SIGReg's directions restart from the seed, so the resumed run will not "
                      f"match an uninterrupted one", stacklevel=2)
        gen.manual_seed(ckpt.state.get("config", {}).get("seed", 0) + ckpt.step)
    if "rng/cuda" in ckpt.tensors and device.type == "cuda":
        torch.cuda.set_rng_state(ckpt.tensors["rng/cuda"], device)


def restore_run(ckpt: Checkpoint, module, opt, rng: np.random.Generator, gen: torch.Generator,
                device: torch.device) -> tuple[int, float, list[int]]:
    """Put back the module's, the optimiser's and every RNG's state from `ckpt`; returns the
    step to start from, the seconds the run had already spent, and the steps at which it was
    resumed (this one included)."""
    restore(ckpt, module, opt)
    restore_rngs(ckpt, rng, gen, device)
    return (ckpt.step, float(ckpt.state.get("elapsed", 0.0)),
            [*ckpt.state.get("resumed_at", []), ckpt.step])


def keep_metrics_before(path: Path, step: int) -> None:
    """Keep metrics rows of steps before `step`: the killed run may have logged past its last
    checkpoint (and cut its last line short); the resumed run writes those steps again."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] < step:
            kept.append(line + "\n")
    atomic_write(path, lambda tmp: tmp.write_text("".join(kept)))


def resumed_config(given, ckpt: Checkpoint, command: str, overrides: tuple[str, ...] = (),
                   ignored: tuple[str, ...] = ()):
    """The run's own config, read from `ckpt`, with the `overrides` (options that change how a
    run is watched or stored, not what it computes) taken from `given` where it sets them.

    `given` is the command line's config (a TrainConfig or a PretrainConfig, with `resume` set);
    any other option it sets to a value the run does not have is an AmiError naming each, and
    so is a checkpoint of the other command. `ignored` (dotted names, as `model.image_size`)
    are set from the data, not by the user, and are not compared."""
    run = Path(given.resume)
    if ckpt.command != command:
        raise AmiError(f"{run} is {_RUN_KIND.get(ckpt.command, f'an `ami {ckpt.command}` run')}; "
                       f"continue it with `ami {ckpt.command} --resume {run}`")
    if given.run is not None and Path(given.run) != run:
        raise AmiError(f"--run {given.run} and --resume {run} name different runs; --resume "
                       f"continues a run in its own directory")
    try:
        saved = from_dict(type(given), ckpt.state["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise AmiError(f"{ckpt.path}: its training config does not fit this version of ami "
                       f"({e})") from None
    conflicts = options_that_differ(given, saved, skip=("resume", "run", *overrides, *ignored))
    if conflicts:
        raise AmiError(f"--resume {run} continues the run with its own settings, but these "
                       f"options differ: {', '.join(conflicts)}; start a new run to change them")
    default = type(given)()
    taken = {name: getattr(given, name) if getattr(given, name) != getattr(default, name)
             else getattr(saved, name) for name in overrides}
    return replace(saved, resume=run, run=run, **taken)


def options_that_differ(given, saved, skip: tuple[str, ...] = (), prefix: str = "") -> list[str]:
    """`name=value (the run has value)` for each option `given` sets away from its default to a
    value `saved` does not have; nested configs are compared field by field (`model.lr`)."""
    default, differ = type(given)(), []
    for f in fields(given):
        name = prefix + f.name
        g, s, d = getattr(given, f.name), getattr(saved, f.name), getattr(default, f.name)
        if name in skip:
            continue
        if is_dataclass(g) and is_dataclass(s):
            differ += options_that_differ(g, s, skip, prefix=f"{name}.")
        elif g not in (d, s):
            differ.append(f"{name}={g!r} (the run has {s!r})")
    return differ
