"""Baselines for side-by-side comparison with the JEPA world model."""

from ami.baselines.generative import (
    GenerativeObjective,
    GenerativeWorldModel,
    generative_loss,
)

__all__ = ["GenerativeObjective", "GenerativeWorldModel", "generative_loss"]
