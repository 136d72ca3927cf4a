"""SIGReg, the world model's interface, training and checkpoints."""

import json

import numpy as np
import pytest
import torch

from ami.config import ModelConfig
from ami.errors import AmiError
from ami.io import load_model, save_model
from ami.train import effective_rank, train
from ami.world_model import WorldModel, sigreg

from .conftest import tiny_train_config


def test_sigreg_small_for_gaussian_large_for_collapse():
    g = torch.Generator().manual_seed(0)
    gauss = torch.randn(1024, 32, generator=g)
    collapsed = torch.randn(1024, 1, generator=g) * torch.ones(1, 32) * 0.01
    low_rank = torch.randn(1024, 2, generator=g) @ torch.randn(2, 32, generator=g)
    s_gauss = sigreg(gauss, 256, torch.Generator().manual_seed(1)).item()
    # O(1) under the null (N = 1024 samples), O(N) for collapsed or low-rank embeddings
    assert s_gauss < 2.0
    assert sigreg(collapsed, 256, torch.Generator().manual_seed(1)).item() > 100 * s_gauss
    assert sigreg(low_rank, 256, torch.Generator().manual_seed(1)).item() > 50 * s_gauss


def test_sigreg_gradient_pushes_towards_gaussian():
    z = (torch.rand(512, 8) * 0.1).requires_grad_()
    opt = torch.optim.SGD([z], lr=0.5)
    before = sigreg(z.detach(), 64, torch.Generator().manual_seed(0)).item()
    for i in range(50):
        opt.zero_grad()
        sigreg(z, 64, torch.Generator().manual_seed(i)).backward()
        opt.step()
    assert sigreg(z.detach(), 64, torch.Generator().manual_seed(0)).item() < 0.2 * before


def test_effective_rank():
    assert effective_rank(torch.randn(2000, 16)) > 14
    assert effective_rank(torch.randn(2000, 1) * torch.ones(1, 16)) < 1.1


def test_world_model_shapes():
    cfg = ModelConfig(embed_dim=16, encoder_width=8, predictor_width=32, history=2)
    m = WorldModel(cfg).eval()
    obs = np.zeros((3, 4, 64, 64, 3), np.uint8)
    z = m.encode(obs)
    assert z.shape == (3, 4, 16)
    a = torch.zeros(3, 7, m.block_dim)
    assert m.predict(z[:, :2], a[:, 0]).shape == (3, 16)
    assert m.rollout(z[:, :2], a).shape == (3, 7, 16)


def test_training_loss_falls_and_run_dir_is_complete(tiny_data, tmp_path):
    run = train(tiny_train_config(tiny_data, tmp_path / "run", steps=120))
    for name in ("config.json", "model.safetensors", "metrics.jsonl", "train_summary.json"):
        assert (run / name).exists()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    first, last = rows[0], rows[-1]
    assert last["train/loss"] < 0.5 * first["train/loss"]
    assert last["train/effective_rank"] > 4  # no collapse
    assert {"train/pred", "train/sigreg", "train/lr"} <= set(last)


def test_training_is_deterministic(tiny_data, tmp_path):
    a = load_model(train(tiny_train_config(tiny_data, tmp_path / "a", steps=15)))
    b = load_model(train(tiny_train_config(tiny_data, tmp_path / "b", steps=15)))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def test_checkpoint_round_trip_and_strict_load(tmp_path):
    cfg = ModelConfig(embed_dim=8, encoder_width=8, predictor_width=32)
    m = WorldModel(cfg).eval()
    save_model(m, tmp_path)
    m2 = load_model(tmp_path)
    assert m2.cfg == cfg
    x = np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    assert torch.allclose(m.encode(x), m2.encode(x))
    # a checkpoint with a missing key is refused, naming the key
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    path = tmp_path / "model.safetensors"
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    tensors = load_file(path)
    del tensors["predictor.net.0.weight"]
    save_file(tensors, path, metadata=meta)
    with pytest.raises(AmiError, match="predictor.net.0.weight"):
        load_model(tmp_path)


def test_run_without_model_is_a_clear_error(tmp_path):
    with pytest.raises(AmiError, match="no model"):
        load_model(tmp_path)


@pytest.mark.parametrize("history", [1, 3])
def test_fast_rollout_equals_repeated_predict(history):
    torch.manual_seed(0)
    m = WorldModel(ModelConfig(embed_dim=8, encoder_width=8, predictor_width=32,
                               history=history)).eval()
    z = torch.randn(5, history, 8)
    a = torch.randn(5, 4, m.block_dim)
    expected, z_hist = [], z
    for k in range(4):
        z_next = m.predict(z_hist, a[:, k])
        expected.append(z_next)
        z_hist = torch.cat([z_hist[:, 1:], z_next[:, None]], dim=1)
    assert torch.allclose(m.rollout(z, a), torch.stack(expected, 1), atol=1e-5)
    with torch.inference_mode():   # the planning path: in place, into one buffer
        assert torch.allclose(m.rollout(z, a), torch.stack(expected, 1), atol=1e-5)


@pytest.mark.parametrize("activation", ["gelu", "relu", "silu"])
def test_planning_rollout_from_one_shared_history(activation):
    """Candidates expanded from one history (as planners pass them) predict what the
    per-candidate forward does, with and without gradients."""
    torch.manual_seed(0)
    m = WorldModel(ModelConfig(embed_dim=8, encoder_width=8, predictor_width=32,
                               predictor_activation=activation)).eval()
    z0 = torch.randn(1, 1, 8).expand(6, 1, 8)
    a = torch.randn(6, 3, m.block_dim)
    expected, z_hist = [], z0.contiguous()
    for k in range(3):
        z_hist = m.predict(z_hist, a[:, k])[:, None]
        expected.append(z_hist[:, 0])
    expected = torch.stack(expected, 1)
    with torch.no_grad():
        fast = m.rollout(z0, a)
    assert torch.allclose(fast, expected, atol=1e-5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):   # functional path
        assert torch.allclose(m.rollout(z0, a).float(), expected, atol=0.1)
    a.requires_grad_(True)
    m.rollout(z0, a).sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0


def test_config_saved_before_a_default_changed_keeps_its_old_meaning():
    """A checkpoint written before `predictor_activation` existed was GELU: it loads as GELU,
    not as today's default."""
    from dataclasses import asdict

    from ami.config import from_dict
    saved = asdict(ModelConfig())
    del saved["predictor_activation"]
    assert from_dict(ModelConfig, saved).predictor_activation == "gelu"
    assert ModelConfig().predictor_activation == "relu"
    assert from_dict(ModelConfig, asdict(ModelConfig())).predictor_activation == "relu"
    silu = {**asdict(ModelConfig()), "predictor_activation": "silu"}   # a session-2 checkpoint
    assert from_dict(ModelConfig, silu).predictor_activation == "silu"
    del saved["projector_bias"]   # older CNN encoders had a bias before the BatchNorm
    assert "encoder.projector.0.bias" in WorldModel(from_dict(ModelConfig, saved)).state_dict()
    assert "encoder.projector.0.bias" not in WorldModel(ModelConfig()).state_dict()


def test_planning_rollout_follows_the_weights_it_caches():
    """The planning path caches transposed weights; an optimiser step (in place) and a
    load_state_dict must both reach it, or a model planned with, trained, then planned with
    again (finetune) would plan with stale weights."""
    torch.manual_seed(0)
    m = WorldModel(ModelConfig(embed_dim=8, encoder_width=8, predictor_width=32)).eval()
    z0, a = torch.randn(1, 1, 8).expand(4, 1, 8), torch.randn(4, 3, m.block_dim)

    def both_paths():
        with torch.no_grad():
            fast = m.rollout(z0, a)
        return fast, m.rollout(z0, a).detach()

    before, _ = both_paths()
    opt = torch.optim.SGD(m.predictor.parameters(), lr=0.5)
    m.rollout(z0, a).pow(2).sum().backward()
    opt.step()
    fast, functional = both_paths()
    assert not torch.allclose(fast, before, atol=1e-3)
    assert torch.allclose(fast, functional, atol=1e-5)
    m.load_state_dict(WorldModel(m.cfg).state_dict())
    fast, functional = both_paths()
    assert torch.allclose(fast, functional, atol=1e-5)
