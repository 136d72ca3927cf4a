"""The actor: Mode-2 planners (CEM, MPPI, gradient) run as receding-horizon MPC."""

from ami.actor.cem import CEMPlanner
from ami.actor.gradient import GradientPlanner
from ami.actor.mpc import RecedingHorizon
from ami.actor.mppi import MPPIPlanner
from ami.actor.planner import ActionBounds, Planner, PlanningResult
from ami.actor.policy import GoalConditionedPolicy, PolicyPlanner
from ami.errors import AmiError

PLANNERS = ("cem", "mppi", "gradient", "policy")


def make_planner(cfg, bounds: ActionBounds, block_dim: int, seed: int, policy=None,
                 action_scale: float = 1.0) -> Planner:
    """The planner a PlanConfig names, seeded; `policy` is the Mode-1 policy, if loaded."""
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
           "MPPIPlanner", "Planner", "PlanningResult", "PolicyPlanner", "RecedingHorizon",
           "make_planner"]
