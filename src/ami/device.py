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


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on CPU/CUDA when asked; a no-op otherwise."""
    if bf16 and device.type in ("cpu", "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
