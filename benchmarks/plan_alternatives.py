"""The routes to a faster CEM plan that issue 4 measured and set aside, each timed against the
current planner in one process (interleaved, so host drift affects all alike):

- floor: the same plan with 8 candidates instead of 300 (what the small ops cost alone);
- split: two Python threads, each scoring half the candidates on one intra-op thread;
- compiled: `torch.compile` of one whole CEM iteration (noise drawn outside);
- cpp: the planning rollout written in C++ (ATen calls, ReLU as a loop), built on first use with
  `torch.utils.cpp_extension` (needs a C++ compiler; skipped without one).

    python benchmarks/plan_alternatives.py [--repeats 20] [--skip cpp compiled]

Default model (ReLU predictor, random weights), LeWM setting: 300 samples, 30 iterations, 30
elites, horizon 5, 2 threads.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ami.actor import ActionBounds, CEMPlanner
from ami.config import ModelConfig
from ami.cost import GoalDistance, IntrinsicCost
from ami.envs import TwoRooms
from ami.world_model import WorldModel

CPP_ROLLOUT = r"""
#include <torch/extension.h>
#include <vector>
using at::Tensor;
static void relu_inplace(Tensor& t) {
  float* p = t.data_ptr<float>();
  for (int64_t i = 0, n = t.numel(); i < n; i++) p[i] = p[i] > 0.f ? p[i] : 0.f;
}
// z_row (1, D): the history every candidate shares; actions (B, T, A'); weights (in, out)
Tensor rollout(Tensor z_row, Tensor actions, Tensor w_z, Tensor w_a, Tensor b1,
               std::vector<Tensor> hw, std::vector<Tensor> hb, Tensor w_last, Tensor b_last) {
  at::NoGradGuard no_grad;
  int64_t B = actions.size(0), T = actions.size(1), D = w_last.size(1);
  Tensor a_steps = at::addmm(b1, actions.transpose(0, 1).reshape({T * B, actions.size(2)}),
                             w_a).view({T, B, -1});
  Tensor preds = at::empty({T, B, D}, actions.options()), z_last;
  for (int64_t k = 0; k < T; k++) {
    Tensor h = a_steps[k];
    if (k == 0) h.add_(at::mm(z_row, w_z)); else h.addmm_(z_last, w_z);
    relu_inplace(h);
    for (size_t j = 0; j < hw.size(); j++) { h = at::addmm(hb[j], h, hw[j]); relu_inplace(h); }
    Tensor out = preds[k];
    at::addmm_out(out, b_last, h, w_last);
    out.add_(k == 0 ? z_row : z_last);
    z_last = out;
  }
  return preds.transpose(0, 1);
}
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--skip", nargs="*", default=[], choices=["floor", "split", "compiled", "cpp"])
    args = p.parse_args()
    torch.set_num_threads(2)
    torch.set_grad_enabled(False)
    model = WorldModel(ModelConfig()).eval()
    env = TwoRooms()
    z = model.encode(env.render_state(np.array([10.0, 10.0])))[None, None]     # (1, 1, D)
    z_goal = model.encode(env.render_state(np.array([50.0, 50.0])))
    cost = IntrinsicCost([GoalDistance(z_goal)])
    bounds = ActionBounds.of(env)
    cem = CEMPlanner(bounds, horizon=5, block_dim=model.block_dim, samples=300, iterations=30,
                     elites=30)
    variants = {"current planner": lambda: cem.plan(model, z, cost)}
    if "floor" not in args.skip:
        few = CEMPlanner(bounds, horizon=5, block_dim=model.block_dim, samples=8,
                         iterations=30, elites=4)
        variants["floor: 8 candidates"] = lambda: few.plan(model, z, cost)
    if "split" not in args.skip:
        variants["split: 2 threads x 150"] = split_plan(cem, model, z, cost)
    if "compiled" not in args.skip:
        variants["compiled CEM iteration"] = compiled_plan(cem, model, z, z_goal)
    if "cpp" not in args.skip:
        fast = cpp_rollout(model)
        if fast is not None:
            variants["C++ rollout"] = lambda: with_rollout(model, fast, lambda: cem.plan(
                model, z, cost))
    times = {name: [] for name in variants}
    for fn in variants.values():            # warm-up (and the compile) before timing
        for _ in range(3):
            fn()
    for _ in range(args.repeats):
        for name, fn in variants.items():
            t = time.perf_counter()
            fn()
            times[name].append(1000 * (time.perf_counter() - t))
    print(f"torch {torch.__version__}, 2 threads, {args.repeats} plans each, interleaved")
    for name, ts in times.items():
        print(f"  {name:<26} median {statistics.median(ts):6.1f} ms   min {min(ts):6.1f} ms")


def split_plan(cem: CEMPlanner, model, z, cost):
    """CEM whose candidates are scored in two halves by two threads of one intra-op thread."""
    pool = ThreadPoolExecutor(1, initializer=lambda: torch.set_num_threads(1))
    shape, s = (cem.horizon, cem.block_dim), cem.samples
    halves = [(0, s // 2), (s // 2, s)]
    gens = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]

    def plan():
        torch.set_num_threads(1)
        mean, std = torch.zeros(shape), torch.full(shape, cem.init_std)
        cand, costs = torch.empty(s, *shape), torch.empty(s)

        def score(j):
            lo, hi = halves[j]
            c = torch.addcmul(mean, std, torch.randn(hi - lo, *shape, generator=gens[j]))
            c = cem.bounds.project(c)
            cand[lo:hi] = c
            costs[lo:hi] = cost(model.rollout(z.expand(hi - lo, *z.shape[1:]), c), c)[0]
        for _ in range(cem.iterations):
            other = pool.submit(score, 1)
            score(0)
            other.result()
            mean, std = cem.refit(cand, costs, mean, std)
            std = std.clamp_min(cem.min_std)
        torch.set_num_threads(2)
    return plan


def compiled_plan(cem: CEMPlanner, model, z, z_goal):
    """CEM with one whole iteration (candidates, projection, rollout, cost, refit) compiled."""
    goal = z_goal.reshape(1, 1, -1)

    def iteration(mean, std, noise, z0):
        cand = cem.bounds.project(torch.addcmul(mean, std, noise))
        zp = model.predictor.rollout(z0, cand)
        c = (zp - goal).square().sum(dim=(1, 2)) / zp.shape[1]
        elite = cand[torch.topk(c, cem.elites, largest=False).indices]
        s, m = torch.std_mean(elite, dim=0)
        return m, s.clamp_min(cem.min_std)
    step = torch.compile(iteration, dynamic=False)
    shape = (cem.horizon, cem.block_dim)
    gen = torch.Generator().manual_seed(0)

    def plan():
        mean, std = torch.zeros(shape), torch.full(shape, cem.init_std)
        z0 = z.expand(cem.samples, *z.shape[1:])
        for _ in range(cem.iterations):
            mean, std = step(mean, std, torch.randn(cem.samples, *shape, generator=gen), z0)
    return plan


def cpp_rollout(model):
    """The C++ planning rollout for `model`'s ReLU predictor, or None without a compiler."""
    from torch.utils.cpp_extension import load_inline
    try:
        ext = load_inline("ami_plan_rollout", cpp_sources=CPP_ROLLOUT, functions=["rollout"],
                          extra_cflags=["-O3"], build_directory=tempfile.mkdtemp(),
                          verbose=False)
    except Exception as e:  # no compiler, no ninja: the other variants still run
        print(f"C++ rollout skipped: {str(e).splitlines()[0]}")
        return None
    (w_z, w_a, b1), hidden, (w_last, b_last) = model.predictor._planning_weights()

    def rollout(z_hist, actions):
        return ext.rollout(z_hist[:1, -1], actions, w_z, w_a, b1, [w for w, _ in hidden],
                           [b for _, b in hidden], w_last, b_last)
    z = torch.randn(1, 1, model.cfg.embed_dim).expand(300, 1, -1)        # (S, 1, D) shared
    a = torch.randn(300, 5, model.block_dim)
    gap = (rollout(z, a) - model.predictor.rollout(z, a)).abs().max().item()
    if gap > 1e-4:
        raise SystemExit(f"the C++ rollout differs from the model's by {gap:.2e}")
    return rollout


def with_rollout(model, rollout, fn):
    """Run fn with the predictor's rollout replaced."""
    original = model.predictor.rollout
    model.predictor.rollout = rollout
    try:
        return fn()
    finally:
        model.predictor.rollout = original


if __name__ == "__main__":
    main()
