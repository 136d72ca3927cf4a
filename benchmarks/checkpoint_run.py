"""A run directory that `ami eval` and `ami probe` accept, made from a training checkpoint.

`ami train` overwrites its one checkpoint.safetensors every `--checkpoint-every` steps, and only
the last step becomes model.safetensors. To score a run part-way, copy the checkpoint aside while
it trains, then turn each copy into a run of its own (the model's weights, the source run's
config.json; the optimiser state is left out):

    python benchmarks/checkpoint_run.py --checkpoint copies/step2500.safetensors \
        --like runs/pusht-w32-10k --out runs/pusht-w32-10k-at2500
    ami eval --run runs/pusht-w32-10k-at2500
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ami.io import read_checkpoint, save_model
from ami.world_model import build_world_model


def checkpoint_run(checkpoint: Path, like: Path, out: Path) -> int:
    """Write out/model.safetensors from `checkpoint` and copy like/config.json; returns the
    checkpoint's step."""
    ckpt = read_checkpoint(checkpoint)
    model = build_world_model(ckpt.model_config)
    model.load_state_dict(ckpt.model, strict=True)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(like / "config.json", out / "config.json")
    save_model(model, out)
    return ckpt.step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="a checkpoint.safetensors written by `ami train`")
    parser.add_argument("--like", type=Path, required=True,
                        help="the run that wrote it (its config.json names the world)")
    parser.add_argument("--out", type=Path, required=True, help="run directory to write")
    args = parser.parse_args()
    step = checkpoint_run(args.checkpoint, args.like, args.out)
    print(f"{args.out}: the model after step {step}")


if __name__ == "__main__":
    main()
