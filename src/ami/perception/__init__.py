"""Perception: observations (images) to embeddings."""

from ami.perception.encoder import ConvEncoder

__all__ = ["ConvEncoder"]
