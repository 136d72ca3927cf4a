"""Measurement: planning success (planning.py), what the embeddings hold of the physical state
(probes.py), surprise at violations of physics (surprise.py, violations.py), and (later)
efficiency."""

from ami.evaluate.planning import evaluate

__all__ = ["evaluate"]
