"""The block's angle from a PushT run's frozen embeddings, probed as (cos θ, sin θ).

`ami probe` regresses the recorded angle, which lives in [0, 2π): a T turned by 1° and one
turned by 359° look nearly alike but lie at the two ends of that range, so a linear probe of the
raw angle scores poorly whatever the embedding holds. This probe regresses (cos θ, sin θ)
instead, on the very split and windows of `ami probe` (episodes held out by seed, the
predictor's history), and reports Pearson r of each and the median angle error of
atan2(sin, cos):

    python benchmarks/pusht_angle_probe.py --run runs/pusht --data data/pusht-probe.h5
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ami.data.dataset import EpisodeDataset
from ami.evaluate.probes import MLPProbe, RidgeProbe, context_samples, embed_frames, pearson_r
from ami.io import load_model


def angle_probe(run: Path, data_path: Path, test_fraction: float = 0.25, seed: int = 0,
                max_samples: int = 40000) -> dict:
    model = load_model(run)
    data = EpisodeDataset.load(data_path)
    k, fs = model.cfg.history, model.cfg.frameskip
    rng = np.random.default_rng(seed)                   # the split of `ami probe --seed 0`
    order = rng.permutation(data.num_episodes)
    n_test = max(1, round(test_fraction * data.num_episodes))
    split = {"test": np.sort(order[:n_test]), "train": np.sort(order[n_test:])}
    windows = {}
    for name, eps in split.items():
        w = context_samples(data, eps, k, fs)
        share = max_samples * len(eps) // data.num_episodes
        if len(w) > share:
            w = w[np.sort(rng.choice(len(w), share, replace=False))]
        windows[name] = w
    used = np.unique(np.concatenate([w.ravel() for w in windows.values()]))
    z = np.zeros((len(data.frames), model.cfg.embed_dim), np.float32)
    z[used] = embed_frames(model, data.frames[used])
    x = {n: z[w].reshape(len(w), -1) for n, w in windows.items()}
    theta = {n: data.states[w[:, -1], 4].astype(np.float64) for n, w in windows.items()}
    y = {n: np.stack([np.cos(t), np.sin(t)], axis=1) for n, t in theta.items()}
    result = {"run": str(run), "data": str(data_path), "test_windows": len(windows["test"])}
    for kind, probe in (("linear", RidgeProbe(x["train"], y["train"])),
                        ("mlp", MLPProbe(x["train"], y["train"], seed=seed))):
        pred = probe.predict(x["test"])
        r = pearson_r(pred, y["test"])
        err = np.abs(np.angle(np.exp(1j * (np.arctan2(pred[:, 1], pred[:, 0]) - theta["test"]))))
        result[kind] = {"r_cos": float(r[0]), "r_sin": float(r[1]),
                        "median_error_deg": float(np.degrees(np.median(err))),
                        "within_20_deg": float(np.mean(err < np.radians(20)))}
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    print(json.dumps(angle_probe(args.run, args.data), indent=2))


if __name__ == "__main__":
    main()
