"""`ami probe` and `ami surprise` end to end with tiny sizes, on both worlds."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from ami.cli import main
from ami.config import TrainConfig
from ami.data import EpisodeWriter
from ami.presets import PRESETS


@pytest.fixture(scope="module")
def ballistic_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ballistic")
    data, run = tmp / "b.h5", tmp / "run"
    assert main(["collect", "--world", "ballistic", "--out", str(data), "--episodes", "4",
                 "--steps", "40"]) == 0
    assert main(["train", "--data", str(data), "--run", str(run), "--steps", "3",
                 "--batch-size", "8", "--model.encoder-width", "4",
                 "--model.predictor-width", "16", "--no-progress"]) == 0
    return run


PRESET = PRESETS["ballistic"][TrainConfig]["model"]


def test_train_takes_the_world_preset_from_the_data(ballistic_run):
    model = json.loads((ballistic_run / "config.json").read_text())["train"]["model"]
    assert (model["history"], model["frameskip"]) == (PRESET["history"], PRESET["frameskip"])
    assert (model["history"], model["frameskip"]) != (1, 5)    # not Two-Rooms' defaults
    assert model["encoder_width"] == 4       # and the command line still wins


def test_probe_smoke(ballistic_run):
    assert main(["probe", "--run", str(ballistic_run), "--mlp-steps", "5", "--mlp-width", "8",
                 "--no-progress"]) == 0
    result = json.loads((ballistic_run / "probe.json").read_text())
    assert result["variables"] == ["ball0_x", "ball0_y", "ball0_vx", "ball0_vy"]
    protocol = result["protocol"]
    h, fs = PRESET["history"], PRESET["frameskip"]
    assert protocol["episodes"] == {"test": 1, "train": 3} and protocol["frames"] == h
    assert protocol["samples"]["test"] == 41 - (h - 1) * fs   # every window of the held-out one
    for kind in ("linear", "mlp"):
        for name in result["variables"]:
            assert -1 <= result[kind][name]["r"] <= 1 and result[kind][name]["r2"] <= 1


def test_surprise_smoke_ballistic(ballistic_run):
    assert main(["surprise", "--run", str(ballistic_run), "--pairs", "2", "--steps", "30",
                 "--no-progress"]) == 0
    result = json.loads((ballistic_run / "surprise.json").read_text())
    assert list(result["categories"]) == ["teleport", "vanish", "pass_through", "gravity",
                                          "colour"]
    for name, c in result["categories"].items():
        assert c["pairs"] == 2 and len(c["impossible"]["max"]) == 2
        assert 0 <= c["auroc_max"] <= 1 and 0 <= c["relative_accuracy_mean"] <= 1
        assert c["control"] == (name == "colour")
    assert result["protocol"]["world_options"]["config"]["occluder_width"] > 0
    assert Image.open(ballistic_run / "surprise.png").size == (640, 5 * 200)


def test_surprise_smoke_two_rooms(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    assert main(["surprise", "--run", str(run), "--pairs", "3", "--steps", "30", "--no-plot",
                 "--no-progress"]) == 0
    result = json.loads((run / "surprise.json").read_text())
    assert list(result["categories"]) == ["teleport", "colour"]
    assert not (run / "surprise.png").exists()


def test_bad_input_is_one_line(ballistic_run, tmp_path, capsys):
    assert main(["surprise", "--run", str(ballistic_run), "--pairs", "1"]) == 2
    assert main(["surprise", "--run", str(ballistic_run), "--categories", "levitate"]) == 2
    no_states = tmp_path / "no_states.h5"
    with EpisodeWriter(no_states, "ballistic", (64, 64, 3), 2) as w:
        for _ in range(2):
            w.append(np.zeros((11, 64, 64, 3), np.uint8), np.zeros((10, 2), np.float32))
    assert main(["probe", "--run", str(ballistic_run), "--data", str(no_states)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("ami: error:") for line in err)
    assert "--pairs must be >= 2" in err[0] and "levitate" in err[1] and "no states" in err[2]
