"""I-JEPA on real images: the 8×8 handwritten digits that ship with scikit-learn (1,797 images),
upsampled, pretrained without labels, then linear probes on the frozen features against the
same ViT with random weights and against raw pixels.

    python benchmarks/ijepa_digits.py [--steps 1500] [--out runs/digits] [--pool tokens]

It writes the digits as PNG files with labels.csv (a folder any `ami` command can read), runs
`ami pretrain` and `ami probe-features` through the library, and prints the three accuracies.
The probes train on 75 % of the images and are scored on the other 25 %; pretraining sees every
image but never a label. Needs scikit-learn (`pip install 'ami[digits]'`).

The defaults here were chosen on a validation split carved from the probes' training images
(BENCHMARKS.md): a predictor as wide as the encoder and 4 blocks deep (the library's narrow
2-block default collapses on these 64-token images: its loss falls to 0.01 while the mean
token's batch spread falls tenfold).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image

from ami.config import FeatureProbeConfig, PretrainConfig, ViTConfig
from ami.evaluate.features import held_out, probe_features
from ami.perception.pretrain import pretrain


def write_digits(folder: Path, size: int, keep: set[int] | None = None) -> Path:
    """The scikit-learn digits (those in `keep`, default all) as size×size grey PNGs (bilinear
    upsampling) and labels.csv."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (img, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        if keep is not None and i not in keep:
            continue
        grey = Image.fromarray(np.uint8(np.round(img * 255 / 16)))  # 0..16 ink → 0..255
        name = f"{i:04d}.png"
        grey.resize((size, size), Image.Resampling.BILINEAR).save(folder / name)
        rows.append((name, int(label)))
    with open(folder / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([("file", "label"), *rows])
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/digits"))
    ap.add_argument("--size", type=int, default=32, help="side of the upsampled images")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ema-start", type=float, default=0.996)
    ap.add_argument("--predictor-width", type=int, default=64)
    ap.add_argument("--predictor-depth", type=int, default=4)
    ap.add_argument("--collapse", default="ema", choices=["ema", "sigreg"])
    ap.add_argument("--pool", default="mean", choices=["mean", "tokens"])
    ap.add_argument("--blocks", type=int, default=1,
                    help="features from the last this many blocks, side by side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--validate", action="store_true",
                    help="score on a validation split carved from the probes' training images "
                         "(the test images are left out entirely): for choosing settings")
    args = ap.parse_args()
    images = write_digits(args.out / "images", args.size)
    probe_images = images
    if args.validate:  # the same held-out images as probe_features, then split again
        n = len(list(images.glob("*.png")))
        train = np.flatnonzero(~held_out(np.arange(n), FeatureProbeConfig.test_fraction,
                                         np.random.default_rng(args.seed)))
        probe_images = write_digits(args.out / f"validation-images-seed{args.seed}", args.size,
                                    set(train.tolist()))
    run = args.out / (f"ijepa-{args.collapse}-{args.steps}-lr{args.lr:g}-ema{args.ema_start:g}"
                      f"-pred{args.predictor_depth}x{args.predictor_width}"
                      + (f"-seed{args.seed}" if args.seed else ""))
    if not (run / "encoder.safetensors").exists():
        pretrain(PretrainConfig(data=images, run=run, method="ijepa", image_size=args.size,
                                channels=1, vit=ViTConfig(patch=4, width=64, depth=4, heads=4),
                                steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                ema_start=args.ema_start, predictor_width=args.predictor_width,
                                predictor_depth=args.predictor_depth, collapse=args.collapse,
                                seed=args.seed, progress=False))
    r = probe_features(FeatureProbeConfig(encoder=run, data=probe_images, labels=str(
        probe_images / "labels.csv"), pool=args.pool, blocks=args.blocks, seed=args.seed,
        progress=False))
    print(f"digits, linear probe accuracy on {r['protocol']['samples']['test']} held-out "
          f"{'validation' if args.validate else 'test'} images ({args.pool} features of the "
          f"last {args.blocks} block(s)):")
    for name, s in r["results"].items():
        print(f"  {name:<16} {100 * s['accuracy']:5.1f} %   ({s['features']} features, "
              f"ridge {s['ridge']:g})")


if __name__ == "__main__":
    main()
