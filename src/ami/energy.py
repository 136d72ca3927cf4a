"""Accounting: what a run computed and what it cost — parameters, FLOPs, wall and CPU seconds,
peak memory, energy (kWh) and CO2 for a grid region.

    acct = Accounting("train", parameters=model.num_parameters())
    with acct:
        ...                                   # the run
    acct.set_flops(step=(flops_of_one_step, steps))
    write_json(run / "accounting.json", acct.report())

FLOPs come from PyTorch's flop counter (`torch.utils.flop_counter.FlopCounterMode`), run on one
unit of the work (a training step, a plan) and multiplied by the count. It counts the matrix
products and convolutions, forward and backward, at 2 FLOPs per multiply-add; element-wise
operations (activations, norms, the optimiser's update) are not counted: they are a few per cent
of these models' work.

Energy is measured where a well-kept meter is available, else estimated:
- `codecarbon` (`pip install ami[energy]`), when installed: its offline tracker, in process
  mode (RAPL counters where the OS exposes them, else its own CPU power model);
- on a CUDA device with `nvidia-ml-py` installed: the GPU's own energy counter (NVML), added to
  the CPU estimate;
- otherwise, and always reported beside the others as `energy_kwh_estimate`: CPU seconds of the
  process × `WATTS_PER_CORE`. CPU seconds, not wall seconds: on a machine shared with other
  work, a run is charged for the cores it kept busy, not for the time it waited.

A run resumed from a checkpoint reports the whole run: each earlier session's CPU and wall
seconds, up to its last checkpoint, travel in the checkpoint (`Accounting(earlier=...)`); they
are added to the totals, listed under `sessions`, and their energy is the CPU-seconds estimate
(a meter's reading ends with its process).

CO2 = kWh × grid intensity; `GRID_INTENSITY` lists regions and their source, and every report
gives the CO2 of the same run in each of them (the what-if: where the compute runs matters as
much as how much of it there is).
"""

from __future__ import annotations

import contextlib
import logging
import resource
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

# A busy core of a current server or desktop CPU draws about 5–15 W: package TDP ÷ cores is
# 205 W / 28 ≈ 7.3 W for a Xeon Platinum 8280, 105 W / 8 ≈ 13 W for a Ryzen 7 5800X. 10 W is
# in the middle; memory, board and cooling are not included (multiply by a PUE for those).
WATTS_PER_CORE = 10.0

# Grid carbon intensity, gCO2e per kWh of electricity generated, yearly averages.
GRID_INTENSITY: dict[str, tuple[float, str]] = {
    "us-virginia": (339.0, "figure given in ami issue 9"),
    "netherlands": (129.0, "figure given in ami issue 9"),
    "world": (481.0, "Ember, global electricity review, 2023"),
    "india": (713.0, "Ember via Our World in Data, 2023"),
    "china": (582.0, "Ember via Our World in Data, 2023"),
    "australia": (549.0, "Ember via Our World in Data, 2023"),
    "germany": (381.0, "Ember via Our World in Data, 2023"),
    "canada": (170.0, "Ember via Our World in Data, 2023"),
    "austria": (111.0, "Ember via Our World in Data, 2023"),
    "brazil": (98.0, "Ember via Our World in Data, 2023"),
    "finland": (79.0, "Ember via Our World in Data, 2023"),
    "france": (56.0, "Ember via Our World in Data, 2023"),
    "norway": (30.0, "Ember, 2023"),
}
DEFAULT_REGION = "world"


def co2_grams(kwh: float, region: str = DEFAULT_REGION) -> float:
    """Grams of CO2e of `kwh` drawn from `region`'s grid (a key of GRID_INTENSITY)."""
    if region not in GRID_INTENSITY:
        raise KeyError(f"unknown grid region {region!r}; known: {', '.join(GRID_INTENSITY)}")
    return kwh * GRID_INTENSITY[region][0]


def estimate_kwh(cpu_seconds: float, watts_per_core: float = WATTS_PER_CORE) -> float:
    """Energy of `cpu_seconds` of busy cores at `watts_per_core`: W·s → kWh."""
    return cpu_seconds * watts_per_core / 3.6e6


def count_flops(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run fn() under PyTorch's flop counter: (its result, FLOPs of matmuls and convolutions)."""
    with FlopCounterMode(display=False) as counter:
        out = fn()
    return out, int(counter.get_total_flops())


class FlopTally:
    """FLOPs of the code run inside `count()` blocks, summed: lets a loop count one real step
    (its forward and its backward, which run in different places) without running it twice."""

    def __init__(self):
        self.total = 0

    @contextlib.contextmanager
    def count(self, on: bool = True):
        if not on:
            yield
            return
        with FlopCounterMode(display=False) as counter:
            yield
        self.total += int(counter.get_total_flops())


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads) and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class Accounting:
    """Measures one run (a `with` block): wall and CPU seconds, peak memory, energy; FLOPs and
    parameters are set by the caller, who knows what one unit of work is."""

    def __init__(self, kind: str, parameters: int, device: torch.device | str = "cpu",
                 watts_per_core: float = WATTS_PER_CORE, meter: str = "auto",
                 earlier: list[dict] | None = None):
        if meter not in ("auto", "estimate", "codecarbon"):
            raise ValueError(f"meter must be auto, estimate or codecarbon, got {meter!r}")
        self.kind, self.parameters = kind, int(parameters)
        self.device = torch.device(device)
        self.watts_per_core, self.meter = watts_per_core, meter
        self.flops: dict[str, Any] = {}
        self.wall_s = self.cpu_s = 0.0
        self.extra_cpu_s = 0.0        # CPU seconds of other processes, added by the caller
        self._tracker = self._nvml = None
        self._measured: dict[str, float] = {}
        self._running = False
        # sessions of the same run before this one (a resumed training): {cpu_seconds,
        # wall_seconds, ...} each, up to its last checkpoint
        self.earlier = [dict(e) for e in earlier or []]

    def set_flops(self, **units: tuple[int, int]) -> None:
        """FLOPs as {unit: (FLOPs of one, how many)}, e.g. step=(f, 1500) or plan=(f, 40)."""
        self.flops = {}
        for unit, (per, n) in units.items():
            self.flops[f"per_{unit}"], self.flops[f"{unit}s"] = int(per), int(n)
        self.flops["total"] = sum(int(per) * int(n) for per, n in units.values())

    def __enter__(self) -> Accounting:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def so_far(self) -> dict[str, float]:
        """This session's CPU (own process only) and wall seconds until now, while running."""
        return {"cpu_seconds": cpu_seconds() - self._cpu0,
                "wall_seconds": time.perf_counter() - self._wall0}

    def start(self) -> Accounting:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            if self.meter != "estimate":
                self._nvml = _NvmlEnergy.start(self.device)
        if self.meter in ("auto", "codecarbon"):
            self._tracker = _start_codecarbon(required=self.meter == "codecarbon")
        self._wall0, self._cpu0 = time.perf_counter(), cpu_seconds()
        self._running = True
        return self

    def stop(self) -> None:
        """End the measurement and the meters (a second call does nothing, so that a `finally`
        can stop the meters of a run that failed)."""
        if not self._running:
            return
        self._running = False
        self.wall_s = time.perf_counter() - self._wall0
        self.cpu_s = cpu_seconds() - self._cpu0
        if self._tracker is not None:
            with contextlib.suppress(Exception):  # a meter's failure must not fail the run
                self._tracker.stop()
                data = self._tracker.final_emissions_data
                self._measured["codecarbon"] = float(data.energy_consumed)
                # its parts: CPU (RAPL, or its own power model × this process's CPU share),
                # RAM (a constant power × wall time) and GPU
                for part in ("cpu", "ram", "gpu"):
                    self._measured[f"codecarbon_{part}"] = float(getattr(data, f"{part}_energy"))
        if self._nvml is not None:
            gpu_kwh = self._nvml.stop()
            if gpu_kwh is not None:
                self._measured["nvml_gpu"] = gpu_kwh

    def report(self, region: str = DEFAULT_REGION) -> dict:
        """The run's accounting as a JSON-ready dict (CO2 in `region` and in every region);
        the totals include the earlier sessions of a resumed run."""
        own_cpu = self.cpu_s + self.extra_cpu_s
        own_estimate = estimate_kwh(own_cpu, self.watts_per_core)
        if "codecarbon" in self._measured:
            kwh, method = self._measured["codecarbon"], "codecarbon (offline tracker, process)"
        elif "nvml_gpu" in self._measured:
            kwh = own_estimate + self._measured["nvml_gpu"]
            method = f"NVML GPU energy counter + CPU seconds × {self.watts_per_core} W per core"
        else:
            kwh, method = own_estimate, f"estimate: CPU seconds × {self.watts_per_core} W per core"
        # earlier sessions: their CPU-seconds estimate (a meter's reading ended with them)
        sessions = [{**e, "energy_kwh": estimate_kwh(e["cpu_seconds"], self.watts_per_core)}
                    for e in self.earlier]
        sessions.append({"cpu_seconds": own_cpu, "wall_seconds": self.wall_s, "energy_kwh": kwh})
        earlier_cpu = sum(e["cpu_seconds"] for e in self.earlier)
        earlier_kwh = estimate_kwh(earlier_cpu, self.watts_per_core)
        if self.earlier:
            method += (f"; {len(self.earlier)} earlier session(s) of this resumed run: CPU "
                       f"seconds × {self.watts_per_core} W per core")
        cpu, kwh = own_cpu + earlier_cpu, kwh + earlier_kwh
        estimate = own_estimate + earlier_kwh
        peak = {"rss_bytes": peak_rss_bytes()}
        if self.device.type == "cuda":
            peak["cuda_bytes"] = int(torch.cuda.max_memory_allocated(self.device))
        return {
            "kind": self.kind,
            "parameters": self.parameters,
            "flops": dict(self.flops),
            "flops_counted": "matmuls and convolutions, forward and backward (PyTorch "
                             "FlopCounterMode on one unit, × units); element-wise ops not "
                             "counted",
            "wall_seconds": sum(e["wall_seconds"] for e in sessions),
            "cpu_seconds": cpu,
            "sessions": sessions,
            "peak_memory": peak,
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "energy_kwh": kwh,
            "energy_method": method,
            "energy_kwh_estimate": estimate,
            "energy_measured_kwh": dict(self._measured),
            "watts_per_core": self.watts_per_core,
            "region": region,
            "co2_grams": co2_grams(kwh, region),
            "co2_grams_by_region": {r: co2_grams(kwh, r) for r in GRID_INTENSITY},
            "grid_intensity_g_per_kwh": {r: {"g_per_kwh": v, "source": s}
                                         for r, (v, s) in GRID_INTENSITY.items()},
        }


def _start_codecarbon(required: bool):
    """codecarbon's offline tracker, started; None (or an error, if required) when absent."""
    try:
        from codecarbon import OfflineEmissionsTracker
    except ImportError:
        if required:
            raise RuntimeError("meter 'codecarbon' needs codecarbon: pip install "
                               "'ami[energy]'") from None
        return None
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    try:
        # the region only sets codecarbon's own CO2 figure; ami computes CO2 from kWh itself
        tracker = OfflineEmissionsTracker(country_iso_code="USA", tracking_mode="process",
                                          save_to_file=False, log_level="error")
        tracker.start()
        return tracker
    except Exception as e:  # noqa: BLE001 (any failure of an optional meter: fall back)
        warnings.warn(f"codecarbon could not start ({e}); energy is estimated from CPU time",
                      stacklevel=3)
        return None


class _NvmlEnergy:
    """The GPU's cumulative energy counter (millijoules, Volta and later) through NVML."""

    def __init__(self, handle, start_mj: int):
        self.handle, self.start_mj = handle, start_mj

    @classmethod
    def start(cls, device: torch.device) -> _NvmlEnergy | None:
        try:
            import pynvml
            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
            return cls(handle, pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        except Exception:  # noqa: BLE001 (no NVML, or a GPU without an energy counter)
            return None

    def stop(self) -> float | None:
        try:
            import pynvml
            mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) - self.start_mj
            return mj / 1000 / 3.6e6
        except Exception:  # noqa: BLE001
            return None
