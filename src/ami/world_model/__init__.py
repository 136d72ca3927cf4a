"""World model: action-conditioned prediction in embedding space, and its regulariser."""

from ami.world_model.model import WorldModel, build_world_model
from ami.world_model.sigreg import sigreg

__all__ = ["WorldModel", "build_world_model", "sigreg"]
