"""`ami probe`: how much of the physical state a run's frozen embeddings hold.

A probe reads the embeddings of a frame and of the frames before it, `frameskip` apart — the
window the predictor sees, since velocity is not visible in one frame — and predicts the state
recorded with that frame. Two probes: linear (ridge regression, closed form) and a small MLP.
They are trained on some episodes and scored on the others, by Pearson r and R² per variable.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from ami.config import ProbeConfig
from ami.data.dataset import EpisodeDataset
from ami.envs import WORLDS
from ami.errors import AmiError
from ami.io import MODEL_FILE, check_model_fits, file_sha256, load_model, run_data, write_json
from ami.world_model.model import WorldModel


class RidgeProbe:
    """y = standardise(x) · W + b by ridge regression in float64, the penalty ridge · N · |W|²
    (the bias is not shrunk). One eigendecomposition serves every penalty (`at`): of XᵀX with
    fewer features than samples, of XXᵀ (the dual) with more, so that thousands of raw pixels
    cost no more than thousands of samples."""

    def __init__(self, x: np.ndarray, y: np.ndarray, ridge: float = 1e-3):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        self.ridge = ridge
        self.mean, self.std = x.mean(0), safe_std(x)
        self.x = (x - self.mean) / self.std
        self.y_mean = y.mean(0)
        self.y = y - self.y_mean
        self.dual = x.shape[1] > x.shape[0]
        gram = self.x @ self.x.T if self.dual else self.x.T @ self.x
        self.eig, self.vec = np.linalg.eigh(gram)
        self.rhs = self.vec.T @ (self.y if self.dual else self.x.T @ self.y)

    def at(self, ridge: float) -> RidgeProbe:
        """The same fit read at another penalty (shares the decomposition)."""
        other = copy.copy(self)
        other.ridge = ridge
        return other

    def weights(self, ridge: float | None = None) -> np.ndarray:
        """(F, S) weights at `ridge` (default: the probe's own)."""
        ridge = self.ridge if ridge is None else ridge
        scaled = self.vec @ (self.rhs / (self.eig + ridge * len(self.x) + 1e-12)[:, None])
        return self.x.T @ scaled if self.dual else scaled

    def predict(self, x: np.ndarray, ridge: float | None = None) -> np.ndarray:
        xs = (np.asarray(x, np.float64) - self.mean) / self.std
        return xs @ self.weights(ridge) + self.y_mean


def safe_std(x: np.ndarray) -> np.ndarray:
    """Per-feature std, 1 for features constant in the training set (a border pixel): dividing
    by ~0 would blow up any test sample where it is not constant."""
    std = x.std(0)
    return np.where(std < 1e-6, 1.0, std)


class MLPProbe:
    """A two-hidden-layer MLP on standardised inputs and targets, trained with Adam."""

    def __init__(self, x: np.ndarray, y: np.ndarray, width: int = 256, steps: int = 2000,
                 seed: int = 0, batch_size: int = 256, lr: float = 1e-3):
        self.x_mean, self.x_std = x.mean(0), np.maximum(x.std(0), 1e-8)
        self.y_mean, self.y_std = y.mean(0), np.maximum(y.std(0), 1e-8)
        xs = torch.as_tensor((x - self.x_mean) / self.x_std, dtype=torch.float32)
        ys = torch.as_tensor((y - self.y_mean) / self.y_std, dtype=torch.float32)
        with torch.random.fork_rng():  # a probe does not move the caller's random stream
            torch.manual_seed(seed)
            self.net = nn.Sequential(nn.Linear(x.shape[1], width), nn.GELU(),
                                     nn.Linear(width, width), nn.GELU(),
                                     nn.Linear(width, y.shape[1]))
            opt = torch.optim.Adam(self.net.parameters(), lr=lr)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
            for _ in range(steps):
                i = torch.randint(len(xs), (min(batch_size, len(xs)),))
                loss = (self.net(xs[i]) - ys[i]).pow(2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        xs = torch.as_tensor((x - self.x_mean) / self.x_std, dtype=torch.float32)
        return self.net(xs).numpy().astype(np.float64) * self.y_std + self.y_mean


def pearson_r(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation per column: (N, S), (N, S) → (S,)."""
    p, t = pred - pred.mean(0), y - y.mean(0)
    return (p * t).sum(0) / np.maximum(np.sqrt((p**2).sum(0) * (t**2).sum(0)), 1e-12)


def r_squared(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """1 − SSE/SST per column, SST around the scored samples' own mean."""
    sse = ((pred - y) ** 2).sum(0)
    sst = ((y - y.mean(0)) ** 2).sum(0)
    return 1.0 - sse / np.maximum(sst, 1e-12)


def context_samples(data: EpisodeDataset, episodes: np.ndarray, frames: int, frameskip: int
                    ) -> np.ndarray:
    """Frame indices (N, frames) of every context window inside the episodes, oldest first;
    the window's last frame is the one whose state it is scored against."""
    span = (frames - 1) * frameskip
    ends = [data.starts[e] + np.arange(span, data.lengths[e]) for e in episodes]
    ends = np.concatenate(ends) if ends else np.zeros(0, int)
    return ends[:, None] - frameskip * np.arange(frames - 1, -1, -1)


@torch.no_grad()
def embed_frames(model: WorldModel, frames: np.ndarray, batch: int = 512,
                 progress: bool = False) -> np.ndarray:
    """Embeddings (N, D) of frames (N, H, W, C) uint8 by the frozen encoder."""
    out = [model.encode(frames[i:i + batch]).float().cpu().numpy()
           for i in tqdm(range(0, len(frames), batch), desc="embed", unit="batch",
                         disable=not progress)]
    return np.concatenate(out) if out else np.zeros((0, model.cfg.embed_dim), np.float32)


def probe(cfg: ProbeConfig) -> dict:
    """Fit and score the probes on the run's embeddings; writes probe.json in the run."""
    run = Path(cfg.run)
    model = load_model(run)
    data_path = Path(cfg.data) if cfg.data is not None else run_data(run)
    data = EpisodeDataset.load(data_path)
    check_model_fits(model.cfg, data.image_shape, data.action_dim, f"data {data_path}",
                     f"run {run}")
    if data.states is None:
        raise AmiError(f"{data_path}: its episodes record no states; nothing to probe")
    k = cfg.frames or model.cfg.history
    fs = model.cfg.frameskip
    _check(cfg, data.num_episodes)

    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(data.num_episodes)
    n_test = max(1, round(cfg.test_fraction * data.num_episodes))
    split = {"test": np.sort(order[:n_test]), "train": np.sort(order[n_test:])}
    windows = {}
    for name, eps in split.items():
        w = context_samples(data, eps, k, fs)
        share = cfg.max_samples * len(eps) // data.num_episodes
        if len(w) > share:
            w = w[np.sort(rng.choice(len(w), share, replace=False))]
        if len(w) == 0:
            raise AmiError(f"{data_path}: no {name} episode is long enough for a window of "
                           f"{k} frames {fs} steps apart")
        windows[name] = w

    used = np.unique(np.concatenate([w.ravel() for w in windows.values()]))
    z = np.zeros((len(data.frames), model.cfg.embed_dim), np.float32)
    z[used] = embed_frames(model, data.frames[used], progress=cfg.progress)
    x = {name: z[w].reshape(len(w), -1) for name, w in windows.items()}      # (N, k·D)
    y = {name: data.states[w[:, -1]].astype(np.float64) for name, w in windows.items()}

    names = _state_names(data.world, data.states.shape[1])
    probes = {"linear": RidgeProbe(x["train"], y["train"], cfg.ridge),
              "mlp": MLPProbe(x["train"], y["train"], cfg.mlp_width, cfg.mlp_steps, cfg.seed)}
    scores = {}
    for kind, p in probes.items():
        pred = p.predict(x["test"])
        r, r2 = pearson_r(pred, y["test"]), r_squared(pred, y["test"])
        scores[kind] = {n: {"r": float(r[i]), "r2": float(r2[i])} for i, n in enumerate(names)}
    result = {
        "world": data.world,
        "variables": names,
        **scores,
        "protocol": {
            "data": str(data_path), "frames": k, "frameskip": fs,
            "episodes": {n: int(len(e)) for n, e in split.items()},
            "samples": {n: int(len(w)) for n, w in windows.items()},
            "ridge": cfg.ridge, "mlp_width": cfg.mlp_width, "mlp_steps": cfg.mlp_steps,
            "seed": cfg.seed,
            "split": "by episode: the probes never see a test episode's frames",
            "model_sha256": file_sha256(run / MODEL_FILE),
            "command": f"ami probe --run {run} --data {data_path} --frames {k} "
                       f"--test-fraction {cfg.test_fraction} --seed {cfg.seed}",
        },
    }
    write_json(run / "probe.json", result)
    return result


def _check(cfg: ProbeConfig, episodes: int) -> None:
    for name, ok, want in [("frames", cfg.frames >= 0, ">= 0 (0: the predictor's history)"),
                           ("test_fraction", 0 < cfg.test_fraction < 1, "in (0, 1)"),
                           ("max_samples", cfg.max_samples >= 10, ">= 10"),
                           ("ridge", cfg.ridge >= 0, ">= 0"),
                           ("mlp_width", cfg.mlp_width >= 1, ">= 1"),
                           ("mlp_steps", cfg.mlp_steps >= 1, ">= 1")]:
        if not ok:
            raise AmiError(f"--{name.replace('_', '-')} must be {want}, got "
                           f"{getattr(cfg, name)}")
    if episodes < 2:
        raise AmiError("probes need at least 2 episodes: some to train on, others to score on")




def _state_names(world: str, size: int) -> list[str]:
    names = getattr(WORLDS.get(world), "state_names", None)
    names = names(size) if names is not None else []
    return names if len(names) == size else [f"state{i}" for i in range(size)]
