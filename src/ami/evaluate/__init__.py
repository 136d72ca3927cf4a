"""Measurement: planning success, and (later) probes, surprise and efficiency."""

from ami.evaluate.planning import evaluate

__all__ = ["evaluate"]
