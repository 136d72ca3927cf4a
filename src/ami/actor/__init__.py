"""The actor: Mode-2 planners (CEM, MPPI, gradient) run as receding-horizon MPC."""

from ami.actor.cem import CEMPlanner
from ami.actor.gradient import GradientPlanner
from ami.actor.hierarchical import (
    HierarchicalPlanner,
    LandmarkSearch,
    MacroCEMSearch,
    macro_bounds,
)
from ami.actor.mpc import RecedingHorizon
from ami.actor.mppi import MPPIPlanner
from ami.actor.planner import ActionBounds, Planner, PlanningResult
from ami.actor.policy import GoalConditionedPolicy, PolicyPlanner
from ami.errors import AmiError

PLANNERS = ("cem", "mppi", "gradient", "policy", "hierarchical")


def make_planner(cfg, bounds: ActionBounds, block_dim: int, seed: int, policy=None,
                 action_scale: float = 1.0, high=None) -> Planner:
    """The planner a PlanConfig names, seeded; `policy` is the Mode-1 policy, `high` the
    H-JEPA high level (`HighLevelModel`, `LandmarkGraph`), if loaded."""
    if cfg.planner == "hierarchical":
        if high is None:
            raise AmiError("planner 'hierarchical' needs the high level (ami train-high)")
        model, graph = high
        if cfg.high_search == "graph":
            search = LandmarkSearch(graph)
        else:
            # macro-actions are SIGReg-shaped to N(0, I): sample them with std 1 in a ±3 box
            search = MacroCEMSearch(model, CEMPlanner(
                macro_bounds(model.macro_dim), cfg.high_horizon, model.macro_dim,
                cfg.high_samples, cfg.high_iterations, cfg.high_elites, 1 / 3, cfg.min_std / 3,
                0.0, seed + 1))
        low = CEMPlanner(bounds, cfg.horizon, block_dim, cfg.samples, cfg.iterations,
                         cfg.elites, cfg.init_std, cfg.min_std, cfg.momentum, seed,
                         cfg.noise_beta)
        return HierarchicalPlanner(search, low)
    if cfg.planner == "policy":
        if policy is None:
            raise AmiError("planner 'policy' needs a Mode-1 policy (ami train-policy)")
        return PolicyPlanner(policy, bounds, cfg.horizon, action_scale)
    if cfg.planner == "cem":
        return CEMPlanner(bounds, cfg.horizon, block_dim, cfg.samples, cfg.iterations,
                          cfg.elites, cfg.init_std, cfg.min_std, cfg.momentum, seed,
                          cfg.noise_beta)
    if cfg.planner == "mppi":
        return MPPIPlanner(bounds, cfg.horizon, block_dim, cfg.samples, cfg.iterations,
                           cfg.temperature, cfg.init_std, cfg.min_std, seed, cfg.noise_beta)
    if cfg.planner == "gradient":
        return GradientPlanner(bounds, cfg.horizon, block_dim, cfg.samples, cfg.iterations,
                               cfg.gradient_lr, cfg.init_std, seed)
    raise AmiError(f"unknown planner '{cfg.planner}': choose one of {', '.join(PLANNERS)}")


__all__ = ["PLANNERS", "ActionBounds", "CEMPlanner", "GoalConditionedPolicy", "GradientPlanner",
           "HierarchicalPlanner", "MPPIPlanner", "Planner", "PlanningResult", "PolicyPlanner",
           "RecedingHorizon", "make_planner"]
