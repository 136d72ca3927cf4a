"""The actor: Mode-2 planners (CEM, MPPI, gradient) run as receding-horizon MPC."""

from ami.actor.cem import CEMPlanner
from ami.actor.gradient import GradientPlanner
from ami.actor.mpc import RecedingHorizon
from ami.actor.mppi import MPPIPlanner
from ami.actor.planner import ActionBounds, Planner, PlanningResult
from ami.errors import AmiError

PLANNERS = ("cem", "mppi", "gradient")


def make_planner(cfg, bounds: ActionBounds, block_dim: int, seed: int) -> Planner:
    """The planner a PlanConfig names, seeded."""
    if cfg.planner == "cem":
        return CEMPlanner(bounds, cfg.horizon, block_dim, cfg.samples, cfg.iterations,
                          cfg.elites, cfg.init_std, cfg.min_std, cfg.momentum, seed)
    if cfg.planner == "mppi":
        return MPPIPlanner(bounds, cfg.horizon, block_dim, cfg.samples, cfg.iterations,
                           cfg.temperature, cfg.init_std, cfg.min_std, seed)
    if cfg.planner == "gradient":
        return GradientPlanner(bounds, cfg.horizon, block_dim, cfg.samples, cfg.iterations,
                               cfg.gradient_lr, cfg.init_std, seed)
    raise AmiError(f"unknown planner '{cfg.planner}': choose one of {', '.join(PLANNERS)}")


__all__ = ["PLANNERS", "ActionBounds", "CEMPlanner", "GradientPlanner", "MPPIPlanner", "Planner",
           "PlanningResult", "RecedingHorizon", "make_planner"]
