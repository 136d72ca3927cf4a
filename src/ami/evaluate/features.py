"""`ami probe-features`: what a pretrained encoder's frozen features tell a linear read-out.

A linear probe (multinomial logistic regression for class labels, ridge regression for
continuous targets) is fitted on the features of some images (or episodes) and scored on the
others: accuracy, or Pearson r and R² per target. The same probe is fitted, by default, on the
same ViT with random weights and on the raw pixels, so a score says what pretraining added.
Each feature set gets the L2 penalty that scores best in 3-fold cross-validation on the training
split alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ami.config import FeatureProbeConfig
from ami.data.media import EpisodeFrames, ImageFolder, _fit, open_frames, read_labels
from ami.errors import AmiError
from ami.evaluate.probes import RidgeProbe, pearson_r, r_squared, safe_std
from ami.io import ENCODER_FILE, file_sha256, load_encoder, write_json
from ami.perception.vit import ViT


class LogisticProbe:
    """Multinomial logistic regression on standardised features, fitted by L-BFGS in float64."""

    def __init__(self, x: np.ndarray, y: np.ndarray, classes: int, ridge: float = 1e-3,
                 iterations: int = 200):
        self.mean, self.std = x.mean(0), safe_std(x)
        xs = torch.as_tensor((x - self.mean) / self.std, dtype=torch.float64)
        ys = torch.as_tensor(y, dtype=torch.long)
        self.w = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
        self.b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([self.w, self.b], max_iter=iterations,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(xs @ self.w + self.b, ys) + ridge * self.w.pow(2).sum()
            loss.backward()
            return loss
        opt.step(closure)

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        xs = torch.as_tensor((x - self.mean) / self.std, dtype=torch.float64)
        return (xs @ self.w + self.b).argmax(1).numpy()


def fit_probe(x: np.ndarray, y: np.ndarray, classes: int, ridge: float):
    return LogisticProbe(x, y, classes, ridge) if classes else RidgeProbe(x, y, ridge)


def score(probe, x: np.ndarray, y: np.ndarray, classes: int) -> dict:
    pred = probe.predict(x)
    if classes:
        return {"accuracy": float((pred == y).mean())}
    return {"r": pearson_r(pred, y).tolist(), "r2": r_squared(pred, y).tolist()}


def choose_ridge(x: np.ndarray, y: np.ndarray, classes: int, ridges, seed: int) -> float:
    """The penalty with the best mean validation score over 3 folds of the training split
    (accuracy, or mean R²)."""
    if len(ridges) == 1:
        return float(ridges[0])
    folds = np.random.default_rng(seed).permutation(len(x)) % 3
    totals = np.zeros(len(ridges))
    for k in range(3):
        tr, va = folds != k, folds == k
        ridge_probe = None if classes else RidgeProbe(x[tr], y[tr])  # one fit, every penalty
        for i, ridge in enumerate(ridges):
            probe = fit_probe(x[tr], y[tr], classes, ridge) if classes else \
                ridge_probe.at(ridge)
            s = score(probe, x[va], y[va], classes)
            totals[i] += s["accuracy"] if classes else float(np.mean(s["r2"]))
    return float(ridges[int(np.argmax(totals))])


@torch.no_grad()
def vit_features(vit: ViT, clips: np.ndarray, pool: str = "mean", blocks: int = 1,
                 batch: int = 256, progress: bool = False, desc: str = "features") -> np.ndarray:
    """Features (N, F) of clips (N, T, S, S, C) uint8: the mean token (F = blocks · width) or
    every token concatenated, of the last `blocks` blocks side by side."""
    out = []
    for i in tqdm(range(0, len(clips), batch), desc=desc, unit="batch", disable=not progress):
        x = torch.as_tensor(clips[i:i + batch]).permute(0, 4, 1, 2, 3).float().div_(255)
        tokens = torch.cat(vit.block_outputs(x, last=blocks), -1)          # (B, N, blocks·W)
        out.append((tokens.mean(1) if pool == "mean" else tokens.flatten(1)).numpy())
    return np.concatenate(out).astype(np.float64)


def _image_samples(source: ImageFolder, cfg: FeatureProbeConfig, frames: int, rng):
    labels_path = Path(cfg.labels)
    if not labels_path.is_file():
        raise AmiError(f"--labels {cfg.labels}: for a folder of images, give a CSV file with "
                       f"columns file,label")
    labels = read_labels(labels_path, source.files, source.folder)
    keep = np.arange(len(source))
    if len(keep) > cfg.max_samples:
        keep = np.sort(rng.choice(len(keep), cfg.max_samples, replace=False))
    clips = np.stack([np.repeat(source.clip(int(i)), frames, 0) for i in keep])
    groups = keep                                     # one image per group: split by image
    return clips, labels[keep], groups, ["label"]


def _episode_samples(source: EpisodeFrames, cfg: FeatureProbeConfig, frames: int, rng):
    if cfg.labels != "states":
        raise AmiError(f"--labels {cfg.labels}: for HDF5 episodes, use --labels states (the "
                       f"states recorded with each frame)")
    per_episode = max(1, cfg.max_samples // len(source))
    clips, states, groups = [], [], []
    for e in range(len(source)):
        ep = source.stream.episode(e)
        if "states" not in ep:
            raise AmiError(f"{source.stream.path}: its episodes record no states; nothing to "
                           f"probe")
        n = len(ep["frames"])
        ends = np.arange(frames - 1, n)
        if len(ends) > per_episode:
            ends = np.sort(rng.choice(ends, per_episode, replace=False))
        fr = ep["frames"]
        if source.image_size != fr.shape[1]:
            fr = np.stack([_fit(_to_image(f), source.image_size, source.channels) for f in fr])
        for t in ends:
            clips.append(fr[t - frames + 1:t + 1])
            states.append(ep["states"][t])
            groups.append(e)
    from ami.evaluate.probes import _state_names
    names = _state_names(source.world, len(states[0]))
    return np.stack(clips), np.stack(states).astype(np.float64), np.asarray(groups), names


def _to_image(frame: np.ndarray):
    from PIL import Image
    return Image.fromarray(frame.squeeze(-1) if frame.shape[-1] == 1 else frame)


def held_out(groups: np.ndarray, fraction: float, rng: np.random.Generator,
             data="data") -> np.ndarray:
    """Which samples (N,) are held out: those of a random `fraction` of the groups (images or
    episodes), so no group is on both sides."""
    order = rng.permutation(np.unique(groups))
    n_test = max(1, round(fraction * len(order)))
    if len(order) - n_test < 2:
        raise AmiError(f"{data}: too few images or episodes ({len(order)}) to split into "
                       f"training and test sets")
    return np.isin(groups, order[:n_test])


def probe_features(cfg: FeatureProbeConfig) -> dict:
    """Fit and score the linear probes; writes the result to `result_path(cfg)`."""
    if not 0 < cfg.test_fraction < 1:
        raise AmiError(f"--test-fraction must be in (0, 1), got {cfg.test_fraction}")
    if cfg.blocks < 1:
        raise AmiError(f"--blocks must be >= 1, got {cfg.blocks}")
    if not cfg.ridge or min(cfg.ridge) < 0:
        raise AmiError(f"--ridge must be one or more penalties >= 0, got {cfg.ridge}")
    vit, info = load_encoder(cfg.encoder)
    source = open_frames(cfg.data, info["image_size"], info["channels"])
    frames = cfg.frames or vit.tubelet
    rng = np.random.default_rng(cfg.seed)
    if isinstance(source, ImageFolder):
        clips, y, groups, names = _image_samples(source, cfg, frames, rng)
    elif isinstance(source, EpisodeFrames):
        clips, y, groups, names = _episode_samples(source, cfg, frames, rng)
    else:
        raise AmiError(f"{cfg.data}: probes need labels; give a folder of images with a CSV of "
                       f"labels, or HDF5 episodes with states")

    classes, class_names = 0, None
    if cfg.labels != "states":
        y, classes, class_names = _encode_labels(y, cfg.task)
    test = held_out(groups, cfg.test_fraction, rng, cfg.data)

    feature_sets = {"pretrained": lambda: vit_features(vit, clips, cfg.pool, cfg.blocks,
                                                       progress=cfg.progress, desc="pretrained")}
    if cfg.baselines:
        def random_features():
            with torch.random.fork_rng():
                torch.manual_seed(cfg.seed)
                v = info["vit"]
                fresh = ViT(info["channels"], info["image_size"], v.patch, v.width, v.depth,
                            v.heads, v.tubelet or 1).eval()
            return vit_features(fresh, clips, cfg.pool, cfg.blocks, progress=cfg.progress,
                                desc="random")
        feature_sets["random_weights"] = random_features
        feature_sets["pixels"] = lambda: clips[:, -1].reshape(len(clips), -1) / 255.0
    results = {}
    for name, make in feature_sets.items():
        x = make()
        ridge = choose_ridge(x[~test], y[~test], classes, cfg.ridge, cfg.seed)
        probe = fit_probe(x[~test], y[~test], classes, ridge)
        results[name] = {**score(probe, x[test], y[test], classes), "ridge": ridge,
                         "features": int(x.shape[1])}
    result = {
        "task": "classify" if classes else "regress",
        "targets": names if not classes else ["label"],
        "classes": class_names,
        "results": results,
        "protocol": {
            "encoder": str(cfg.encoder), "data": str(cfg.data), "labels": cfg.labels,
            "pool": cfg.pool, "blocks": cfg.blocks, "frames": frames,
            "samples": {"train": int((~test).sum()), "test": int(test.sum())},
            "split": "by image" if isinstance(source, ImageFolder) else
                     "by episode: the probes never see a test episode's frames",
            "ridge_candidates": list(cfg.ridge), "seed": cfg.seed,
            "encoder_sha256": _sha256(cfg.encoder),
            "command": f"ami probe-features --encoder {cfg.encoder} --data {cfg.data} "
                       f"--labels {cfg.labels} --pool {cfg.pool} --blocks {cfg.blocks} "
                       f"--seed {cfg.seed}",
        },
    }
    write_json(result_path(cfg), result)
    return result


def result_path(cfg: FeatureProbeConfig) -> Path:
    """feature_probe-<data>-<pool>[-blocksN][-framesN][-seedN].json in the encoder's run, the
    settings left at their defaults unnamed: a probe of other data (a validation split) or of
    other features keeps its own file instead of replacing the last one's; the same settings
    again replace theirs."""
    run, data = Path(cfg.encoder), Path(cfg.data).resolve()
    parts = [(data.stem if data.is_file() else data.name) or "data", cfg.pool]
    parts += [f"{name}{getattr(cfg, name)}" for name in ("blocks", "frames", "seed")
              if getattr(cfg, name) != getattr(FeatureProbeConfig, name)]
    return (run.parent if run.suffix == ".safetensors" else run) / \
        f"feature_probe-{'-'.join(parts)}.json"


def _encode_labels(labels: np.ndarray, task: str):
    """(y, number of classes or 0 for regression, class names)."""
    try:
        values = labels.astype(np.float64)
    except ValueError:
        values = None
    is_int = values is not None and np.all(values == np.round(values))
    classify = task == "classify" or (task == "auto" and (
        values is None or (is_int and len(np.unique(values)) <= 100)))
    if not classify:
        if values is None:
            raise AmiError("--task regress needs numeric labels")
        return values[:, None], 0, None
    names, y = np.unique(labels, return_inverse=True)
    if is_int:  # numeric classes in numeric order
        order = np.argsort(values[np.unique(labels, return_index=True)[1]])
        names, y = names[order], np.argsort(order)[y]
    return y, len(names), names.tolist()


def _sha256(run: Path) -> str:
    run = Path(run)
    return file_sha256(run if run.suffix == ".safetensors" else run / ENCODER_FILE)
