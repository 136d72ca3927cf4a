"""Shared fixtures: small data made on the fly, so tests never download anything."""

from __future__ import annotations

import pytest
import torch

from ami.config import CollectConfig, ModelConfig, PretrainConfig, TrainConfig
from ami.data.collect import collect

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "two_rooms.h5"
    return collect(CollectConfig(out=path, episodes=12, steps=40, seed=3), progress=False)


def tiny_train_config(data, run, steps=60) -> TrainConfig:
    return TrainConfig(
        data=data, run=run, steps=steps, batch_size=16, warmup=5, log_every=10, progress=False,
        model=ModelConfig(embed_dim=16, encoder_width=8, predictor_width=64),
    )


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory):
    from ami.train import train
    return train(tiny_train_config(tiny_data, tmp_path_factory.mktemp("runs") / "tiny"))


def train_killed_after(cfg: TrainConfig, step: int, monkeypatch) -> None:
    """Run `train(cfg)` as if killed right after its checkpoint at `step` was written (the
    step's learning rate is asked for only after that checkpoint)."""
    killed_after("ami.train", "train", cfg, step, monkeypatch)


def pretrain_killed_after(cfg: PretrainConfig, step: int, monkeypatch) -> None:
    """Run `pretrain(cfg)` as if killed at `step`, after drawing its clips and masks (a
    checkpoint at `step` was written before)."""
    killed_after("ami.perception.pretrain", "pretrain", cfg, step, monkeypatch)


def killed_after(module_name: str, entry: str, cfg, step: int, monkeypatch) -> None:
    """Call `module_name.entry(cfg)` and stop it with a KeyboardInterrupt where it asks for the
    learning rate of `step` (the module's `lr_at`), as a kill would."""
    import importlib
    module = importlib.import_module(module_name)  # `ami.train` is also the function
    real_lr_at = module.lr_at

    def stop(s, c):
        if s == step:
            raise KeyboardInterrupt
        return real_lr_at(s, c)
    monkeypatch.setattr(module, "lr_at", stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            getattr(module, entry)(cfg)
    finally:
        monkeypatch.undo()
