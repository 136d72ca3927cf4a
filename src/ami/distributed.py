"""Scale-out: N processes compute one training step as one process computes it.

`ami train` runs unchanged under torchrun: the process group comes from torchrun's environment
(gloo on CPU, nccl on CUDA), each rank takes an equal share of the global batch, and DDP averages
the gradients, which is exact for the loss terms that are means over the batch. The parts of the
step that need statistics of the whole batch — SIGReg's empirical characteristic function and the
projector's BatchNorm — gather them across ranks here, with gradients that flow back to each
rank's own slice, so that the averaged gradient is the gradient of the global-batch loss.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

from ami.device import resolve_device
from ami.errors import AmiError


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the training processes."""

    rank: int = 0
    world: int = 1
    owns_group: bool = False  # initialised here from torchrun's environment: destroyed here

    @property
    def main(self) -> bool:
        """Rank 0 alone logs, writes checkpoints and shows progress."""
        return self.rank == 0

    def share(self, batch_size: int) -> slice:
        """This rank's part of a global batch of `batch_size`."""
        b = batch_size // self.world
        return slice(self.rank * b, (self.rank + 1) * b)


def process_rank() -> int:
    """This process's rank: the process group's, else the one torchrun's environment gives
    (also once `train` has left that group), else 0 outside distributed training."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """True outside distributed training, and on rank 0 within it."""
    return process_rank() == 0


def join(device_name: str) -> tuple[Ranks, torch.device]:
    """Join the process group — the caller's, or the one torchrun's environment describes — and
    pick this rank's device (cuda:LOCAL_RANK when CUDA is asked for or found without an index)."""
    device = resolve_device(device_name)
    active = dist.is_available() and dist.is_initialized()
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not active and not launched:
        return Ranks(), device
    if device.type not in ("cpu", "cuda"):
        raise AmiError(f"distributed training runs on cpu (gloo) or cuda (nccl), not on "
                       f"{device.type}; pass --device cpu or --device cuda")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not active:
        if not dist.is_available():
            raise AmiError("torchrun started several processes, but this torch build has no "
                           "torch.distributed")
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), owns_group=not active), device


def leave(ranks: Ranks, wait: bool = True) -> None:
    """Wait for every rank (so that rank 0's files are complete when any rank returns), then
    destroy the process group if `join` created it."""
    if wait and ranks.world > 1:
        dist.barrier()
    if ranks.owns_group:
        dist.destroy_process_group()


def on_main(ranks: Ranks, decide):
    """Call `decide()` on rank 0 and hand its result to every rank; an AmiError it raises is
    raised on every rank, so that no rank waits for a peer that has stopped."""
    if ranks.world == 1:
        return decide()
    box: list = [None]
    if ranks.main:
        try:
            box[0] = ("ok", decide())
        except AmiError as e:
            box[0] = ("error", str(e))
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise AmiError(value)
    return value


def mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The mean of `x` over ranks, without gradient (for logging and the divergence check)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    x = x.detach().clone()
    dist.all_reduce(x)
    return x / dist.get_world_size()


def gather_batch(x: torch.Tensor) -> torch.Tensor:
    """Every rank's `x` (N, ...) concatenated in rank order (world·N, ...); the gradient flows to
    this rank's slice only. Identity outside distributed training."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _GatherBatch.apply(x)


class _GatherBatch(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        world = dist.get_world_size()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.world, ctx.n = dist.get_rank(), world, x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        # Every rank computes the same statistic of the gathered batch, so the gradient of the
        # sum of the ranks' losses w.r.t. this slice is `world` times this rank's own; DDP then
        # divides the summed gradients by `world`.
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n] * ctx.world


def sum_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """Σ over ranks of `x`, differentiable: the gradient is summed over ranks too."""
    return _SumOverRanks.apply(x)


class _SumOverRanks(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        x = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics are those of the global batch, on any backend.

    torch's SyncBatchNorm does the same on GPUs only; this one is used on CPU (gloo) and CUDA
    alike, so that one code path is tested everywhere. Outside distributed training, or in eval
    mode, it is BatchNorm1d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        xf = x.float()
        # Σ x and the global sample count in one collective: (C + 1,)
        total = sum_over_ranks(torch.cat([xf.sum(0), xf.new_full((1,), x.shape[0])]))
        count = total[-1]
        mean = total[:-1] / count                                   # (C,)
        centred = xf - mean
        var = sum_over_ranks((centred * centred).sum(0)) / count   # (C,), biased, as BN
        y = centred * torch.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.weight + self.bias
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), float(count))
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean, var, count: float) -> None:
        self.num_batches_tracked.add_(1)
        m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
             else self.momentum)
        unbiased = var * count / max(count - 1.0, 1.0)  # BatchNorm keeps the unbiased variance
        self.running_mean.mul_(1 - m).add_(mean, alpha=m)
        self.running_var.mul_(1 - m).add_(unbiased, alpha=m)


def use_global_batchnorm(module: nn.Module) -> nn.Module:
    """Make every BatchNorm1d in `module` a GlobalBatchNorm1d, in place: the same objects keep
    their parameters (which an optimiser may already hold), buffers and state-dict keys."""
    for m in module.modules():
        if type(m) is nn.BatchNorm1d:
            m.__class__ = GlobalBatchNorm1d  # adds a forward, no state
    return module


def wrap_for_ranks(objective: nn.Module, ranks: Ranks, device: torch.device) -> nn.Module:
    """The module a training step calls: `objective` itself on one process; on several, with
    global BatchNorm statistics and wrapped in DDP (which averages gradients)."""
    if ranks.world == 1:
        return objective
    use_global_batchnorm(objective)
    ids = [device.index] if device.type == "cuda" else None
    # buffers need no broadcast at each step: the global BatchNorm keeps them equal on every rank
    return nn.parallel.DistributedDataParallel(objective, device_ids=ids,
                                               forward_sync_buffers=False)
