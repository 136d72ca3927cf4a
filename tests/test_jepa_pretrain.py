"""I-JEPA / V-JEPA pretraining: masks, EMA, the objective, the data sources, the probes, the
two-stage world model, and resuming a killed run, on tiny data made here."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from ami.cli import main
from ami.config import FeatureProbeConfig, ModelConfig, PretrainConfig, ViTConfig
from ami.data.media import ImageFolder, open_frames, sample_clips
from ami.errors import AmiError
from ami.evaluate.features import (
    LogisticProbe,
    RidgeProbe,
    probe_features,
    result_path,
    vit_features,
)
from ami.io import CHECKPOINT_FILE, load_encoder, load_model, read_checkpoint
from ami.perception.jepa import ema_update, momentum_at
from ami.perception.masks import (
    batch_indices,
    block_sizes,
    multiblock_mask,
    sample_block,
    tube_mask,
)
from ami.perception.pretrain import pretrain
from ami.perception.vit import ViT, ViTEncoder
from ami.train import train
from ami.world_model.model import WorldModel

from .conftest import pretrain_killed_after, tiny_train_config

TINY_VIT = ViTConfig(patch=4, width=16, depth=1, heads=2)


# ------------------------------------------------------------------------------------------ masks

def _box(mask_2d: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(mask_2d.any(1)), np.flatnonzero(mask_2d.any(0))
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert mask_2d.sum() == h * w                        # one solid rectangle
    return h, w


def test_blocks_respect_their_scale_and_aspect_ratio():
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = _box(sample_block(rng, 14, 14, (0.15, 0.2), (0.75, 1.5)))
        assert 0.15 <= h * w / 196 <= 0.2
        assert 0.75 <= h / w <= 1.5
    # a grid too coarse for the range gets the nearest sizes, not an error
    assert block_sizes(2, 2, (0.15, 0.2), (0.75, 1.5)) == ((1, 1),)


def test_multiblock_context_never_overlaps_the_targets_unless_told():
    rng = np.random.default_rng(1)
    for _ in range(100):
        context, targets = multiblock_mask(rng, 14, 14, targets=4)
        assert len(targets) == 4
        for t in targets:
            h, w = _box(np.isin(np.arange(196), t).reshape(14, 14))
            assert 0.15 <= h * w / 196 <= 0.2
            assert not np.intersect1d(context, t).size
        assert len(context) >= 4
    # the context block is 85-100 % of the image before the targets are removed
    overlap = [multiblock_mask(rng, 14, 14, allow_overlap=True) for _ in range(50)]
    assert all(0.85 <= len(c) / 196 <= 1.0 for c, _ in overlap)
    assert any(np.intersect1d(c, np.concatenate(t)).size for c, t in overlap)


def test_tube_masks_run_through_every_frame_and_leave_the_rest_as_context():
    rng = np.random.default_rng(2)
    for blocks, scale in ((8, 0.15), (2, 0.7)):
        context, target = tube_mask(rng, 3, 8, 8, blocks, (scale, scale))
        assert not np.intersect1d(context, target).size
        assert np.union1d(context, target).tolist() == list(range(3 * 8 * 8))
        per_frame = [set(target[(target >= 64 * t) & (target < 64 * (t + 1))] - 64 * t)
                     for t in range(3)]
        assert per_frame[0] == per_frame[1] == per_frame[2] and per_frame[0]
        # the union covers at least the largest block's scale, at most all the blocks'
        share = len(per_frame[0]) / 64
        sizes = block_sizes(8, 8, (scale, scale), (0.75, 1.5))
        assert min(h * w for h, w in sizes) / 64 <= share <= blocks * max(
            h * w for h, w in sizes) / 64


def test_batched_masks_keep_one_size_and_stay_disjoint():
    rng = np.random.default_rng(3)
    pairs = [multiblock_mask(rng, 8, 8, targets=2, target_scale=(0.1, 0.3)) for _ in range(16)]
    context = batch_indices([c for c, _ in pairs], rng)
    target = batch_indices([np.unique(np.concatenate(t)) for _, t in pairs], rng)
    assert context.shape[0] == target.shape[0] == 16
    for c, t, (c_all, t_all) in zip(context, target, pairs, strict=True):
        assert set(c) <= set(c_all) and set(t) <= set(np.concatenate(t_all))
        assert not set(c) & set(t)
        assert np.all(np.diff(c) > 0)


# -------------------------------------------------------------------------------------------- EMA

def test_ema_update_is_a_convex_step_towards_the_online_weights():
    online, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in target.parameters()]
    ema_update(target, online, 0.9)
    for t, b, o in zip(target.parameters(), before, online.parameters(), strict=True):
        assert torch.allclose(t, 0.9 * b + 0.1 * o, atol=1e-7)
    ema_update(target, online, 0.0)                       # momentum 0 copies
    assert all(torch.equal(t, o) for t, o in zip(target.parameters(), online.parameters(),
                                                  strict=True))
    assert momentum_at(0, 100, 0.996, 1.0) == 0.996 and momentum_at(99, 100, 0.996, 1.0) == 1.0


# ------------------------------------------------------------------------------ data and training

@pytest.fixture(scope="module")
def squares(tmp_path_factory):
    """24 images of a bright square at one of two heights (the label), anywhere along x."""
    folder = tmp_path_factory.mktemp("squares")
    rng = np.random.default_rng(0)
    rows = [("file", "label")]
    for i in range(24):
        label = i % 2
        img = np.zeros((16, 16, 3), np.uint8)
        x, y = rng.integers(0, 12), 2 + 8 * label
        img[y:y + 4, x:x + 4] = 255
        Image.fromarray(img).save(folder / f"{i:02d}.png")
        rows.append((f"{i:02d}.png", "top" if label == 0 else "bottom"))
    with open(folder / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return folder


def _losses(run) -> list[float]:
    return [json.loads(line)["pretrain/pred"] for line in open(run / "metrics.jsonl")]


@pytest.mark.parametrize("collapse", ["ema", "sigreg"])
def test_ijepa_loss_falls_on_tiny_images(squares, tmp_path, collapse):
    run = pretrain(PretrainConfig(data=squares, run=tmp_path / collapse, image_size=16,
                                  vit=TINY_VIT, predictor_width=8, steps=40, batch_size=8,
                                  warmup=5, lr=3e-3, log_every=1, collapse=collapse,
                                  sigreg_projections=32, progress=False))
    losses = _losses(run)
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    vit, info = load_encoder(run)
    assert info["method"] == "ijepa" and info["vit"].tubelet == 1
    with pytest.raises(AmiError, match="already holds"):
        pretrain(PretrainConfig(data=squares, run=run, image_size=16, vit=TINY_VIT, steps=1,
                                progress=False))


def test_vjepa_loss_falls_on_tiny_episodes(tiny_data, tmp_path):
    run = pretrain(PretrainConfig(data=tiny_data, run=tmp_path / "v", method="vjepa",
                                  vit=ViTConfig(patch=16, width=16, depth=1, heads=2),
                                  predictor_width=8, frames=4, steps=30, batch_size=8, warmup=5,
                                  lr=3e-3, log_every=1, progress=False))
    losses = _losses(run)
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    vit, info = load_encoder(run)
    assert info["vit"].tubelet == 2 and info["frames"] == 4
    assert vit(torch.rand(2, 3, 4, 64, 64)).shape == (2, 2 * 4 * 4, 16)


def test_vit_encodes_subsets_and_serves_the_world_model():
    vit = ViT(3, 16, patch=4, width=16, depth=1, heads=2, tubelet=2)
    x = torch.rand(2, 3, 3, 16, 16)                     # 3 frames: the last one fills a tubelet
    assert vit(x).shape == (2, 2 * 16, 16)
    keep = torch.tensor([[0, 5, 31], [1, 2, 3]])
    assert vit(x, keep=keep).shape == (2, 3, 16)
    deep = ViT(1, 8, patch=4, width=8, depth=3, heads=2)
    clips = np.random.default_rng(0).integers(0, 256, (5, 1, 8, 8, 1), np.uint8)
    outs = deep.block_outputs(torch.rand(2, 1, 1, 8, 8), last=3)
    assert len(outs) == 3 and all(o.shape == (2, 4, 8) for o in outs)
    # the last blocks side by side: the final block's features come last, unchanged
    two = vit_features(deep, clips, "mean", blocks=2)
    assert two.shape == (5, 16)
    assert np.allclose(two[:, 8:], vit_features(deep, clips, "mean"))
    assert vit_features(deep, clips, "tokens", blocks=2).shape == (5, 2 * 4 * 8)
    enc = ViTEncoder(3, 16, embed_dim=8, patch=4, width=16, depth=1, heads=2)
    assert enc(torch.rand(4, 3, 16, 16)).shape == (4, 8)
    model = WorldModel(ModelConfig(encoder="vit", vit=ViTConfig(patch=16, width=16, depth=1,
                                                                heads=2), embed_dim=8))
    assert model.encode(np.zeros((5, 64, 64, 3), np.uint8)).shape == (5, 8)


def test_image_folder_streams_and_resizes(squares):
    source = open_frames(squares, image_size=8, channels=1)
    assert isinstance(source, ImageFolder) and len(source) == 24
    clips = sample_clips(source, np.random.default_rng(0), 5, frames=2)
    assert clips.shape == (5, 2, 8, 8, 1) and clips.dtype == np.uint8
    assert np.array_equal(clips[:, 0], clips[:, 1])      # an image is a still clip


def test_video_folder_decodes_the_asked_frames(tmp_path):
    av = pytest.importorskip("av")
    folder = tmp_path / "videos"
    folder.mkdir()
    with av.open(str(folder / "ramp.mp4"), "w") as c:
        stream = c.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "4"}                     # keyframes every 4 frames: seeks land
        for k in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 10 * k, np.uint8), "rgb24")
            for packet in stream.encode(frame):
                c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)
    source = open_frames(folder, image_size=16)
    assert source.kind == "videos" and source.lengths.tolist() == [20]
    for start in (0, 5, 13):
        clip = source.clip(0, start, frames=3, stride=2)
        assert clip.shape == (3, 16, 16, 3)
        brightness = clip.reshape(3, -1).mean(1)
        assert np.allclose(brightness, 10 * (start + 2 * np.arange(3)), atol=3)


# ----------------------------------------------------------------------------------------- probes

def test_probes_classify_and_regress_exactly_on_clean_signals():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 6))
    x = x[(np.abs(x[:, 0] + x[:, 1]) > 0.3) & (np.abs(x[:, 2]) > 0.3)][:300]   # a clear margin
    labels = (x[:, 0] + x[:, 1] > 0).astype(int) + 2 * (x[:, 2] > 0)
    probe = LogisticProbe(x[:200], labels[:200], 4, ridge=1e-4)
    assert (probe.predict(x[200:]) == labels[200:]).mean() >= 0.98
    wide = rng.normal(size=(50, 400))                    # more features than samples: dual form
    y = wide @ rng.normal(size=(400, 2))
    r = RidgeProbe(wide, y)
    assert np.allclose(r.predict(wide, 1e-9), y, atol=1e-4)


def test_probe_features_reports_all_three_feature_sets(squares, tmp_path):
    run = pretrain(PretrainConfig(data=squares, run=tmp_path / "p", image_size=16,
                                  vit=TINY_VIT, predictor_width=8, steps=3, batch_size=4,
                                  warmup=1, progress=False))
    r = probe_features(FeatureProbeConfig(encoder=run, data=squares,
                                          labels=str(squares / "labels.csv"), ridge=(1e-3,),
                                          progress=False))
    assert r["task"] == "classify" and r["classes"] == ["bottom", "top"]
    assert set(r["results"]) == {"pretrained", "random_weights", "pixels"}
    assert r["protocol"]["samples"] == {"train": 18, "test": 6}
    assert (run / "feature_probe-squares0-mean.json").exists()
    assert json.loads(result_path(FeatureProbeConfig(encoder=run, data=squares)).read_text()
                      )["results"] == r["results"]
    with pytest.raises(AmiError, match="CSV file"):
        probe_features(FeatureProbeConfig(encoder=run, data=squares, labels="states"))


def test_a_validation_probe_keeps_the_test_probe_result(squares, tmp_path):
    run = pretrain(PretrainConfig(data=squares, run=tmp_path / "p", image_size=16,
                                  vit=TINY_VIT, predictor_width=8, steps=2, batch_size=4,
                                  warmup=1, progress=False))
    validation = tmp_path / "validation"  # images carved from the probes' training set
    validation.mkdir()
    rows = list(csv.reader((squares / "labels.csv").read_text().splitlines()))[:17]
    for name, _ in rows[1:]:
        (validation / name).write_bytes((squares / name).read_bytes())
    with open(validation / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    cfg = FeatureProbeConfig(encoder=run, data=squares, labels=str(squares / "labels.csv"),
                             ridge=(1e-3,), baselines=False, progress=False)
    test = probe_features(cfg)
    probe_features(FeatureProbeConfig(encoder=run, data=validation, ridge=(1e-3,),
                                      labels=str(validation / "labels.csv"), baselines=False,
                                      progress=False))
    written = {json.loads(p.read_text())["protocol"]["data"]: json.loads(p.read_text())
               for p in run.glob("feature_probe*.json")}
    assert set(written) == {str(squares), str(validation)}
    assert written[str(squares)]["results"] == test["results"]


def test_two_stage_world_model_keeps_the_pretrained_backbone(tiny_data, tmp_path):
    encoder_run = pretrain(PretrainConfig(data=tiny_data, run=tmp_path / "v", method="vjepa",
                                          vit=ViTConfig(patch=16, width=16, depth=1, heads=2),
                                          predictor_width=8, frames=2, steps=2, batch_size=4,
                                          warmup=1, progress=False))
    cfg = tiny_train_config(tiny_data, tmp_path / "two_stage", steps=4)
    cfg.encoder_from, cfg.freeze_encoder = encoder_run, True
    run = train(cfg)
    model = load_model(run)
    assert model.cfg.encoder == "vit" and model.cfg.vit.tubelet == 2
    pretrained, _ = load_encoder(encoder_run)
    for k, v in pretrained.state_dict().items():
        assert torch.equal(model.encoder.backbone.state_dict()[k], v), k
    # without --freeze-encoder the same start is fine-tuned end to end
    cfg.run, cfg.freeze_encoder = tmp_path / "fine_tuned", False
    tuned = load_model(train(cfg))
    assert not all(torch.equal(tuned.encoder.backbone.state_dict()[k], v)
                   for k, v in pretrained.state_dict().items())


# ----------------------------------------------------------------- a killed pretraining resumes

def _tiny_pretrain(squares, run, **kw) -> PretrainConfig:
    return PretrainConfig(**{**dict(data=squares, run=run, image_size=16, vit=TINY_VIT,
                                    predictor_width=8, steps=10, batch_size=4, warmup=2,
                                    log_every=1, checkpoint_every=4, device="cpu",
                                    sigreg_projections=16, progress=False), **kw})


def _rows(run) -> list[dict]:
    """metrics.jsonl without its wall-clock times."""
    return [{k: v for k, v in json.loads(line).items() if k != "time"}
            for line in open(run / "metrics.jsonl")]


@pytest.mark.parametrize("collapse", ["ema", "sigreg"])
def test_pretraining_killed_and_resumed_ends_bit_identical(squares, tmp_path, monkeypatch,
                                                           collapse):
    whole = pretrain(_tiny_pretrain(squares, tmp_path / "whole", collapse=collapse))
    run = tmp_path / "killed"
    # killed in step 6: the checkpoint holds step 4, metrics.jsonl already has steps 4 and 5
    pretrain_killed_after(_tiny_pretrain(squares, run, collapse=collapse), 6, monkeypatch)
    assert read_checkpoint(run).step == 4 and not (run / "encoder.safetensors").exists()
    assert [r["step"] for r in _rows(run)] == [0, 1, 2, 3, 4, 5]

    assert main(["pretrain", "--resume", str(run), "--no-progress"]) == 0
    assert json.loads((run / "pretrain_summary.json").read_text())["resumed_at"] == [4]
    # encoders, predictor, AdamW moments and RNG states: every tensor of the final checkpoint
    a, b = load_file(whole / CHECKPOINT_FILE), load_file(run / CHECKPOINT_FILE)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    a, b = load_file(whole / "encoder.safetensors"), load_file(run / "encoder.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the killed run's rows up to its checkpoint, then the resumed run's, each step once
    assert _rows(run) == _rows(whole) and len(_rows(run)) == 10
    # a finished run is left as it is
    before = (run / "encoder.safetensors").read_bytes()
    assert main(["pretrain", "--resume", str(run), "--no-progress"]) == 0
    assert (run / "encoder.safetensors").read_bytes() == before


@pytest.fixture(scope="module")
def pretrained(squares, tmp_path_factory):
    """A finished tiny pretraining run, with non-default tuple options (they come back from
    JSON as lists)."""
    run = tmp_path_factory.mktemp("pretrained") / "run"
    return pretrain(_tiny_pretrain(squares, run, steps=2, target_scale=(0.1, 0.2)))


@pytest.mark.parametrize("args, message", [
    (["--lr", "0.5"], "options differ: lr=0.5 (the run has 0.001)"),
    (["--vit.width", "32"], "options differ: vit.width=32 (the run has 16)"),
    (["--run", "elsewhere"], "name different runs"),
    (["--checkpoint-every", "0"], "--checkpoint-every must be >= 1, got 0"),
])
def test_pretrain_resume_refuses_options_that_change_the_run(pretrained, tmp_path, capsys,
                                                             args, message):
    run = shutil.copytree(pretrained, tmp_path / "run")
    (run / "encoder.safetensors").unlink()  # not finished: resuming would run
    before = (run / CHECKPOINT_FILE).read_bytes()
    assert main(["pretrain", "--resume", str(run), "--no-progress", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert (run / CHECKPOINT_FILE).read_bytes() == before


def test_pretrain_resume_takes_the_runs_own_settings_given_again(pretrained, tmp_path):
    run = shutil.copytree(pretrained, tmp_path / "run")
    (run / "encoder.safetensors").unlink()
    assert main(["pretrain", "--resume", str(run), "--no-progress", "--target-scale", "0.1", "0.2",
                 "--lr", "0.001", "--vit.width", "16", "--steps", "2"]) == 0
    assert load_file(run / "encoder.safetensors").keys() == \
        load_file(pretrained / "encoder.safetensors").keys()


def test_resume_with_the_other_command_names_the_right_one(pretrained, tiny_data, tmp_path,
                                                          capsys):
    world_model = train(tiny_train_config(tiny_data, tmp_path / "world_model", steps=2))
    assert main(["pretrain", "--resume", str(world_model), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"ami: error: {world_model} is a world-model training run; continue it with "
        f"`ami train --resume {world_model}`"]
    assert main(["train", "--resume", str(pretrained), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"ami: error: {pretrained} is a pretraining run; continue it with "
        f"`ami pretrain --resume {pretrained}`"]


def test_a_new_pretraining_does_not_overwrite_a_killed_one(squares, tmp_path, monkeypatch,
                                                           capsys):
    run = tmp_path / "killed"
    pretrain_killed_after(_tiny_pretrain(squares, run), 5, monkeypatch)
    before = (run / CHECKPOINT_FILE).read_bytes()
    assert main(["pretrain", "--data", str(squares), "--run", str(run), "--image-size", "16",
                 "--no-progress"]) == 2
    assert f"continue it with `ami pretrain --resume {run}`" in capsys.readouterr().err
    assert (run / CHECKPOINT_FILE).read_bytes() == before
