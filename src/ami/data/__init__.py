"""Trajectories on disk: the HDF5 episode format, collection and training windows."""

from ami.data.dataset import EpisodeDataset, EpisodeWriter
from ami.data.stream import EpisodeStream
from ami.data.windows import WindowSampler

__all__ = ["EpisodeDataset", "EpisodeStream", "EpisodeWriter", "WindowSampler"]
