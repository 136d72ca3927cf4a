"""Accounting (FLOPs, CPU time, energy, CO2) checked against independent figures, and the
generative baseline trained, loaded and planned with on tiny data."""

import json
import time

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ami.baselines.generative import GenerativeWorldModel, generative_loss, pixels
from ami.config import CostConfig, EvalConfig, ModelConfig, PlanConfig
from ami.energy import (
    GRID_INTENSITY,
    WATTS_PER_CORE,
    Accounting,
    FlopTally,
    co2_grams,
    count_flops,
    estimate_kwh,
)
from ami.errors import AmiError
from ami.evaluate.planning import evaluate
from ami.io import load_model, read_safetensors
from ami.train import train
from tests.conftest import tiny_train_config


def test_flops_of_known_layers_match_hand_counts():
    # a linear layer: 2·B·in·out FLOPs forward; backward computes the input's and the
    # weight's gradients, two more products of the same size
    layer, x = nn.Linear(64, 32), torch.randn(10, 64, requires_grad=True)
    out, fwd = count_flops(lambda: layer(x))
    assert fwd == 2 * 10 * 64 * 32
    tally = FlopTally()
    with tally.count():
        out.sum().backward()
    assert tally.total == 2 * (2 * 10 * 64 * 32)
    # a convolution: 2 · output pixels · C_out · C_in · k² (stride 2, 64 → 32 per side)
    conv = nn.Conv2d(3, 16, kernel_size=4, stride=2, padding=1)
    _, conv_flops = count_flops(lambda: conv(torch.randn(2, 3, 64, 64)))
    assert conv_flops == 2 * (2 * 32 * 32) * 16 * 3 * 4 * 4
    # nothing is counted outside a count() block, or in a block that is switched off
    with tally.count(on=False):
        layer(x)
    assert tally.total == 2 * (2 * 10 * 64 * 32)


def test_training_step_flops_match_a_hand_count(tiny_run):
    # tiny_train_config: 16 windows of 4 frames (history 1, future 3), 64x64x3 images, encoder
    # width 8 (convs 3→8→16→32→32, 4x4 kernels, stride 2), projector 512→256→16, predictor
    # (16 + 5·2)→64→64→16, SIGReg on 256 directions. Multiply-adds per image and prediction:
    images, predictions = 16 * 4, 16 * 3
    convs = [32 * 32 * 8 * 3 * 16, 16 * 16 * 16 * 8 * 16, 8 * 8 * 32 * 16 * 16,
             4 * 4 * 32 * 32 * 16]
    encoder = sum(convs) + 512 * 256 + 256 * 16
    predictor = 26 * 64 + 64 * 64 + 64 * 16
    sigreg = images * 16 * 256
    forward = 2 * (images * encoder + predictions * predictor + sigreg)
    # backward: two products per forward product (input and weight gradients), except that the
    # first convolution needs no input gradient (pixels) and SIGReg's directions no gradient
    backward = 2 * forward - 2 * images * convs[0] - 2 * sigreg
    acct = json.loads((tiny_run / "accounting.json").read_text())
    assert acct["flops"]["per_step"] == forward + backward


def _busy(seconds: float) -> int:
    t, n = time.thread_time(), 0
    while time.thread_time() - t < seconds:
        n += 1
    return n


def test_energy_of_a_fixed_cpu_load_follows_its_cpu_time():
    torch.set_num_threads(1)
    try:
        with Accounting("load", parameters=0) as busy:
            t0 = time.thread_time()           # an independent clock: this thread's CPU time
            _busy(0.4)
            own = time.thread_time() - t0
        with Accounting("idle", parameters=0) as idle:
            time.sleep(0.4)
    finally:
        torch.set_num_threads(2)
    b, i = busy.report(), idle.report()
    assert own >= 0.4
    assert b["cpu_seconds"] == pytest.approx(own, abs=0.03 + 0.1 * own)
    assert b["cpu_seconds"] <= b["wall_seconds"] + 0.02   # one thread cannot use more
    if b["energy_method"].startswith("estimate"):
        assert b["energy_kwh"] == pytest.approx(b["cpu_seconds"] * WATTS_PER_CORE / 3.6e6)
    assert b["energy_kwh_estimate"] == pytest.approx(estimate_kwh(b["cpu_seconds"]))
    # waiting costs wall time, not energy: the run is charged for the cores it kept busy
    assert i["wall_seconds"] >= 0.4 and i["cpu_seconds"] < 0.05
    assert i["energy_kwh_estimate"] < 0.1 * b["energy_kwh_estimate"]


def test_a_codecarbon_measurement_is_used_and_the_estimate_kept(monkeypatch):
    # a stand-in for codecarbon's offline tracker (the real one: `pip install ami[energy]`)
    import sys
    import types
    calls = []

    class Tracker:
        def __init__(self, **kwargs):
            calls.append(kwargs)

        def start(self):
            calls.append("start")

        def stop(self):
            calls.append("stop")
            self.final_emissions_data = types.SimpleNamespace(
                energy_consumed=3e-5, cpu_energy=1e-5, ram_energy=2e-5, gpu_energy=0.0)

    monkeypatch.setitem(sys.modules, "codecarbon",
                        types.SimpleNamespace(OfflineEmissionsTracker=Tracker))
    with Accounting("run", parameters=1) as acct:
        _busy(0.05)
    r = acct.report("netherlands")
    assert calls[0]["tracking_mode"] == "process" and calls[1:] == ["start", "stop"]
    assert r["energy_kwh"] == 3e-5 and r["energy_method"].startswith("codecarbon")
    assert r["energy_measured_kwh"]["codecarbon_ram"] == 2e-5
    assert r["energy_kwh_estimate"] == pytest.approx(estimate_kwh(r["cpu_seconds"]))
    assert r["co2_grams"] == pytest.approx(3e-5 * 129)
    # asked for the estimate only, the tracker is not started
    calls.clear()
    with Accounting("run", parameters=1, meter="estimate") as acct:
        pass
    assert calls == [] and acct.report()["energy_method"].startswith("estimate")


def test_co2_by_region():
    assert GRID_INTENSITY["us-virginia"][0] == 339 and GRID_INTENSITY["netherlands"][0] == 129
    assert all(source for _, source in GRID_INTENSITY.values())
    assert co2_grams(2.0, "netherlands") == pytest.approx(258.0)
    with pytest.raises(KeyError, match="unknown grid region"):
        co2_grams(1.0, "atlantis")


def _check_accounting(acct: dict, parameters: int) -> None:
    assert acct["parameters"] == parameters
    assert acct["wall_seconds"] > 0 and acct["cpu_seconds"] > 0
    assert acct["peak_memory"]["rss_bytes"] > 10 * 2**20
    assert acct["energy_kwh_estimate"] == pytest.approx(
        acct["cpu_seconds"] * acct["watts_per_core"] / 3.6e6)
    assert acct["co2_grams"] == pytest.approx(
        acct["energy_kwh"] * GRID_INTENSITY[acct["region"]][0])
    for region, grams in acct["co2_grams_by_region"].items():
        assert grams == pytest.approx(acct["energy_kwh"] * GRID_INTENSITY[region][0])


@pytest.fixture(scope="module")
def generative_run(tiny_data, tmp_path_factory):
    cfg = tiny_train_config(tiny_data, tmp_path_factory.mktemp("runs") / "gen", steps=60)
    cfg.model.kind = "generative"
    return train(cfg)


def test_training_writes_consistent_accounting(tiny_run, generative_run):
    per_step = {}
    for run in (tiny_run, generative_run):
        acct = json.loads((run / "accounting.json").read_text())
        model = load_model(run)
        _check_accounting(acct, model.num_parameters())
        f = acct["flops"]
        assert f["steps"] == acct["steps_total"] and f["total"] == f["per_step"] * f["steps"]
        per_step[model.cfg.kind] = f["per_step"]
    # the same encoder and predictor, plus a decoder run on every frame and prediction
    assert per_step["generative"] > 1.5 * per_step["jepa"]


def test_generative_loss_falls_and_the_checkpoint_describes_itself(generative_run):
    losses = [json.loads(line)["train/loss"]
              for line in (generative_run / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.6 * losses[0]
    rows = [json.loads(line) for line in (generative_run / "metrics.jsonl").read_text()
            .splitlines()]
    assert {"train/pred", "train/recon"} <= set(rows[-1])
    model = load_model(generative_run)
    assert isinstance(model, GenerativeWorldModel) and model.cfg.kind == "generative"
    meta, tensors = read_safetensors(generative_run / "model.safetensors")
    assert json.loads(meta["ami_model_config"])["kind"] == "generative"
    # a decoded reconstruction is closer to its frame than to a blank image
    frame = torch.zeros(64, 64, 3, dtype=torch.uint8)
    frame[20:30, 20:30] = 255
    with torch.no_grad():
        x_hat = model.decode(model.encode(frame[None]))[0]
    assert x_hat.shape == (3, 64, 64) and 0 <= float(x_hat.min()) <= float(x_hat.max()) <= 1


def test_generative_checkpoint_loads_strictly(generative_run, tmp_path):
    from safetensors.torch import save_file
    meta, tensors = read_safetensors(generative_run / "model.safetensors")
    kept = {k: v for k, v in tensors.items() if not k.startswith("decoder.")}
    (tmp_path / "cut").mkdir()
    save_file(kept, tmp_path / "cut" / "model.safetensors", metadata=meta)
    with pytest.raises(AmiError, match="missing.*decoder"):
        load_model(tmp_path / "cut")


def test_generative_loss_is_pixel_prediction():
    cfg = ModelConfig(embed_dim=8, encoder_width=4, predictor_width=16)
    model = GenerativeWorldModel(cfg).eval()   # BatchNorm in eval mode: encode is deterministic
    frames = torch.randint(0, 256, (2, 3, 64, 64, 3), dtype=torch.uint8)
    actions = torch.zeros(2, 2, cfg.frameskip * cfg.action_dim)
    with torch.no_grad():
        terms = generative_loss(model, frames, actions)
        z = model.encode(frames)
        want_recon = F.mse_loss(model.decode(z), pixels(frames))
        z_next = model.predict(z[:, :2].reshape(4, 1, -1), actions.reshape(4, -1))
        want_pred = F.mse_loss(model.decode(z_next).reshape(2, 2, 3, 64, 64),
                               pixels(frames[:, 1:]))
    assert float(terms["recon"]) == pytest.approx(float(want_recon), rel=1e-5)
    assert float(terms["pred"]) == pytest.approx(float(want_pred), rel=1e-5)


def test_eval_accounts_for_planning_in_latent_and_pixels(tiny_run, generative_run):
    plan = PlanConfig(samples=16, iterations=2, elites=4)
    per_plan = {}
    for name, run, space in [("jepa", tiny_run, "latent"), ("gen-latent", generative_run,
                                                             "latent"),
                             ("gen-pixels", generative_run, "pixels")]:
        r = evaluate(EvalConfig(run=run, episodes=1, budget=10, plan=plan, gif=False,
                                progress=False, cost=CostConfig(goal_space=space)))
        acct = r["accounting"]
        _check_accounting(acct, load_model(run).num_parameters())
        f = acct["flops"]
        assert f["plans"] == r["per_episode"][0]["plans"] >= 1
        assert f["encodes"] == r["per_episode"][0]["steps"] + 2
        assert f["total"] == f["per_plan"] * f["plans"] + f["per_encode"] * f["encodes"]
        per_plan[name] = f["per_plan"]
    # latent planning costs the same in both models (same predictor); pixels add decoding
    assert per_plan["gen-latent"] == per_plan["jepa"]
    assert per_plan["gen-pixels"] > 10 * per_plan["gen-latent"]
    with pytest.raises(AmiError, match="needs a world model with a decoder"):
        evaluate(EvalConfig(run=tiny_run, episodes=1, budget=5, plan=plan, gif=False,
                            progress=False, cost=CostConfig(goal_space="pixels")))


def test_bench_efficiency_writes_one_table(tiny_data, tmp_path):
    from ami.cli import main
    out = tmp_path / "bench"
    args = ["bench", "efficiency", "--data", str(tiny_data), "--out", str(out), "--steps", "8",
            "--batch-size", "8", "--eval-episodes", "1", "--budget", "10", "--pixel-plans", "1",
            "--plan.samples", "16", "--plan.iterations", "2", "--plan.elites", "4",
            "--no-progress"]
    assert main(args) == 0
    r = json.loads((out / "efficiency.json").read_text())
    assert [(row["model"], row["planning"]) for row in r["rows"]] == [
        ("JEPA", "latent"), ("generative", "latent"), ("generative", "pixels")]
    for row in r["rows"]:
        acct = json.loads((out / ("jepa" if row["model"] == "JEPA" else "generative")
                           / "accounting.json").read_text())
        assert row["train_flops"] == acct["flops"]["total"] == 8 * acct["flops"]["per_step"]
        assert row["ms_per_plan"] > 0 and row["flops_per_plan"] > 0
    assert r["rows"][2]["success"] is None and r["rows"][2]["plans"] >= 1
    table = (out / "efficiency.md").read_text()
    assert table.count("\n| ") == 3 and "training FLOPs: JEPA wins" in table
    assert (out / "efficiency.png").stat().st_size > 1000
    # a second run reuses both trained models (same settings) and only plans again
    stamp = (out / "jepa" / "model.safetensors").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "jepa" / "model.safetensors").stat().st_mtime_ns == stamp
    assert main([*args[:-1], "--steps", "9", "--no-progress"]) == 2   # other settings: refused
