"""The actor: Mode-2 planners run as receding-horizon MPC."""

from ami.actor.cem import CEMPlanner
from ami.actor.mpc import RecedingHorizon
from ami.actor.planner import ActionBounds, Planner, PlanningResult

__all__ = ["ActionBounds", "CEMPlanner", "Planner", "PlanningResult", "RecedingHorizon"]
