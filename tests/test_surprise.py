"""Surprise: its scores on hand-made numbers, and the frames and actions it predicts from."""

import numpy as np
import pytest
import torch

from ami.config import ModelConfig
from ami.evaluate.surprise import auroc, clip_scores, frame_surprise, relative_accuracy
from ami.world_model import WorldModel


def test_auroc_on_hand_made_scores():
    assert auroc([1, 2, 3], [4, 5, 6]) == 1.0
    assert auroc([4, 5, 6], [1, 2, 3]) == 0.0
    assert auroc([1, 1], [1, 1]) == 0.5
    # impossible 0.9 beats all 4 possible, 0.5 beats 3, 0.2 beats 1: 8 of 12
    assert auroc([0.1, 0.4, 0.35, 0.8], [0.9, 0.5, 0.2]) == pytest.approx(8 / 12)
    # a tie counts half: 2>1, 2=2, 3>1, 3>2 → 3.5 of 4
    assert auroc([1, 2], [2, 3]) == pytest.approx(3.5 / 4)


def test_relative_accuracy_on_hand_made_pairs():
    assert relative_accuracy([1, 3, 2], [2, 1, 2]) == pytest.approx((1 + 0 + 0.5) / 3)
    assert relative_accuracy([0, 0], [1, 1]) == 1.0
    # pairs matter, not the pool: every impossible clip beats its own twin, not all others
    possible, impossible = [1, 10, 100], [2, 11, 101]
    assert relative_accuracy(possible, impossible) == 1.0
    assert auroc(possible, impossible) == pytest.approx(6 / 9)


def test_clip_scores_skip_frames_without_context():
    s = np.array([[np.nan, np.nan, 1.0, 3.0], [np.nan, np.nan, 2.0, 2.0]])
    scores = clip_scores(s)
    assert scores["max"].tolist() == [3.0, 2.0] and scores["mean"].tolist() == [2.0, 2.0]


@pytest.mark.parametrize("history, frameskip, horizon", [(1, 1, 1), (3, 2, 1), (2, 3, 2)])
def test_surprise_predicts_each_frame_from_the_window_before_it(history, frameskip, horizon):
    torch.manual_seed(0)
    cfg = ModelConfig(embed_dim=8, encoder_width=4, predictor_width=16, history=history,
                      frameskip=frameskip, action_dim=2, action_scale=2.0)
    model = WorldModel(cfg).eval()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (2, 21, 64, 64, 3), dtype=np.uint8)
    actions = rng.normal(size=(2, 20, 2)).astype(np.float32)
    got = frame_surprise(model, frames, actions, horizon)
    first = (history - 1 + horizon) * frameskip
    assert got.shape == (2, 21)
    assert np.isnan(got[:, :first]).all() and np.isfinite(got[:, first:]).all()
    with torch.no_grad():
        z = model.encode(frames)
        for b, t in [(0, first), (1, first + 3), (1, 20)]:
            end = t - horizon * frameskip            # the window's last frame
            ctx = z[b, [end - frameskip * k for k in range(history - 1, -1, -1)]][None]
            blocks = torch.as_tensor(actions[b, end:t]).reshape(1, horizon, -1)
            z_hat = model.rollout(ctx, blocks)[0, -1]
            want = float((z_hat - z[b, t]).pow(2).mean())
            assert got[b, t] == pytest.approx(want, rel=1e-4)
    # the same clip scores the same alone and in a batch
    alone = frame_surprise(model, frames[1:], actions[1:], horizon)
    assert np.allclose(alone, got[1:], equal_nan=True, rtol=1e-4)


def test_a_clip_too_short_for_the_window_has_no_surprise():
    model = WorldModel(ModelConfig(embed_dim=8, encoder_width=4, predictor_width=16, history=3,
                                   frameskip=2)).eval()
    frames, actions = np.zeros((1, 5, 64, 64, 3), np.uint8), np.zeros((1, 4, 2), np.float32)
    s = frame_surprise(model, frames, actions)
    assert np.isnan(s).all()
