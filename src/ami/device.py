"""One code path for CPU, CUDA and MPS: pick the device, and autocast only where it helps."""

from __future__ import annotations

import contextlib

import torch

from ami.errors import AmiError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an explicit name must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise AmiError(f"unknown device '{name}': use auto, cpu, cuda, cuda:N or mps")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AmiError("device 'cuda' asked for, but CUDA is not available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise AmiError("device 'mps' asked for, but MPS is not available")
    return torch.device(name)


def use_bf16(device: torch.device, bf16: bool | None) -> bool:
    """Whether to autocast to bf16: as asked, or by default on CUDA only (tensor cores run bf16
    several times faster than fp32; on CPU it pays only with AMX, so it is asked for there)."""
    wanted = device.type == "cuda" if bf16 is None else bf16
    return wanted and device.type in ("cpu", "cuda")


def autocast(device: torch.device, bf16: bool | None):
    """bf16 autocast where `use_bf16` says so; a no-op otherwise."""
    if use_bf16(device, bf16):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
