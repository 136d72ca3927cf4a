"""Training throughput on 1 and 2 processes, and peak memory against data-set size.

    python benchmarks/scaling.py [--steps 60] [--episodes 200 800 3200] [--dir DIR]

Throughput: `ami train` (default model, Two-Rooms, batch 64) as one process and under
`torchrun --standalone --nproc-per-node 2` (the same global batch of 64, 32 per process), on the
CPU; samples/s from metrics.jsonl's clock between the first and the last logged step, so start-up
and the first step are left out. Memory: peak resident memory of `ami train` (20 steps) on data
sets of growing size, loaded into memory and streamed from HDF5 (main process, and the largest
loader worker). The data sets repeat one collection's episodes: h5py copies their compressed
chunks, so a large file is made in seconds and reads like a collected one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import torch

BATCH = 64


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=60, help="training steps per throughput run")
    p.add_argument("--episodes", type=int, nargs="+", default=[200, 800, 3200],
                   help="data-set sizes (episodes of 100 steps) for the memory runs")
    p.add_argument("--dir", type=Path, default=None, help="where data and runs go (default: a "
                   "temporary directory, removed afterwards)")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--measure", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure is not None:  # child: one `ami train`, then its peak memory
        return measure(args.measure)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        print(f"machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
              f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f} at start")
        base = root / "base.h5"
        if not base.exists():
            run([sys.executable, "-m", "ami.cli", "collect", "--out", str(base), "--episodes",
                 str(min(args.episodes)), "--steps", "100"], {})
        if not args.skip_throughput:
            throughput(root, base, args.steps)
        if not args.skip_memory:
            memory(root, base, args.episodes)
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


def throughput(root: Path, data: Path, steps: int) -> None:
    print(f"\n| processes x threads | data | samples/s (batch {BATCH}, {steps} steps) |")
    print("|---|---|---|")
    launch_two = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                  "--nproc-per-node", "2"]
    for name, launch, threads, stream in [
        ("1 x 1", [sys.executable], 1, False),
        ("1 x 2", [sys.executable], 2, False),
        ("2 x 1 (torchrun)", launch_two, 1, False),
        ("1 x 1, streamed (1 worker)", [sys.executable], 1, True),
    ]:
        run_dir = root / f"speed-{name.split()[0]}-{threads}-{stream}-{os.getpid()}"
        # `--` keeps torchrun from taking ami's --run for its own --run-path
        run([*launch, "-m", "ami.cli", "--", "train",
             *train_args(data, run_dir, steps, stream, 10)],
            {"OMP_NUM_THREADS": str(threads)})
        rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        first, last = rows[1], rows[-1]  # rows[0] is step 0, which includes warm-up
        rate = (last["step"] - first["step"]) * BATCH / (last["time"] - first["time"])
        print(f"| {name} | {'streamed' if stream else 'in memory'} | {rate:.0f} |", flush=True)


def memory(root: Path, base: Path, sizes: list[int]) -> None:
    print("\n| episodes | frames | frames in memory | peak RSS, in memory | "
          "peak RSS, streamed (main + largest worker) |")
    print("|---|---|---|---|---|")
    for n in sizes:
        data = root / f"episodes-{n}.h5"
        if not data.exists():
            repeat_episodes(base, data, n)
        with h5py.File(data, "r") as f:
            frames = sum(g["frames"].shape[0] for g in f["episodes"].values())
            frame_size = math.prod(int(v) for v in f.attrs["image_shape"])
        peaks = {}
        for stream in (False, True):
            out = subprocess.run(
                [sys.executable, __file__, "--measure",
                 *train_args(data, root / f"mem-{n}-{stream}-{os.getpid()}", 20, stream, 10)],
                env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(out.stderr[-2000:])
            peaks[stream] = json.loads(out.stdout.strip().splitlines()[-1])
        gib = 1 << 30
        print(f"| {n} | {frames:,} | {frames * frame_size / gib:.2f} GiB | "
              f"{peaks[False]['main'] / gib:.2f} GiB | {peaks[True]['main'] / gib:.2f} + "
              f"{peaks[True]['workers'] / gib:.2f} GiB |", flush=True)


def measure(argv: list[str]) -> None:
    from ami.cli import main as ami
    code = ami(["train", *argv])
    if code:
        raise SystemExit(code)
    kib = 1024  # ru_maxrss is in KiB on Linux
    print(json.dumps({
        "main": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib,
        "workers": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib,
    }))


def train_args(data: Path, run_dir: Path, steps: int, stream: bool, log_every: int) -> list[str]:
    return ["--data", str(data), "--run", str(run_dir), "--steps", str(steps), "--batch-size",
            str(BATCH), "--log-every", str(log_every), "--checkpoint-every", str(10 * steps),
            "--device", "cpu", "--no-progress", "--stream" if stream else "--no-stream",
            "--workers", "1"]


def repeat_episodes(base: Path, out: Path, n: int) -> None:
    """A file of `n` episodes: `base`'s episodes over and over, chunks copied as they are."""
    with h5py.File(base, "r") as src, h5py.File(out, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        episodes = dst.create_group("episodes")
        names = sorted(src["episodes"])
        for i in range(n):
            src.copy(src["episodes"][names[i % len(names)]], episodes, name=f"{i:06d}")


def run(cmd: list[str], env: dict) -> None:
    out = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")


if __name__ == "__main__":
    main()
