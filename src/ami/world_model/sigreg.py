"""SIGReg (LeJEPA): push embeddings towards an isotropic Gaussian through random 1-D slices.

For each of M random unit directions u, the projections p = z·u of N embeddings are compared
with N(0, 1) by the Epps–Pulley statistic
    T(u) = N ∫ |φ_N(t) − e^{−t²/2}|² e^{−t²/2} dt,   φ_N(t) = mean_n exp(i t p_n),
integrated by the trapezoid rule on 17 knots over t ∈ [0, 3] and doubled (the integrand is
even). The loss is the mean of T over directions. It is O(1) for Gaussian samples and grows
like N for collapsed ones.
"""

from __future__ import annotations

import torch


def epps_pulley_knots(knots: int = 17, t_max: float = 3.0, device=None):
    """Knots t, and trapezoid weights × Gaussian window (doubled for t < 0)."""
    t = torch.linspace(0.0, t_max, knots, device=device)
    dt = t_max / (knots - 1)
    w = torch.full((knots,), 2 * dt, device=device)
    w[0] = w[-1] = dt
    return t, w * torch.exp(-0.5 * t**2)


def sigreg(z: torch.Tensor, projections: int = 256, generator: torch.Generator | None = None,
           knots: int = 17) -> torch.Tensor:
    """SIGReg loss of embeddings z (N, D); a new set of directions per call unless seeded.

    The directions are drawn on the generator's device, so a CPU generator gives the same
    directions for embeddings on any device. Every statistic is a mean over the N rows: for the
    exact loss of a batch split over processes, pass the gathered batch
    (`ami.distributed.gather_batch`) and the same generator state on every process.
    """
    n, d = z.shape
    z = z.float()
    where = generator.device if generator is not None else z.device
    u = torch.randn(d, projections, device=where, generator=generator).to(z.device)
    u = u / u.norm(dim=0, keepdim=True)
    t, weight = epps_pulley_knots(knots, device=z.device)
    p = z @ u                                             # (N, M)
    x = p.unsqueeze(-1) * t                               # (N, M, K)
    cos_mean, sin_mean = x.cos().mean(0), x.sin().mean(0)  # (M, K): Re and Im of φ_N
    gauss = torch.exp(-0.5 * t**2)                        # φ of N(0, 1), real
    err = (cos_mean - gauss) ** 2 + sin_mean**2           # |φ_N − φ|²
    return n * (err * weight).sum(-1).mean()
