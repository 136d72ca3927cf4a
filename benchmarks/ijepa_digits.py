"""I-JEPA on real images: the 8×8 handwritten digits that ship with scikit-learn (1,797 images),
upsampled, pretrained without labels, then linear probes on the frozen features against the
same ViT with random weights and against raw pixels.

    python benchmarks/ijepa_digits.py [--steps 1500] [--out runs/digits]

It writes the digits as PNG files with labels.csv (a folder any `ami` command can read), runs
`ami pretrain` and `ami probe-features` through the library, and prints the three accuracies.
The probes train on 75 % of the images and are scored on the other 25 %; pretraining sees every
image but never a label. Needs scikit-learn (`pip install 'ami[digits]'`).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image

from ami.config import FeatureProbeConfig, PretrainConfig, ViTConfig
from ami.evaluate.features import probe_features
from ami.perception.pretrain import pretrain


def write_digits(folder: Path, size: int) -> Path:
    """The scikit-learn digits as size×size grey PNGs (bilinear upsampling) and labels.csv."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (img, label) in enumerate(zip(digits.images, digits.target, strict=True)):
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
    ap.add_argument("--collapse", default="ema", choices=["ema", "sigreg"])
    ap.add_argument("--pool", default="mean", choices=["mean", "tokens"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    images = write_digits(args.out / "images", args.size)
    run = args.out / f"ijepa-{args.collapse}-{args.steps}"
    if not (run / "encoder.safetensors").exists():
        pretrain(PretrainConfig(data=images, run=run, method="ijepa", image_size=args.size,
                                channels=1, vit=ViTConfig(patch=4, width=64, depth=4, heads=4),
                                steps=args.steps, batch_size=args.batch_size,
                                collapse=args.collapse, seed=args.seed))
    r = probe_features(FeatureProbeConfig(encoder=run, data=images, labels=str(images /
                                          "labels.csv"), pool=args.pool, seed=args.seed))
    print(f"digits, linear probe accuracy on {r['protocol']['samples']['test']} held-out images "
          f"({args.pool} features):")
    for name, s in r["results"].items():
        print(f"  {name:<16} {100 * s['accuracy']:5.1f} %   ({s['features']} features, "
              f"ridge {s['ridge']:g})")


if __name__ == "__main__":
    main()
