"""Probes: exact on a linear signal, honest scores, windows inside episodes."""

import numpy as np
import pytest

from ami.data import EpisodeDataset, EpisodeWriter
from ami.evaluate.probes import MLPProbe, RidgeProbe, context_samples, pearson_r, r_squared


def test_linear_probe_recovers_a_linear_signal_exactly():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(12, 3)), rng.normal(size=3)
    x_train, x_test = rng.normal(size=(500, 12)) * 5 + 2, rng.normal(size=(200, 12)) * 5 + 2
    probe = RidgeProbe(x_train, x_train @ w + b, ridge=0.0)
    pred, y = probe.predict(x_test), x_test @ w + b
    assert np.allclose(pred, y, atol=1e-9)
    assert np.allclose(pearson_r(pred, y), 1.0) and np.allclose(r_squared(pred, y), 1.0)


def test_scores_on_hand_made_predictions():
    y = np.array([[1.0], [2.0], [3.0], [4.0]])
    assert r_squared(y, y)[0] == 1.0
    assert r_squared(np.full_like(y, 2.5), y)[0] == 0.0          # the mean scores zero
    assert r_squared(2 * y, y)[0] == pytest.approx(1 - 30 / 5)    # off by a factor: negative
    assert pearson_r(2 * y + 7, y)[0] == pytest.approx(1.0)       # r ignores scale and offset
    assert pearson_r(-y, y)[0] == pytest.approx(-1.0)


def test_mlp_probe_learns_a_nonlinear_signal_a_linear_one_cannot():
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(600, 1))
    y = x**2                                   # uncorrelated with x: no line fits it
    mlp = MLPProbe(x[:500], y[:500], width=32, steps=150, seed=0, lr=1e-2)
    lin = RidgeProbe(x[:500], y[:500])
    assert r_squared(mlp.predict(x[500:]), y[500:])[0] > 0.95
    assert r_squared(lin.predict(x[500:]), y[500:])[0] < 0.05


def test_context_windows_stay_inside_their_episode(tmp_path):
    path = tmp_path / "d.h5"
    with EpisodeWriter(path, "ballistic", (4, 4, 1), 2) as w:
        for t in (10, 3, 12):
            w.append(np.zeros((t + 1, 4, 4, 1), np.uint8), np.zeros((t, 2), np.float32),
                     np.zeros((t + 1, 4), np.float32))
    d = EpisodeDataset.load(path)
    windows = context_samples(d, np.array([0, 1, 2]), frames=3, frameskip=2)
    assert windows.shape == (7 + 0 + 9, 3)                   # episode 1 is too short
    assert np.all(np.diff(windows, axis=1) == 2)
    episode = np.searchsorted(d.starts, windows, side="right") - 1
    assert np.all(episode == episode[:, :1])
    assert windows[0].tolist() == [0, 2, 4] and windows[-1].tolist() == [23, 25, 27]
